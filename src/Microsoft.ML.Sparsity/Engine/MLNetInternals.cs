using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using System.Reflection;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// The two ML.NET internals a third-party component cannot do without, reached through reflection in this one place
/// (a test checks both, so an ML.NET update that changes them fails loudly there):
/// <list type="bullet">
/// <item>the <see cref="MLContext"/> behind a catalog (<c>IInternalCatalog.Environment</c>), so a trainer created from
/// <c>mlContext.MulticlassClassification.Trainers</c> draws its seeds from that context and logs to it;</item>
/// <item><see cref="SchemaShape.Column"/>'s constructor, so an estimator's <c>GetOutputSchema</c> can describe the columns it adds.</item>
/// </list>
/// </summary>
internal static class MLNetInternals
{
    private static readonly PropertyInfo CatalogEnvironment =
        typeof(MLContext).Assembly.GetType("Microsoft.ML.Data.IInternalCatalog")?.GetProperty("Environment")
        ?? throw Missing("the interface Microsoft.ML.Data.IInternalCatalog with an Environment property");

    private static readonly ConstructorInfo ColumnConstructor =
        typeof(SchemaShape.Column).GetConstructor(BindingFlags.NonPublic | BindingFlags.Instance, null,
            [typeof(string), typeof(SchemaShape.Column.VectorKind), typeof(DataViewType), typeof(bool), typeof(SchemaShape)], null)
        ?? throw Missing("the constructor SchemaShape.Column(string, VectorKind, DataViewType, bool, SchemaShape)");

    /// <summary>The host environment (the <see cref="MLContext"/>) a catalog of ML.NET's belongs to.</summary>
    public static IHostEnvironment EnvironmentOf(object catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        if (!CatalogEnvironment.DeclaringType!.IsInstanceOfType(catalog))
            throw new ArgumentException($"{catalog.GetType().Name} is not one of ML.NET's catalogs.", nameof(catalog));
        return (IHostEnvironment)CatalogEnvironment.GetValue(catalog)!;
    }

    /// <summary>A column shape, as ML.NET's own estimators make them.</summary>
    public static SchemaShape.Column Column(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType, bool isKey,
        SchemaShape.Column[] annotations) =>
        (SchemaShape.Column)ColumnConstructor.Invoke([name, kind, itemType, isKey, new SchemaShape(annotations)]);

    private static MissingMemberException Missing(string what) =>
        new($"ML.NET {typeof(MLContext).Assembly.GetName().Version} has no {what}; this version of Microsoft.ML.Sparsity needs updating for it.");
}
