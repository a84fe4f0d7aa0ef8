using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>What a trainer's label column holds, as ML.NET's trainers of each task take it.</summary>
internal enum LabelKind
{
    /// <summary>A key (multiclass classification): the class index is the key value − 1; key value 0 (missing) skips the row.</summary>
    Key,
    /// <summary>A <see cref="bool"/> (binary classification): 1 for true, 0 for false.</summary>
    Boolean,
    /// <summary>A <see cref="float"/> (regression): the target; NaN (missing) skips the row.</summary>
    Single,
}

/// <summary>
/// Copies an <see cref="IDataView"/>'s features and labels (keys, Booleans or Singles) into the engine's contiguous buffers in one
/// cursor pass, checking the columns first as ML.NET's trainers do.
/// </summary>
internal static class DataViewReader
{
    /// <summary>Reads the examples of <paramref name="data"/>; rows with a missing label (key value 0, NaN) are skipped, as ML.NET's trainers skip them.</summary>
    /// <param name="data">The data.</param>
    /// <param name="featureColumnName">A known-size vector of <see cref="float"/>.</param>
    /// <param name="labelColumnName">The label column, of <paramref name="labelKind"/>; null reads no labels (every label is 0).</param>
    /// <param name="featureShape">The shape of one example's features; null takes the column's dimensions (e.g. [28, 28, 1]).</param>
    /// <param name="labelKind">What the label column holds.</param>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type; the message names it and what was expected.</exception>
    /// <exception cref="InvalidDataException">A feature is NaN or infinite (the message names the row and slot), or no row has a label.</exception>
    public static Dataset Read(IDataView data, string featureColumnName, string? labelColumnName, int[]? featureShape = null,
        LabelKind labelKind = LabelKind.Key)
    {
        ArgumentNullException.ThrowIfNull(data);
        var features = FeatureColumn(data.Schema, featureColumnName);
        int length = ((VectorDataViewType)features.Type).Size;
        int[] shape = FeatureShape(features, featureShape);
        DataViewSchema.Column? label = labelColumnName is null ? null : LabelColumn(data.Schema, labelColumnName, labelKind);
        var keyType = label?.Type as KeyDataViewType;

        long most = Array.MaxLength / length; // rows the engine's one contiguous buffer holds
        if (data.GetRowCount() > most)
            throw new ArgumentOutOfRangeException(nameof(data), data.GetRowCount(),
                $"The data has {data.GetRowCount():N0} rows of {length:N0} values in '{featureColumnName}'; the engine holds at most {most:N0} such rows in memory at once.");
        var values = new float[Math.Max(1, Math.Min(most, data.GetRowCount() ?? 1024) * length)];
        var labels = new float[Math.Max(1, (int)Math.Min(most, data.GetRowCount() ?? 1024))];
        int rows = 0, skipped = 0;
        using (var cursor = data.GetRowCursor(label is null ? [features] : [features, label.Value]))
        {
            var getFeatures = cursor.GetGetter<VBuffer<float>>(features);
            Func<float> getLabel = label is null ? () => 0 : LabelGetter(cursor, label.Value);
            VBuffer<float> buffer = default;
            while (cursor.MoveNext())
            {
                float value = getLabel();
                if (float.IsNaN(value)) { skipped++; continue; }
                if (float.IsInfinity(value))
                    throw new InvalidDataException($"Row {cursor.Position} of the label column '{labelColumnName}': the value is {value}; labels must be finite.");
                if (rows == labels.Length)
                {
                    if (rows == most)
                        throw new ArgumentOutOfRangeException(nameof(data), $"The data has more than {most:N0} rows of {length:N0} values in '{featureColumnName}'; the engine holds at most that many in memory at once.");
                    int grown = (int)Math.Min(most, rows * 2L);
                    Array.Resize(ref labels, grown);
                    Array.Resize(ref values, grown * length);
                }
                getFeatures(ref buffer);
                var row = values.AsSpan(rows * length, length);
                buffer.CopyTo(row);
                int bad = NonFinite.First(row);
                if (bad >= 0)
                    throw new InvalidDataException(
                        $"Row {cursor.Position}, slot {bad} of the feature column '{featureColumnName}': the value is {row[bad]}; features must be finite " +
                        "(replace missing values first, e.g. with mlContext.Transforms.ReplaceMissingValues).");
                labels[rows++] = value;
            }
        }
        if (rows == 0)
            throw new InvalidDataException(skipped > 0
                ? $"Every one of the {skipped} rows has a missing label ({(labelKind == LabelKind.Key ? "key value 0" : "NaN")}) in column '{labelColumnName}'; there is nothing to train on."
                : "The data has no rows.");
        if (rows < labels.Length)
        {
            Array.Resize(ref labels, rows);
            Array.Resize(ref values, rows * length);
        }
        return new Dataset(values, shape, labels, keyType is null ? null : ClassLabels.Of(label!.Value), (int)(keyType?.Count ?? 0), validate: false)
        {
            SkippedRows = skipped,
        };
    }

    /// <summary>The feature column, checked to be a known-size vector of <see cref="float"/>.</summary>
    public static DataViewSchema.Column FeatureColumn(DataViewSchema schema, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name, "featureColumnName");
        var column = schema.GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException(
            "featureColumnName", name, $"The features column '{name}' was not found in the data (it has {Columns(schema)}).");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType n, IsKnownSize: true } || n != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException("featureColumnName", name,
                FeatureMismatch(name, $"{column.Type}"));
        return column;
    }

    /// <summary>The label column, checked to be of <paramref name="kind"/>.</summary>
    public static DataViewSchema.Column LabelColumn(DataViewSchema schema, string name, LabelKind kind = LabelKind.Key)
    {
        ArgumentException.ThrowIfNullOrEmpty(name, "labelColumnName");
        var column = schema.GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException(
            "labelColumnName", name, $"The label column '{name}' was not found in the data (it has {Columns(schema)}).");
        bool fits = kind switch
        {
            LabelKind.Key => column.Type is KeyDataViewType,
            LabelKind.Boolean => column.Type is BooleanDataViewType,
            _ => column.Type == NumberDataViewType.Single,
        };
        if (!fits)
            throw new ArgumentOutOfRangeException("labelColumnName", name,
                $"Schema mismatch for label column '{name}': expected {Expected(kind)}, got {column.Type}. {LabelAdvice(kind, name)}");
        if (column.Type is KeyDataViewType key && key.Count > int.MaxValue)
            throw new ArgumentOutOfRangeException("labelColumnName", name, $"The label column '{name}' has {key.Count} key values; at most {int.MaxValue} classes are supported.");
        return column;
    }

    /// <summary>The message for a features column that is not a known-size vector of <see cref="float"/>; <paramref name="got"/> describes it.</summary>
    public static string FeatureMismatch(string name, string got) =>
        $"Schema mismatch for feature column '{name}': expected a known-size vector of Single, got {got}. " +
        "Put the features into one vector with mlContext.Transforms.Concatenate (and ConvertType to Single where needed).";

    /// <summary>The type a label of <paramref name="kind"/> must have, as error messages name it.</summary>
    public static string Expected(LabelKind kind) => kind switch { LabelKind.Key => "Key", LabelKind.Boolean => "Boolean", _ => "Single" };

    /// <summary>How to get a label column of <paramref name="kind"/>.</summary>
    public static string LabelAdvice(LabelKind kind, string name) => kind switch
    {
        LabelKind.Key => $"Add mlContext.Transforms.Conversion.MapValueToKey(\"{name}\") in front of the trainer.",
        LabelKind.Boolean => "Binary classification takes a Boolean label (true for the positive class), as ML.NET's binary trainers do.",
        _ => $"Regression takes a Single label; convert it with mlContext.Transforms.Conversion.ConvertType(\"{name}\", outputKind: DataKind.Single).",
    };

    private static int[] FeatureShape(DataViewSchema.Column features, int[]? requested)
    {
        var type = (VectorDataViewType)features.Type;
        if (requested is null)
            return type.Dimensions.Length > 1 ? [.. type.Dimensions] : [type.Size];
        if (requested.Length == 0 || requested.Any(d => d <= 0) || requested.Aggregate(1L, (a, d) => a * d) != type.Size)
            throw new ArgumentOutOfRangeException("InputShape", $"[{string.Join(", ", requested)}]",
                $"The input shape must have {type.Size} values, as the feature column '{features.Name}' ({type}) has.");
        return requested;
    }

    /// <summary>A getter of the label as the engine holds it (a class index, 0/1 or the target); NaN when missing.</summary>
    private static Func<float> LabelGetter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        switch (column.Type)
        {
            case BooleanDataViewType: { var g = cursor.GetGetter<bool>(column); bool v = false; return () => { g(ref v); return v ? 1 : 0; }; }
            case NumberDataViewType: { var g = cursor.GetGetter<float>(column); float v = 0; return () => { g(ref v); return v; }; }
        }
        Func<long> key = column.Type.RawType switch
        {
            var t when t == typeof(byte) => Key<byte>(cursor, column, v => v),
            var t when t == typeof(ushort) => Key<ushort>(cursor, column, v => v),
            var t when t == typeof(uint) => Key<uint>(cursor, column, v => v),
            var t when t == typeof(ulong) => Key<ulong>(cursor, column, v => (long)v),
            _ => throw new ArgumentOutOfRangeException("labelColumnName", column.Name, $"Key columns of raw type {column.Type.RawType.Name} are not supported."),
        };
        return () => key() is var k && k == 0 ? float.NaN : k - 1;
    }

    private static Func<long> Key<T>(DataViewRowCursor cursor, DataViewSchema.Column column, Func<T, long> widen)
    {
        var getter = cursor.GetGetter<T>(column);
        T value = default!;
        return () => { getter(ref value); return widen(value); };
    }

    private static string Columns(DataViewSchema schema) =>
        schema.Count == 0 ? "no columns" : string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}' ({c.Type})"));
}
