using System.Linq.Expressions;
using System.Reflection;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// Builds a <see cref="Dataset"/> from objects: a feature member (public field or property of type <c>float[]</c>,
/// <c>double[]</c>, <c>float</c> or <c>double</c>) and a numeric or <c>bool</c> label member, read through getters compiled once.
/// </summary>
internal static class EnumerableLoader
{
    private static readonly Type[] LabelTypes =
        [typeof(float), typeof(double), typeof(int), typeof(uint), typeof(long), typeof(ulong),
         typeof(short), typeof(ushort), typeof(byte), typeof(sbyte), typeof(bool)];

    internal static Dataset Load<TRow>(IEnumerable<TRow> rows, string featureColumnName, string labelColumnName, int[]? featureShape)
        where TRow : class
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(featureColumnName);
        ArgumentNullException.ThrowIfNull(labelColumnName);
        Func<TRow, float[]?> getFeatures = FeatureGetter<TRow>(featureColumnName);
        Func<TRow, float> getLabel = LabelGetter<TRow>(labelColumnName);

        var features = new List<float>();
        var labels = new List<float>();
        int featureLength = -1;
        int index = 0;
        foreach (TRow row in rows)
        {
            if (row is null)
                throw new InvalidDataException($"Row {index} is null.");
            float[] values = getFeatures(row)
                ?? throw new InvalidDataException($"Row {index}: the feature member '{featureColumnName}' is null.");
            if (featureLength < 0)
            {
                if (values.Length == 0)
                    throw new InvalidDataException($"Row {index}: the feature member '{featureColumnName}' is empty.");
                featureLength = values.Length;
            }
            else if (values.Length != featureLength)
                throw new InvalidDataException(
                    $"Row {index}: the feature member '{featureColumnName}' has {values.Length} values, but row 0 has {featureLength}.");
            features.AddRange(values);
            labels.Add(getLabel(row));
            index++;
        }

        if (index == 0)
            throw new ArgumentException("There are no rows: at least one is required.", nameof(rows));
        int[] shape = featureShape ?? [featureLength];
        if (shape.Length == 0 || shape.Any(d => d <= 0) || shape.Aggregate(1L, (a, d) => a * d) != featureLength)
            throw new ArgumentException(
                $"The feature shape [{string.Join(", ", shape)}] must have {featureLength} values, the length of '{featureColumnName}'.",
                nameof(featureShape));
        return new Dataset(features.ToArray(), shape, labels.ToArray());
    }

    internal static Func<TRow, float[]?> FeatureGetter<TRow>(string featureColumnName)
    {
        string name = featureColumnName;
        var row = Expression.Parameter(typeof(TRow), "row");
        Expression member = Member<TRow>(row, name, "feature", nameof(featureColumnName));
        Expression body = member.Type switch
        {
            var t when t == typeof(float[]) => member,
            var t when t == typeof(double[]) => Expression.Call(typeof(EnumerableLoader).GetMethod(nameof(ToSingle), BindingFlags.NonPublic | BindingFlags.Static)!, member),
            var t when t == typeof(float) => Expression.NewArrayInit(typeof(float), member),
            var t when t == typeof(double) => Expression.NewArrayInit(typeof(float), Expression.Convert(member, typeof(float))),
            _ => throw new ArgumentException(
                $"The feature member '{name}' of {typeof(TRow).FullName} is of type {member.Type.Name}; it must be float[], double[], float or double.",
                nameof(featureColumnName)),
        };
        return Expression.Lambda<Func<TRow, float[]?>>(body, row).Compile();
    }

    private static Func<TRow, float> LabelGetter<TRow>(string labelColumnName)
    {
        string name = labelColumnName;
        var row = Expression.Parameter(typeof(TRow), "row");
        Expression member = Member<TRow>(row, name, "label", nameof(labelColumnName));
        if (!LabelTypes.Contains(member.Type))
            throw new ArgumentException(
                $"The label member '{name}' of {typeof(TRow).FullName} is of type {member.Type.Name}; " +
                $"it must be one of {string.Join(", ", LabelTypes.Select(t => t.Name))}.",
                nameof(labelColumnName));
        Expression body = member.Type == typeof(bool)
            ? Expression.Condition(member, Expression.Constant(1f), Expression.Constant(0f))
            : Expression.Convert(member, typeof(float));
        return Expression.Lambda<Func<TRow, float>>(body, row).Compile();
    }

    internal static MemberExpression Member<TRow>(ParameterExpression row, string name, string role, string paramName)
    {
        const BindingFlags Flags = BindingFlags.Public | BindingFlags.Instance;
        PropertyInfo? property = typeof(TRow).GetProperty(name, Flags);
        if (property is not null && property.GetMethod is { IsPublic: true } && property.GetIndexParameters().Length == 0)
            return Expression.Property(row, property);
        FieldInfo? field = typeof(TRow).GetField(name, Flags);
        if (field is not null)
            return Expression.Field(row, field);
        throw new ArgumentException(
            $"The type {typeof(TRow).FullName} has no public field or property '{name}' to use as the {role} column.",
            paramName);
    }

    private static float[]? ToSingle(double[]? values)
    {
        if (values is null) return null;
        var result = new float[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = (float)values[i];
        return result;
    }
}
