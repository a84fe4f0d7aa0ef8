using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.Sparsity.Export.Onnx;

namespace Microsoft.ML.Sparsity.Export;

/// <summary>Collects the nodes and initializers of one ONNX graph, with unique value and node names.</summary>
internal sealed class OnnxGraphBuilder
{
    /// <summary>The most values one block of a sparse weight holds: its linear indices then fit int16.</summary>
    public const int SparseBlockLength = short.MaxValue + 1;

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

    /// <summary>
    /// Adds a float32 layer weight of shape <paramref name="dims"/> and returns the name of its value. A weight whose
    /// non-zeros with their indices take fewer bytes than its dense values (about a third zeros or more) is stored
    /// sparse: Constant nodes whose <c>sparse_value</c> (a SparseTensorProto) holds the non-zeros of a block of rows
    /// of at most <see cref="SparseBlockLength"/> values with their linear indices into the block as int16, 6 bytes a
    /// non-zero against 4 a dense value, and one Concat along the first axis joining the blocks. A row longer than a
    /// block makes one Constant with int32 indices (8 bytes a non-zero). ONNX Runtime makes the constants dense and
    /// folds the Concat when it loads the model.
    /// </summary>
    /// <remarks>
    /// Not sparse initializers (<c>GraphProto.sparse_initializer</c>): ONNX types those as sparse tensors, which Gemm,
    /// Conv and Concat do not take (onnx.checker's shape inference rejects the graph), while a Constant with a
    /// <c>sparse_value</c> outputs a dense tensor. ONNX asks for int64 indices; ONNX Runtime also reads int8, int16
    /// and int32 ones, and its own sparsifier writes the narrowest that fits.
    /// </remarks>
    public string AddWeight(string stem, ReadOnlySpan<float> values, params long[] dims)
    {
        int nonZeros = values.Length - values.Count(0f);
        int rows = (int)dims[0], rowLength = values.Length / rows;
        bool blocked = rowLength <= SparseBlockLength;
        if ((long)nonZeros * (sizeof(float) + (blocked ? sizeof(short) : sizeof(int))) >= (long)values.Length * sizeof(float))
            return AddInitializer(stem, values, dims);
        int rowsPerBlock = blocked ? SparseBlockLength / rowLength : rows;
        if (rowsPerBlock >= rows) return AddSparseConstant(UniqueName(stem), values, dims, blocked);

        var blocks = new List<string>();
        for (int row = 0; row < rows; row += rowsPerBlock)
        {
            int count = Math.Min(rowsPerBlock, rows - row);
            blocks.Add(AddSparseConstant(UniqueName($"{stem}.rows{row}"), values.Slice(row * rowLength, count * rowLength), [count, .. dims[1..]], int16Indices: true));
        }
        return AddNode("Concat", UniqueName(stem), blocks, Int("axis", 0));
    }

    /// <summary>A Constant node writing <paramref name="output"/>: <paramref name="values"/> (shape <paramref name="dims"/>) as a sparse tensor.</summary>
    private string AddSparseConstant(string output, ReadOnlySpan<float> values, long[] dims, bool int16Indices)
    {
        var nonZeros = new List<float>();
        var indices = new List<int>();
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] == 0) continue;
            nonZeros.Add(values[i]);
            indices.Add(i);
        }
        // .NET runs little-endian, the byte order raw_data requires.
        var tensor = new SparseTensorProto
        {
            Values = new TensorProto
            {
                DataType = (int)TensorProto.Types.DataType.Float,
                RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(nonZeros))),
            },
            Indices = new TensorProto
            {
                DataType = (int)(int16Indices ? TensorProto.Types.DataType.Int16 : TensorProto.Types.DataType.Int32),
                RawData = int16Indices
                    ? ByteString.CopyFrom(MemoryMarshal.AsBytes<short>(indices.Select(i => (short)i).ToArray()))
                    : ByteString.CopyFrom(MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(indices))),
            },
        };
        tensor.Values.Dims.Add(nonZeros.Count);
        tensor.Indices.Dims.Add(nonZeros.Count);
        tensor.Dims.AddRange(dims);
        return AddNode("Constant", output, [], new AttributeProto { Name = "sparse_value", Type = AttributeProto.Types.AttributeType.SparseTensor, SparseTensor = tensor });
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
