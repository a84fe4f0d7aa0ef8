using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.Sparsity.Export.Onnx;

namespace Microsoft.ML.Sparsity.Export;

/// <summary>Collects the nodes and initializers of one ONNX graph, with unique value and node names.</summary>
internal sealed class OnnxGraphBuilder
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public GraphProto Graph { get; } = new();

    /// <summary>A name no value, initializer or node of the graph uses yet, derived from <paramref name="stem"/>.</summary>
    public string UniqueName(string stem)
    {
        string name = stem;
        for (int i = 1; !_names.Add(name); i++) name = stem + "_" + i;
        return name;
    }

    /// <summary>Adds a float32 initializer (raw little-endian data) and returns its name.</summary>
    public string AddInitializer(string stem, ReadOnlySpan<float> values, params long[] dims)
    {
        var tensor = new TensorProto
        {
            Name = UniqueName(stem),
            DataType = (int)TensorProto.Types.DataType.Float,
            // .NET runs little-endian, the byte order raw_data requires.
            RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values)),
        };
        tensor.Dims.AddRange(dims);
        Graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Adds a 1-D int64 initializer (e.g. the target shape of a Reshape) and returns its name.</summary>
    public string AddInt64Initializer(string stem, params long[] values)
    {
        var tensor = new TensorProto { Name = UniqueName(stem), DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        Graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Reserves a name that the caller gives a value itself (graph inputs and outputs).</summary>
    public string ReserveName(string name) =>
        _names.Add(name) ? name : throw new InvalidOperationException($"The name '{name}' is already used in the graph.");

    /// <summary>Adds a node of the default ONNX domain writing <paramref name="output"/> (a name from <see cref="UniqueName"/> or <see cref="ReserveName"/>).</summary>
    public string AddNode(string opType, string output, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = UniqueName(output + "/" + opType) };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return output;
    }

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A tensor type with the given element type and dimensions; a string dimension is symbolic.</summary>
    public static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType elementType, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (object dim in dims)
        {
            shape.Dim.Add(dim switch
            {
                string symbol => new TensorShapeProto.Types.Dimension { DimParam = symbol },
                int size => new TensorShapeProto.Types.Dimension { DimValue = size },
                _ => throw new ArgumentException($"Dimension '{dim}' must be an int or a symbol.", nameof(dims)),
            });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)elementType, Shape = shape } },
        };
    }
}
