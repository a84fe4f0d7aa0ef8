using Google.Protobuf;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Export;
using Microsoft.ML.Sparsity.Export.Onnx;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>
/// The portable form of a <see cref="NeuralNetworkMulticlassModel"/> (<see cref="PortableModel"/>): a chain of ML.NET's
/// own transformers that reproduces the model's output columns.
/// </summary>
/// <remarks>
/// <para>The chain: <c>ApplyOnnxModel</c> runs the model's ONNX export, wrapped to take one unbatched example
/// (<c>[features]</c>) and to give <c>Score</c> (<c>[classes]</c>) and the class index <c>[1]</c>; <c>Hash</c> turns
/// that one-element vector into a scalar (OnnxTransformer 6.0 cannot give rank-0 outputs, and hashing is ML.NET's only
/// public vector-to-scalar transform; the hash seed is chosen so the classes' hashes differ); <c>MapValue</c> maps each
/// class's hash to its key, whose key values are the training label's, so <c>PredictedLabel</c> is the same key
/// column as the model's; <c>DropColumns</c> hides the helpers. Text class names also become <c>Score</c>'s slot names
/// (OnnxTransformer reads them from a node named <c>mlnet.Score.SlotNames</c>).</para>
/// </remarks>
internal static class PortableNetwork
{
    private const string IndexColumn = "__SparsityPredictedIndex";
    private const string HashColumn = "__SparsityPredictedIndexHash";
    private const string BatchInput = "__sparsity_batch_features";

    /// <summary>Writes the portable chain of <paramref name="model"/> into <paramref name="ctx"/>.</summary>
    public static void Save(NeuralNetworkMulticlassModel model, ModelSaveContext ctx) =>
        PortableModel.Save(model, Onnx(model), model.FeatureColumnName, model.Network.InputSize, (ml, onnxPath) => Chain(ml, model, onnxPath), ctx);

    /// <summary>The unbatched ONNX graph the portable chain runs.</summary>
    internal static ModelProto Onnx(NeuralNetworkMulticlassModel model)
    {
        var onnx = OnnxExporter.BuildModel(model.LevelNetwork, model.ClassNames, ModelFile.PackageVersion);
        var graph = onnx.Graph;
        int inputs = model.Network.InputSize, classes = model.ClassCount;
        // One example [features] in: reshaped to the exporter's [1, features] batch.
        foreach (var node in graph.Node)
            for (int i = 0; i < node.Input.Count; i++)
                if (node.Input[i] == OnnxExporter.InputName) node.Input[i] = BatchInput;
        graph.Input.Clear();
        graph.Input.Add(OnnxGraphBuilder.ValueInfo(model.FeatureColumnName, TensorProto.Types.DataType.Float, inputs));
        graph.Initializer.Add(Int64s("__sparsity_batch_shape", 1, inputs));
        graph.Initializer.Add(Int64s("__sparsity_score_shape", classes));
        graph.Node.Insert(0, Node("Reshape", BatchInput, model.FeatureColumnName, "__sparsity_batch_shape"));
        // Score [classes] and the class index [1] out.
        graph.Output.Clear();
        graph.Node.Add(Node("Reshape", ScoreColumns.Score, OnnxExporter.ProbabilitiesName, "__sparsity_score_shape"));
        graph.Node.Add(Node("ArgMax", IndexColumn, ScoreColumns.Score, OnnxGraphBuilder.Int("axis", 0), OnnxGraphBuilder.Int("keepdims", 1)));
        graph.Output.Add(OnnxGraphBuilder.ValueInfo(ScoreColumns.Score, TensorProto.Types.DataType.Float, classes));
        graph.Output.Add(OnnxGraphBuilder.ValueInfo(IndexColumn, TensorProto.Types.DataType.Int64, 1));
        if (model.ClassLabels is { ValueType: TextDataViewType } labels) AddSlotNames(onnx, labels.Names);
        return onnx;
    }

    /// <summary>
    /// OnnxTransformer gives output C slot names from the <c>keys_strings</c> of a node named <c>mlnet.C.SlotNames</c>
    /// (as ML.NET's own ONNX export writes them): a string-to-int LabelEncoder whose output nothing reads.
    /// </summary>
    private static void AddSlotNames(ModelProto onnx, string[] names)
    {
        onnx.OpsetImport.Add(new OperatorSetIdProto { Domain = "ai.onnx.ml", Version = 2 });
        var constant = new TensorProto { Name = "__sparsity_slot_names_in", DataType = (int)TensorProto.Types.DataType.String };
        constant.Dims.Add(1);
        constant.StringData.Add(ByteString.CopyFromUtf8(names[0]));
        onnx.Graph.Initializer.Add(constant);
        var node = Node("LabelEncoder", "__sparsity_slot_names_out", constant.Name);
        node.Name = $"mlnet.{ScoreColumns.Score}.SlotNames";
        node.Domain = "ai.onnx.ml";
        var keys = new AttributeProto { Name = "keys_strings", Type = AttributeProto.Types.AttributeType.Strings };
        keys.Strings.AddRange(names.Select(ByteString.CopyFromUtf8));
        node.Attribute.Add(keys);
        node.Attribute.Add(OnnxGraphBuilder.Ints("values_int64s", [.. Enumerable.Range(0, names.Length).Select(i => (long)i)]));
        onnx.Graph.Node.Add(node);
    }

    /// <summary>The estimators of the portable chain around the ONNX file at <paramref name="onnxPath"/>.</summary>
    private static IEstimator<ITransformer> Chain(MLContext ml, NeuralNetworkMulticlassModel model, string onnxPath)
    {
        int classes = model.ClassCount;
        var (hash, hashes) = IndexHash(ml, classes);
        var keyAnnotations = new DataViewSchema.Annotations.Builder();
        model.ClassLabels?.AddTo(keyAnnotations, AnnotationNames.KeyValues);
        var lookup = new ColumnsDataView(
            ("Hash", NumberDataViewType.UInt32, null, hashes),
            ("Key", new KeyDataViewType(typeof(uint), classes), keyAnnotations.ToAnnotations(), Enumerable.Range(1, classes).Select(k => (uint)k).ToArray()));
        return ml.Transforms.ApplyOnnxModel([ScoreColumns.Score, IndexColumn], [model.FeatureColumnName], onnxPath)
            .Append(hash)
            .Append(ml.Transforms.Conversion.MapValue(ScoreColumns.PredictedLabel, lookup, lookup.Schema["Hash"], lookup.Schema["Key"], HashColumn))
            .Append(ml.Transforms.DropColumns(IndexColumn, HashColumn));
    }

    /// <summary>A hash of the one-element class-index vector into a scalar, with a seed under which the classes' hashes differ.</summary>
    private static (HashingEstimator Estimator, uint[] Hashes) IndexHash(MLContext ml, int classes)
    {
        var indices = new ColumnsDataView((IndexColumn, new VectorDataViewType(NumberDataViewType.Int64, 1), null,
            Enumerable.Range(0, classes).Select(i => new VBuffer<long>(1, [i])).ToArray()));
        // 31-bit hashes of a few thousand classes rarely collide; a model with far more classes may find no seed.
        for (uint seed = 314489979; seed < 314489979 + 100; seed++)
        {
            var estimator = ml.Transforms.Conversion.Hash(new HashingEstimator.ColumnOptions(HashColumn, IndexColumn,
                numberOfBits: 31, seed: seed, useOrderedHashing: false, maximumNumberOfInverts: 0, combine: true));
            uint[] hashes = estimator.Fit(indices).Transform(indices).GetColumn<uint>(HashColumn).ToArray();
            if (hashes.Distinct().Count() == classes) return (estimator, hashes);
        }
        throw new NotSupportedException(
            $"The portable form cannot tell {classes} classes apart (their 31-bit hashes collide under 100 seeds); save fewer classes, or export with mlContext.Sparsity().ConvertToOnnx.");
    }

    private static NodeProto Node(string op, string output, params object[] inputsAndAttributes)
    {
        var node = new NodeProto { OpType = op, Name = $"{output}_{op}" };
        node.Output.Add(output);
        foreach (object item in inputsAndAttributes)
        {
            if (item is string input) node.Input.Add(input);
            else node.Attribute.Add((AttributeProto)item);
        }
        return node;
    }

    private static TensorProto Int64s(string name, params long[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        return tensor;
    }
}
