using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>The output <see cref="SchemaShape"/> of the package's estimators.</summary>
internal static class SchemaShapes
{
    private static SchemaShape.Column Column(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType, bool isKey,
        params SchemaShape.Column[] annotations) => MLNetInternals.Column(name, kind, itemType, isKey, annotations);

    /// <summary>
    /// <paramref name="input"/> with a multiclass model's <c>Score</c> and <c>PredictedLabel</c>, after checking the
    /// features column (a known-size vector of <see cref="float"/>) and the label column (a key).
    /// </summary>
    public static SchemaShape AddScoreColumns(SchemaShape input, string featureColumnName, string labelColumnName)
    {
        CheckFeatures(input, featureColumnName, nameof(featureColumnName));
        var label = CheckLabel(input, labelColumnName);

        var text = TextDataViewType.Instance;
        var scalar = SchemaShape.Column.VectorKind.Scalar;
        var vector = SchemaShape.Column.VectorKind.Vector;
        var kinds = new[] { Column(AnnotationNames.ScoreColumnKind, scalar, text, false), Column(AnnotationNames.ScoreValueKind, scalar, text, false) };
        var keyValues = Find(label.Annotations, AnnotationNames.KeyValues, out var values) ? values : (SchemaShape.Column?)null;
        var scoreAnnotations = kinds.ToList();
        var labelAnnotations = kinds.ToList();
        if (keyValues is SchemaShape.Column kv)
        {
            if (kv.ItemType is TextDataViewType) scoreAnnotations.Add(Column(AnnotationNames.SlotNames, vector, text, false));
            scoreAnnotations.Add(Column(AnnotationNames.TrainingLabelValues, vector, kv.ItemType, false));
            labelAnnotations.Add(Column(AnnotationNames.KeyValues, vector, kv.ItemType, false));
        }
        var columns = input.Where(c => c.Name != ScoreColumns.Score && c.Name != ScoreColumns.PredictedLabel).ToList();
        columns.Add(Column(ScoreColumns.Score, vector, NumberDataViewType.Single, false, [.. scoreAnnotations]));
        columns.Add(Column(ScoreColumns.PredictedLabel, scalar, NumberDataViewType.UInt32, true, [.. labelAnnotations]));
        return new SchemaShape(columns);
    }

    /// <summary>The shape of a whole schema's visible columns, as ML.NET's own (internal) <c>SchemaShape.Create</c> gives it.</summary>
    public static SchemaShape Of(DataViewSchema schema) =>
        new(schema.Where(c => !c.IsHidden).Select(c => ShapeOf(c.Name, c.Type, new SchemaShape(c.Annotations.Schema.Select(a => ShapeOf(a.Name, a.Type, null))))));

    private static SchemaShape.Column ShapeOf(string name, DataViewType type, SchemaShape? annotations)
    {
        var kind = type is VectorDataViewType v ? (v.IsKnownSize ? SchemaShape.Column.VectorKind.Vector : SchemaShape.Column.VectorKind.VariableVector) : SchemaShape.Column.VectorKind.Scalar;
        var item = type is VectorDataViewType vector ? vector.ItemType : type;
        bool isKey = item is KeyDataViewType;
        if (isKey) item = RawNumberType(item.RawType);
        return MLNetInternals.Column(name, kind, item, isKey, annotations is null ? [] : [.. annotations]);
    }

    private static DataViewType RawNumberType(Type raw) =>
        raw == typeof(byte) ? NumberDataViewType.Byte : raw == typeof(ushort) ? NumberDataViewType.UInt16 : raw == typeof(uint) ? NumberDataViewType.UInt32 : NumberDataViewType.UInt64;

    /// <summary>
    /// <paramref name="input"/> with a known-size vector of <see cref="float"/> named <paramref name="outputColumnName"/>
    /// (replacing a column of that name), after checking the input column (a known-size vector of <see cref="float"/>)
    /// and, when named, the label column (a key).
    /// </summary>
    public static SchemaShape AddVectorColumn(SchemaShape input, string inputColumnName, string outputColumnName, string? labelColumnName)
    {
        CheckFeatures(input, inputColumnName, nameof(inputColumnName));
        if (labelColumnName is not null) CheckLabel(input, labelColumnName);
        var columns = input.Where(c => c.Name != outputColumnName).ToList();
        columns.Add(Column(outputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false));
        return new SchemaShape(columns);
    }

    private static void CheckFeatures(SchemaShape input, string name, string argument)
    {
        if (!Find(input, name, out var features))
            throw new ArgumentOutOfRangeException(argument, name, $"The features column '{name}' was not found in the input schema.");
        if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.IsKey || features.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(argument, name,
                DataViewReader.FeatureMismatch(name, Describe(features)));
    }

    private static SchemaShape.Column CheckLabel(SchemaShape input, string labelColumnName, LabelKind kind = LabelKind.Key)
    {
        if (!Find(input, labelColumnName, out var label))
            throw new ArgumentOutOfRangeException(nameof(labelColumnName), labelColumnName, $"The label column '{labelColumnName}' was not found in the input schema.");
        bool fits = label.Kind == SchemaShape.Column.VectorKind.Scalar && kind switch
        {
            LabelKind.Key => label.IsKey,
            LabelKind.Boolean => !label.IsKey && label.ItemType is BooleanDataViewType,
            _ => !label.IsKey && label.ItemType == NumberDataViewType.Single,
        };
        if (!fits)
            throw new ArgumentOutOfRangeException(nameof(labelColumnName), labelColumnName,
                $"Schema mismatch for label column '{labelColumnName}': expected {DataViewReader.Expected(kind)}, got {Describe(label)}. " +
                DataViewReader.LabelAdvice(kind, labelColumnName));
        return label;
    }

    /// <summary>
    /// <paramref name="input"/> with a binary classifier's <c>Score</c>, <c>Probability</c> (Singles) and
    /// <c>PredictedLabel</c> (a Boolean), after checking the features column and the label column (a Boolean).
    /// </summary>
    public static SchemaShape AddBinaryColumns(SchemaShape input, string featureColumnName, string labelColumnName)
    {
        CheckFeatures(input, featureColumnName, nameof(featureColumnName));
        CheckLabel(input, labelColumnName, LabelKind.Boolean);
        return Add(input,
            Scalar(ScoreColumns.Score, NumberDataViewType.Single),
            Scalar(ScoreColumns.Probability, NumberDataViewType.Single, Column(AnnotationNames.IsNormalized, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false)),
            Scalar(ScoreColumns.PredictedLabel, BooleanDataViewType.Instance));
    }

    /// <summary><paramref name="input"/> with a regression model's <c>Score</c> (a Single), after checking the features column and the label column (a Single).</summary>
    public static SchemaShape AddRegressionColumns(SchemaShape input, string featureColumnName, string labelColumnName)
    {
        CheckFeatures(input, featureColumnName, nameof(featureColumnName));
        CheckLabel(input, labelColumnName, LabelKind.Single);
        return Add(input, Scalar(ScoreColumns.Score, NumberDataViewType.Single));
    }

    /// <summary>A scalar output column with the score kinds (and <paramref name="more"/>) as annotations.</summary>
    private static SchemaShape.Column Scalar(string name, DataViewType type, params SchemaShape.Column[] more)
    {
        var text = TextDataViewType.Instance;
        var scalar = SchemaShape.Column.VectorKind.Scalar;
        return Column(name, scalar, type, false,
            [Column(AnnotationNames.ScoreColumnKind, scalar, text, false), Column(AnnotationNames.ScoreValueKind, scalar, text, false), .. more]);
    }

    private static SchemaShape Add(SchemaShape input, params SchemaShape.Column[] added)
    {
        var columns = input.Where(c => added.All(a => a.Name != c.Name)).ToList();
        columns.AddRange(added);
        return new SchemaShape(columns);
    }

    /// <summary>The last column of that name (the visible one), as ML.NET's own (internal) lookup finds it.</summary>
    public static bool Find(SchemaShape shape, string name, out SchemaShape.Column column)
    {
        column = shape.LastOrDefault(c => c.Name == name);
        return column.Name is not null;
    }

    private static string Describe(SchemaShape.Column column) =>
        $"{(column.IsKey ? "Key of " : "")}{column.ItemType}{(column.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : column.Kind == SchemaShape.Column.VectorKind.Vector ? " vector" : " vector of unknown size")}";
}
