using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// The values of a key-typed label, in key order (ML.NET's <c>KeyValues</c> annotation): what the classes are called.
/// A classifier gives them back on its <c>PredictedLabel</c> key column (and as the <c>Score</c> column's slot names
/// when they are text), so <c>MapKeyToValue</c> after the model turns predictions back into the user's labels.
/// </summary>
/// <remarks>The values are held as invariant text with the name of their ML.NET type, so a model file can store them.</remarks>
internal sealed class ClassLabels
{
    private static readonly Dictionary<string, PrimitiveDataViewType> Types = new PrimitiveDataViewType[]
    {
        TextDataViewType.Instance, BooleanDataViewType.Instance,
        NumberDataViewType.Single, NumberDataViewType.Double, NumberDataViewType.Byte, NumberDataViewType.SByte,
        NumberDataViewType.Int16, NumberDataViewType.UInt16, NumberDataViewType.Int32, NumberDataViewType.UInt32,
        NumberDataViewType.Int64, NumberDataViewType.UInt64,
    }.ToDictionary(t => t.RawType.Name);

    public ClassLabels(PrimitiveDataViewType valueType, string[] names)
    {
        ValueType = valueType;
        Names = names;
    }

    /// <summary>The ML.NET type of the values (text, or a number type).</summary>
    public PrimitiveDataViewType ValueType { get; }

    /// <summary>The values as invariant text, one per class in key order.</summary>
    public string[] Names { get; }

    /// <summary>The name stored in model files for <see cref="ValueType"/> (the CLR type's name, e.g. <c>ReadOnlyMemory`1</c>, <c>Single</c>).</summary>
    public string TypeName => ValueType.RawType.Name;

    /// <summary>Rebuilds labels read from a model file.</summary>
    /// <exception cref="FormatException">The type name is not one ML.NET key values take.</exception>
    public static ClassLabels FromNames(string typeName, string[] names) =>
        Types.TryGetValue(typeName, out var type) ? new ClassLabels(type, names)
            : throw new FormatException($"'{typeName}' is not a type of label values (expected one of {string.Join(", ", Types.Keys)}).");

    /// <summary>The key values of <paramref name="column"/>, or null when it has none of a supported type.</summary>
    public static ClassLabels? Of(DataViewSchema.Column column)
    {
        var annotation = column.Annotations.Schema.GetColumnOrNull(AnnotationNames.KeyValues);
        if (annotation?.Type is not VectorDataViewType { ItemType: PrimitiveDataViewType itemType } || !Types.ContainsKey(itemType.RawType.Name))
            return null;
        return (ClassLabels?)typeof(ClassLabels).GetMethod(nameof(Read), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .MakeGenericMethod(itemType.RawType).Invoke(null, [column, itemType]);
    }

    private static ClassLabels Read<T>(DataViewSchema.Column column, PrimitiveDataViewType itemType)
    {
        VBuffer<T> values = default;
        column.Annotations.GetValue(AnnotationNames.KeyValues, ref values);
        return new ClassLabels(itemType, values.DenseValues().Select(v => Convert.ToString(v is ReadOnlyMemory<char> m ? m.ToString() : v, CultureInfo.InvariantCulture) ?? "").ToArray());
    }

    /// <summary>Adds the values to <paramref name="builder"/> as the annotation <paramref name="kind"/> (<c>KeyValues</c>, <c>SlotNames</c>, …).</summary>
    public void AddTo(DataViewSchema.Annotations.Builder builder, string kind)
    {
        var vectorType = new VectorDataViewType(ValueType, Names.Length);
        switch (ValueType.RawType)
        {
            case var t when t == typeof(ReadOnlyMemory<char>): Add(builder, kind, vectorType, Names.Select(n => n.AsMemory()).ToArray()); break;
            case var t when t == typeof(bool): Add(builder, kind, vectorType, Names.Select(bool.Parse).ToArray()); break;
            case var t when t == typeof(float): Add(builder, kind, vectorType, Names.Select(n => float.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(double): Add(builder, kind, vectorType, Names.Select(n => double.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(byte): Add(builder, kind, vectorType, Names.Select(n => byte.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(sbyte): Add(builder, kind, vectorType, Names.Select(n => sbyte.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(short): Add(builder, kind, vectorType, Names.Select(n => short.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(ushort): Add(builder, kind, vectorType, Names.Select(n => ushort.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(int): Add(builder, kind, vectorType, Names.Select(n => int.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(uint): Add(builder, kind, vectorType, Names.Select(n => uint.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(long): Add(builder, kind, vectorType, Names.Select(n => long.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            case var t when t == typeof(ulong): Add(builder, kind, vectorType, Names.Select(n => ulong.Parse(n, CultureInfo.InvariantCulture)).ToArray()); break;
            default: throw new InvalidOperationException($"Label values of type {ValueType} are not supported.");
        }
    }

    private static void Add<T>(DataViewSchema.Annotations.Builder builder, string kind, VectorDataViewType type, T[] values) =>
        builder.Add(kind, type, (ref VBuffer<T> value) => value = new VBuffer<T>(values.Length, (T[])values.Clone()));
}

/// <summary>The annotation kinds ML.NET's evaluators and key conversions read (ML.NET keeps its own constants internal).</summary>
internal static class AnnotationNames
{
    public const string KeyValues = "KeyValues";
    public const string SlotNames = "SlotNames";
    public const string ScoreColumnKind = "ScoreColumnKind";
    public const string ScoreValueKind = "ScoreValueKind";
    public const string TrainingLabelValues = "TrainingLabelValues";
    public const string IsNormalized = "IsNormalized";
}
