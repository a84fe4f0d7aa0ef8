using System.Numerics.Tensors;
using System.Text.Json;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Export;
using Microsoft.ML.Sparsity.Export.Onnx;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Tests.Data;
using Microsoft.ML.Sparsity.Tests.Inference;
using Microsoft.ML.Sparsity.Training;
using Xunit;
using Xunit.Abstractions;

namespace Microsoft.ML.Sparsity.Tests.Export;

/// <summary>
/// Exports networks to ONNX and runs them in a real ONNX Runtime (Microsoft.ML.OnnxRuntime in-process, directly or through
/// ML.NET's ApplyOnnxModel): the probabilities must match the engine's softmax(logits) within 1e-4 and the predicted
/// labels must be equal.
/// </summary>
public sealed class OnnxExportTests(ITestOutputHelper log) : IDisposable
{
    private const float Tolerance = 1e-4f;
    private readonly WorkerPool _pool = new(2);
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("sparsity-onnx-export-");

    public void Dispose()
    {
        _pool.Dispose();
        _folder.Delete(recursive: true);
    }

    [Fact]
    public void LeNet_300_100_matches_the_engine()
    {
        var network = Build([.. Layers.LeNet300100(), Layers.Dense(10)], [784], seed: 1);
        RandomizeBiases(network, seed: 2);
        AssertMatchesEngine(("lenet", network, RandomInputs(784, 32, seed: 3)));
    }

    [Fact]
    public void Small_cnn_matches_the_engine_and_transposes_once()
    {
        var network = Build([.. Layers.SmallCnn(), Layers.Dense(10)], [28, 28, 1], seed: 4);
        RandomizeBiases(network, seed: 5);
        AssertMatchesEngine(("cnn", network, RandomInputs(784, 16, seed: 6)));

        // One channel in: a reshape to NCHW; consecutive conv/pool layers stay NCHW; one Transpose back before Flatten.
        var graph = OnnxExporter.BuildModel(network, null, "test").Graph;
        Assert.Equal(1, graph.Node.Count(n => n.OpType == "Transpose"));
        Assert.Equal(["Reshape", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Transpose", "Flatten", "Gemm", "Relu", "Gemm", "Softmax", "ArgMax"],
            graph.Node.Select(n => n.OpType));
    }

    [Fact]
    public void Every_layer_kind_matches_the_engine()
    {
        // Strided padded conv, 2-D batch norm, leaky ReLU, dropout, conv without bias, tanh, average pooling with
        // overlapping windows, flatten, 1-D batch norm, sigmoid; three channels, so the transposes really move values.
        var mixed = Build(
        [
            Layers.Conv2d(8, 3, stride: 2, padding: 1), Layers.BatchNorm(), Layers.Activation(ActivationKind.LeakyReLU), Layers.Dropout(0.3f),
            Layers.Conv2d(6, 3, padding: 1, useBias: false), Layers.Activation(ActivationKind.Tanh), Layers.AvgPool2d(2, stride: 1),
            Layers.Flatten(), Layers.Dense(12), Layers.BatchNorm(), Layers.Activation(ActivationKind.Sigmoid), Layers.Dropout(0.5f), Layers.Dense(5),
        ], [10, 10, 3], seed: 7);
        // Overlapping max pooling, batch norm after pooling, global average pooling, dense without bias.
        var pooled = Build(
        [
            Layers.Conv2d(4, 3), Layers.ReLU(), Layers.MaxPool2d(3, stride: 2), Layers.BatchNorm(), Layers.GlobalAveragePool(), Layers.Dense(3, useBias: false),
        ], [9, 9, 2], seed: 8);
        // Batch norm straight on the input image, a dense layer straight after a conv (it flattens channels-last),
        // and a conv whose output is a single pixel (no transpose needed).
        var direct = Build(
        [
            Layers.BatchNorm(), Layers.Conv2d(3, 2), Layers.Dense(4), Layers.ReLU(), Layers.Dense(3),
        ], [5, 5, 2], seed: 9);
        var onePixel = Build([Layers.Conv2d(5, 3), Layers.Activation(ActivationKind.Tanh), Layers.Dense(3)], [3, 3, 4], seed: 10);
        // 1-D batch norm on the input features; batch norm over the last axis of a rank-2 input.
        var vector = Build([Layers.BatchNorm(), Layers.Dense(6), Layers.Activation(ActivationKind.Tanh), Layers.Dense(3)], [20], seed: 11);
        var matrix = Build([Layers.BatchNorm(), Layers.Dense(4)], [4, 5], seed: 12);

        var cases = new[] { ("mixed", mixed), ("pooled", pooled), ("direct", direct), ("one_pixel", onePixel), ("vector", vector), ("matrix", matrix) };
        int seed = 100;
        foreach (var (_, network) in cases)
        {
            RandomizeBiases(network, seed++);
            RandomizeBatchNorms(network, seed++);
        }
        AssertMatchesEngine(cases.Select(c => (c.Item1, c.Item2, RandomInputs(c.Item2.InputSize, 12, seed++))).ToArray());
        // Four channels in: one Transpose to NCHW; the 1×1 conv output flattens without one.
        Assert.Equal(["Reshape", "Transpose", "Conv", "Tanh", "Flatten", "Gemm", "Softmax", "ArgMax"],
            OnnxExporter.BuildModel(onePixel, null, "test").Graph.Node.Select(n => n.OpType));
    }

    [Fact]
    public void Weights_that_are_90_percent_zeros_export_as_zeros_and_match_the_engine()
    {
        var mlp = Build([.. Layers.LeNet300100(), Layers.Dense(10)], [784], seed: 13);
        var cnn = Build([.. Layers.SmallCnn(), Layers.Dense(10)], [28, 28, 1], seed: 14);
        var random = new Random(15);
        foreach (var network in new[] { mlp, cnn })
        {
            RandomizeBiases(network, random.Next());
            foreach (var weight in network.Parameters.Where(p => p.Kind == ParameterKind.Weight))
            {
                weight.Mask = new float[weight.Length];
                for (int i = 0; i < weight.Length; i++)
                {
                    bool kept = random.NextDouble() >= 0.9;
                    weight.Mask[i] = kept ? 1 : 0;
                    if (!kept) weight.Value[i] = 0;
                }
            }
        }
        AssertMatchesEngine(("sparse_mlp", mlp, RandomInputs(784, 16, seed: 16)), ("sparse_cnn", cnn, RandomInputs(784, 8, seed: 17)));

        foreach (var network in new[] { mlp, cnn })
        {
            var graph = OnnxExporter.BuildModel(network, null, "test").Graph;
            foreach (var weight in network.Parameters.Where(p => p.Kind == ParameterKind.Weight))
            {
                var exported = ExportedWeight(graph, weight.Name);
                Assert.Equal(weight.Value.Count(v => v == 0), exported.Count(v => v == 0));
                Assert.InRange(exported.Count(v => v == 0), (int)(0.88 * weight.Length), weight.Length);
            }
        }
    }

    [Fact]
    public void Ragged_NM_models_served_by_the_NM_kernels_match_the_export()
    {
        // LeNet 1:8 on every layer (300 and 100 inputs end in ragged groups of 4) and a CNN at 2:4 whose 5- and 6-channel
        // convolutions and 21-input dense layer end each run in a ragged group; the engine serves them from the N:M format.
        var lenet = WeightFormatTests.RaggedLeNet().WithWeightFormats(WeightFormat.NM);
        var cnn = WeightFormatTests.RaggedModel(2, 4).WithWeightFormats(WeightFormat.NM);
        Assert.All(lenet.WeightFormats.Concat(cnn.WeightFormats), f => Assert.Equal(WeightFormat.NM, f.Batched));
        var lenetNetwork = lenet.PredictionNetwork(_pool);
        var cnnNetwork = cnn.PredictionNetwork(_pool);
        RandomizeBiases(lenetNetwork, seed: 21);
        RandomizeBiases(cnnNetwork, seed: 22);
        AssertMatchesEngine(("ragged_lenet_1_8", lenetNetwork, RandomInputs(784, 16, seed: 23)),
            ("ragged_cnn_2_4", cnnNetwork, RandomInputs(cnnNetwork.InputSize, 8, seed: 24)));
    }

    [Fact]
    public void A_90_percent_sparse_LeNet_file_is_at_most_a_fifth_of_the_dense_one_and_matches_the_engine()
    {
        var lenet = Build([.. Layers.LeNet300100(), Layers.Dense(10)], [784], seed: 20);
        RandomizeBiases(lenet, seed: 21);
        long denseBytes = new FileInfo(Export("lenet_dense", lenet)).Length;
        KeepLargest(lenet, 0.1);
        // Rows longer than a sparse block (int32 indices), and a weight with no non-zero left.
        var wide = Build([Layers.Dense(3), Layers.Dense(2)], [OnnxGraphBuilder.SparseBlockLength + 100], seed: 22);
        RandomizeBiases(wide, seed: 23);
        KeepLargest(wide, 0.1);
        Array.Clear(wide.Parameters.Last(p => p.Kind == ParameterKind.Weight).Value);

        var inputs = RandomInputs(784, 16, seed: 24);
        AssertMatchesEngine(("lenet_sparse", lenet, inputs), ("wide_sparse", wide, RandomInputs(wide.InputSize, 4, seed: 25)));
        string sparsePath = Export("lenet_sparse", lenet);
        double ratio = (double)new FileInfo(sparsePath).Length / denseBytes;
        log.WriteLine($"90% sparse LeNet-300-100: {new FileInfo(sparsePath).Length:N0} bytes, dense {denseBytes:N0}: {ratio:F3}×");
        Assert.True(ratio <= 0.2, $"The 90% sparse file is {ratio:F3}× the dense one.");

        // Every weight is stored sparse, and an ML.NET application scores the file like the engine.
        foreach (var network in new[] { lenet, wide })
        {
            var graph = OnnxExporter.BuildModel(network, null, "test").Graph;
            foreach (var weight in network.Parameters.Where(p => p.Kind == ParameterKind.Weight))
            {
                Assert.DoesNotContain(graph.Initializer, t => t.Name == weight.Name);
                Assert.Equal(weight.Value, ExportedWeight(graph, weight.Name));
            }
        }
        var (probabilities, labels) = EngineScores(lenet, inputs, 16);
        AssertClose("lenet_sparse (ML.NET)", probabilities, labels, OnnxRuntimeRunner.RunThroughMlNet(new OnnxJob(sparsePath, inputs, [16, 784])), 16, 10);
    }

    [Fact]
    public void MLNET_ApplyOnnxModel_and_a_PredictionEngine_score_the_export_like_the_engine()
    {
        var cnn = Build([.. Layers.SmallCnn(), Layers.Dense(10)], [28, 28, 1], seed: 26);
        RandomizeBiases(cnn, seed: 27);
        var inputs = RandomInputs(784, 8, seed: 28);
        var result = OnnxRuntimeRunner.RunThroughMlNet(new OnnxJob(Export("mlnet_cnn", cnn), inputs, [8, 784]));
        var (probabilities, labels) = EngineScores(cnn, inputs, 8);
        AssertClose("mlnet_cnn", probabilities, labels, result, 8, 10);
    }

    [DebianFashionMnistFact]
    public void A_model_trained_on_Fashion_MNIST_matches_the_engine_on_real_images()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFashionMnist(FashionMnistSplit.Train);
        var options = new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Conv2d(8, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Flatten(), Layers.Dense(32), Layers.ReLU()],
            Epochs = 1,
            BatchSize = 32,
            NumberOfThreads = 2,
        };
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(ml.Data.TakeRows(data, 2000));
        IDataView imagesView = ml.Data.TakeRows(data, 64);
        Dataset images = DataViewReader.Read(imagesView, "Features", "Label");

        string path = Path.Combine(_folder.FullName, "fashion.onnx");
        ml.Sparsity().ConvertToOnnx(model, path);
        var result = OnnxRuntimeRunner.Run([new OnnxJob(path, images.Features[..(64 * 784)], [64, 784])])[0];

        var (engineProbabilities, predictedKeys) = ScoredRows.Read(model.Transform(imagesView));
        var engineLabels = predictedKeys.Select(k => (long)k - 1).ToArray();
        AssertClose("fashion", engineProbabilities, engineLabels, result, 64, 10);
        double accuracy = Enumerable.Range(0, 64).Count(i => result.Outputs[OnnxExporter.PredictedLabelName].Data[i] == images.GetLabel(i)) / 64.0;
        log.WriteLine($"ONNX Runtime accuracy on the first 64 training images after one epoch on 2,000: {accuracy:P1}");
        Assert.True(accuracy > 0.5, $"accuracy {accuracy:P1}");

        var model2 = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        var metadata = model2.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(model.ClassNames, JsonSerializer.Deserialize<string[]>(metadata["class_names"]));
        Assert.Equal(Microsoft.ML.Sparsity.Serialization.ModelFile.PackageVersion, model2.ProducerVersion);
    }

    [Fact]
    public void The_model_declares_its_format_inputs_outputs_and_metadata()
    {
        var network = Build([Layers.Dense(8), Layers.ReLU(), Layers.Dense(3)], [2, 3], seed: 18);
        string[] classes = ["cat", "dog", "\"quoted\" bird"];
        using var stream = new MemoryStream();
        OnnxExporter.Export(network, classes, stream, "0.1.0");
        var model = ModelProto.Parser.ParseFrom(stream.ToArray());

        Assert.Equal(7, model.IrVersion);
        Assert.Equal(13, Assert.Single(model.OpsetImport).Version);
        Assert.Equal("Microsoft.ML.Sparsity", model.ProducerName);
        Assert.Equal("0.1.0", model.ProducerVersion);
        var input = Assert.Single(model.Graph.Input);
        Assert.Equal("features", input.Name);
        Assert.Equal((int)TensorProto.Types.DataType.Float, input.Type.TensorType.ElemType);
        Assert.Equal("batch", input.Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal(6, input.Type.TensorType.Shape.Dim[1].DimValue);
        Assert.Equal(["probabilities", "predicted_label"], model.Graph.Output.Select(o => o.Name));
        Assert.Equal((int)TensorProto.Types.DataType.Int64, model.Graph.Output[1].Type.TensorType.ElemType);
        var metadata = model.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(classes, JsonSerializer.Deserialize<string[]>(metadata["class_names"]));
        Assert.Equal([2, 3], JsonSerializer.Deserialize<int[]>(metadata["input_shape"])!);
        Assert.Equal("Microsoft.ML.Sparsity 0.1.0", metadata["producer"]);
        var argMax = model.Graph.Node.Single(n => n.OpType == "ArgMax");
        Assert.Equal(0, argMax.Attribute.Single(a => a.Name == "keepdims").I);
        Assert.True(argMax.Attribute.Single(a => a.Name == "keepdims").HasI);

        // No class names: no class_names entry.
        Assert.DoesNotContain(OnnxExporter.BuildModel(network, null, "0.1.0").MetadataProps, p => p.Key == "class_names");
    }

    [Fact]
    public void Wrong_class_name_count_throws_and_writes_nothing()
    {
        var network = Build([Layers.Dense(3)], [4], seed: 19);
        using var stream = new MemoryStream();
        var e = Assert.Throws<ArgumentException>(() => OnnxExporter.Export(network, ["a", "b"], stream, "0.1.0"));
        Assert.Equal("classNames", e.ParamName);
        Assert.Equal(0, stream.Length);
    }

    // ------------------------------------------------------------------ helpers

    private SequentialNetwork Build(LayerDefinition[] layers, int[] inputShape, int seed) =>
        new(layers, inputShape, new LayerBuildContext(_pool, WeightInitializer.GlorotUniform, seed));

    private static float[] RandomInputs(int features, int batch, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, features * batch).Select(_ => (float)random.NextDouble()).ToArray();
    }

    /// <summary>Biases start at zero; give them values so a wrongly wired bias shows.</summary>
    private static void RandomizeBiases(SequentialNetwork network, int seed)
    {
        var random = new Random(seed);
        foreach (var bias in network.Parameters.Where(p => p.Kind == ParameterKind.Bias))
            for (int i = 0; i < bias.Length; i++) bias.Value[i] = (float)(random.NextDouble() - 0.5) * 0.2f;
    }

    /// <summary>Non-trivial scale, shift and running statistics, so every batch-norm input must be wired right.</summary>
    private static void RandomizeBatchNorms(SequentialNetwork network, int seed)
    {
        var random = new Random(seed);
        float Uniform(double low, double high) => (float)(low + (high - low) * random.NextDouble());
        foreach (var norm in network.Layers.OfType<BatchNormLayer>())
        {
            for (int c = 0; c < norm.Channels; c++)
            {
                norm.Gamma.Value[c] = Uniform(0.5, 1.5);
                norm.Beta.Value[c] = Uniform(-0.5, 0.5);
                norm.RunningMean[c] = Uniform(-0.5, 0.5);
                norm.RunningVariance[c] = Uniform(0.3, 2);
            }
        }
    }

    private string Export(string name, SequentialNetwork network)
    {
        string path = Path.Combine(_folder.FullName, name + ".onnx");
        using (var file = File.Create(path)) OnnxExporter.Export(network, null, file, "test");
        return path;
    }

    /// <summary>Keeps the largest-magnitude <paramref name="density"/> of each weight and zeros (and masks) the rest.</summary>
    private static void KeepLargest(SequentialNetwork network, double density)
    {
        foreach (var weight in network.Parameters.Where(p => p.Kind == ParameterKind.Weight))
        {
            float threshold = weight.Value.Select(MathF.Abs).OrderDescending().ElementAt(Math.Max(1, (int)(density * weight.Length)) - 1);
            weight.Mask = weight.Value.Select(v => MathF.Abs(v) >= threshold ? 1f : 0f).ToArray();
            for (int i = 0; i < weight.Length; i++) weight.Value[i] *= weight.Mask[i];
        }
    }

    /// <summary>Exports each network, runs each in ONNX Runtime, and compares with the engine.</summary>
    private void AssertMatchesEngine(params (string Name, SequentialNetwork Network, float[] Inputs)[] cases)
    {
        var jobs = new List<OnnxJob>();
        foreach (var (name, network, inputs) in cases)
            jobs.Add(new OnnxJob(Export(name, network), inputs, [inputs.Length / network.InputSize, network.InputSize]));
        if (!OnnxRuntimeRunner.CheckWithOnnxChecker(jobs.Select(j => j.ModelPath)))
            log.WriteLine("python3-onnx is not installed: onnx.checker skipped.");

        var results = OnnxRuntimeRunner.Run(jobs);
        for (int i = 0; i < cases.Length; i++)
        {
            var (name, network, inputs) = cases[i];
            int batch = inputs.Length / network.InputSize, classes = network.OutputSize;
            var (probabilities, labels) = EngineScores(network, inputs, batch);
            AssertClose(name, probabilities, labels, results[i], batch, classes);
        }
    }

    private static (float[] Probabilities, long[] Labels) EngineScores(SequentialNetwork network, float[] inputs, int batch)
    {
        int classes = network.OutputSize;
        network.EnsureCapacity(batch);
        inputs.CopyTo(network.Input, 0);
        var logits = network.Forward(batch, training: false);
        var probabilities = new float[batch * classes];
        var labels = new long[batch];
        for (int b = 0; b < batch; b++)
        {
            var p = probabilities.AsSpan(b * classes, classes);
            TensorPrimitives.SoftMax(logits.AsSpan(b * classes, classes), p);
            labels[b] = TensorPrimitives.IndexOfMax(p);
        }
        return (probabilities, labels);
    }

    private void AssertClose(string name, float[] probabilities, long[] labels, OnnxResult result, int batch, int classes)
    {
        Assert.Equal(["features"], result.InputNames);
        Assert.Equal(["probabilities", "predicted_label"], result.OutputNames);
        var (dims, onnxProbabilities) = result.Outputs["probabilities"];
        Assert.Equal([batch, classes], dims);
        double maxDiff = 0;
        for (int i = 0; i < probabilities.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(probabilities[i] - onnxProbabilities[i]));
        log.WriteLine($"{name}: max |engine - ONNX Runtime| probability difference {maxDiff:E2} over {batch}×{classes}");
        Assert.True(maxDiff <= Tolerance, $"{name}: probabilities differ by {maxDiff:E2} (tolerance {Tolerance:E0})");
        var (labelDims, onnxLabels) = result.Outputs["predicted_label"];
        Assert.Equal([batch], labelDims);
        Assert.Equal(labels, onnxLabels.Select(v => (long)v));
    }

    /// <summary>
    /// A weight's values as the graph gives them: a dense initializer, a Constant holding a sparse tensor made dense, or
    /// the Concat of such constants (blocks of rows).
    /// </summary>
    private static float[] ExportedWeight(GraphProto graph, string name)
    {
        if (graph.Initializer.SingleOrDefault(t => t.Name == name) is { } dense) return FloatsOf(dense);
        var node = graph.Node.Single(n => n.Output.Single() == name);
        if (node.OpType == "Concat") return [.. node.Input.SelectMany(block => ExportedWeight(graph, block))];
        Assert.Equal("Constant", node.OpType);
        var sparse = node.Attribute.Single(a => a.Name == "sparse_value").SparseTensor;
        var values = new float[sparse.Dims.Aggregate(1L, (a, d) => a * d)];
        var bytes = sparse.Indices.RawData.Span;
        long[] indices = (TensorProto.Types.DataType)sparse.Indices.DataType switch
        {
            TensorProto.Types.DataType.Int16 => [.. System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(bytes).ToArray().Select(i => (long)i)],
            TensorProto.Types.DataType.Int32 => [.. System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(i => (long)i)],
            var type => throw new InvalidOperationException($"The sparse tensor of '{name}' has {type} indices."),
        };
        var nonZeros = FloatsOf(sparse.Values);
        Assert.Equal(nonZeros.Length, indices.Length);
        Assert.Equal(indices.Order(), indices);
        for (int i = 0; i < indices.Length; i++) values[indices[i]] = nonZeros[i];
        return values;
    }

    private static float[] FloatsOf(TensorProto tensor) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray();
}
