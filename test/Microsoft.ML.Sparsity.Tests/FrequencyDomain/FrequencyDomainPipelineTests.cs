using System.IO.Compression;
using System.Text;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Export;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Data;
using Microsoft.ML.Sparsity.Tests.Export;
using Microsoft.ML.Sparsity.Training;
using Microsoft.ML.Sparsity.FrequencyDomain;
using Xunit;
using Xunit.Abstractions;
using static Microsoft.ML.Sparsity.Tests.FrequencyDomain.FrequencyDomainTransformTests;

namespace Microsoft.ML.Sparsity.Tests.FrequencyDomain;

/// <summary>
/// The transform in ML.NET pipelines: saved with <c>mlContext.Model.Save</c> (portable, restored by
/// <c>mlContext.Sparsity().LoadModel</c>), the package's own file, ONNX export checked in ONNX Runtime, gate selection on Fashion-MNIST.
/// </summary>
public sealed class FrequencyDomainPipelineTests(ITestOutputHelper log) : IDisposable
{
    private readonly MLContext _context = new(seed: 1);
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("sparsity-frequency-");

    public void Dispose() => _folder.Delete(recursive: true);

    [Fact]
    public void A_saved_pipeline_loads_and_predicts_identically_and_its_ONNX_export_matches_the_engine()
    {
        // RGB with B = 4 and the low-frequency square, then a dense network; grayscale 28×28 with B = 8 and every
        // channel, then a convolution straight on the 4×4×64 DCT grid.
        var rgbData = RandomImages(48, [10, 13, 3], seed: 1);
        var rgb = _context.Transforms.ConvertToFrequencyDomain(new FrequencyDomainEstimator.Options { BlockSize = 4, Selection = FrequencyChannelSelection.LowFrequency })
            .Append(Trainer([Layers.Dense(8), Layers.ReLU()])).Fit(rgbData.View);
        var grayData = RandomImages(32, [28, 28, 1], seed: 2);
        var gray = _context.Transforms.ConvertToFrequencyDomain()
            .Append(Trainer([Layers.Conv2d(6, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.Flatten(), Layers.Dense(8), Layers.ReLU()])).Fit(grayData.View);

        var jobs = new List<OnnxJob>();
        foreach (var (name, model, data) in new[] { ("rgb", rgb, rgbData), ("gray", gray, grayData) })
        {
            var expected = model.Transform(data.View);
            string file = Path.Combine(_folder.FullName, name + ".zip");
            _context.Model.Save(model, data.View.Schema, file);

            // ML.NET alone runs the portable chain (ONNX Runtime), with the same columns and scores within rounding.
            using var chain = (TransformerChain<ITransformer>)_context.Model.Load(file, out var portableSchema); // disposing deletes its ONNX copy
            var portable = chain.Transform(data.View);
            Assert.Equal(data.View.Schema["Features"].Type, portableSchema["Features"].Type);
            foreach (string column in new[] { "Features", "Score", "PredictedLabel" })
                Assert.Equal(expected.Schema[column].Type, portable.Schema[column].Type);
            AssertClose(Scores(expected), Scores(portable), 1e-4);
            AssertClose(Values(expected, "Features"), Values(portable, "Features"), 1e-4);
            Assert.Equal(PredictedLabels(expected), PredictedLabels(portable));

            // The package puts both of its transformers back: the same scores, bit for bit.
            var loaded = Assert.IsType<TransformerChain<ITransformer>>(_context.Sparsity().LoadModel(file, out var inputSchema));
            Assert.Equal(data.View.Schema["Features"].Type, inputSchema["Features"].Type);
            var parts = loaded.ToArray();
            Assert.Equal(2, parts.Length);
            var transform = Assert.IsType<FrequencyDomainTransformer>(parts[0]);
            Assert.IsType<NeuralNetworkMulticlassModel>(parts[1]);
            Assert.Equal(model.First() is FrequencyDomainTransformer t ? t.SelectedChannels : null, transform.SelectedChannels);
            Assert.Equal(Scores(expected), Scores(loaded.Transform(data.View)));

            string onnx = Path.Combine(_folder.FullName, name + ".onnx");
            _context.Sparsity().ConvertToOnnx(loaded, onnx);
            jobs.Add(new OnnxJob(onnx, data.Features, [data.Count, data.FeatureLength]));
        }
        if (!OnnxRuntimeRunner.CheckWithOnnxChecker(jobs.Select(j => j.ModelPath))) log.WriteLine("python3-onnx is not installed: onnx.checker skipped.");
        var results = OnnxRuntimeRunner.Run(jobs);
        AssertSameAsEngine("rgb", rgb.Transform(rgbData.View), results[0]);
        AssertSameAsEngine("gray", gray.Transform(grayData.View), results[1]);

        // The transform is one stride-B convolution over the selected channels, then the normalisation; the convolution
        // that follows on the 4×4 grid reads its NCHW output directly (no transpose in between).
        var graph = OnnxExporter.BuildModel(gray.LastTransformer.Network, null, "test", (FrequencyDomainTransformer)gray.First()).Graph;
        Assert.Equal(["Reshape", "Conv", "Sub", "Div", "Conv", "BatchNormalization", "Relu", "Transpose", "Flatten", "Gemm", "Relu", "Gemm", "Softmax", "ArgMax"],
            graph.Node.Select(n => n.OpType));
        var dctConv = graph.Node[1];
        Assert.Equal([8L, 8L], dctConv.Attribute.Single(a => a.Name == "strides").Ints);
        Assert.Equal([2L, 2L, 2L, 2L], dctConv.Attribute.Single(a => a.Name == "pads").Ints);
        Assert.Equal([64L, 1L, 8L, 8L], graph.Initializer.Single(i => i.Name == dctConv.Input[1]).Dims);
        var rgbGraph = OnnxExporter.BuildModel(rgb.LastTransformer.Network, null, "test", (FrequencyDomainTransformer)rgb.First()).Graph;
        Assert.Equal([6L, 3L, 4L, 4L], rgbGraph.Initializer.Single(i => i.Name == rgbGraph.Node[2].Input[1]).Dims);
    }

    [Fact]
    public void A_saved_transform_alone_keeps_its_columns_planar_input_and_output_dimensions()
    {
        // Planar RGB (ExtractPixels' default) written to another column, and grayscale replacing "Features" in place.
        var images = RandomImages(20, [9, 12, 3], seed: 4);
        var planarFeatures = new float[images.Features.Length];
        var layout = new ImageColumnLayout([9, 12, 3], Planar: true);
        for (int i = 0; i < images.Count; i++)
            layout.FromInterleaved(images.GetFeatures(i), planarFeatures.AsSpan(i * 324, 324));
        var planar = new DatasetDataView(new Dataset(planarFeatures, [3, 9, 12], images.Labels, classCount: 3));
        var cases = new[]
        {
            ("planar", planar, new FrequencyDomainEstimator.Options { BlockSize = 4, Selection = FrequencyChannelSelection.LowFrequency, OutputColumnName = "Dct" }, "Dct"),
            ("gray", RandomImages(20, [11, 8, 1], seed: 5).View, new FrequencyDomainEstimator.Options(), "Features"),
        };
        foreach (var (name, data, options, output) in cases)
        {
            var transform = _context.Transforms.ConvertToFrequencyDomain(options).Fit(data);
            var expected = transform.Transform(data);
            string file = Path.Combine(_folder.FullName, name + ".zip");
            _context.Model.Save(transform, data.Schema, file);

            using var chain = (TransformerChain<ITransformer>)_context.Model.Load(file, out _); // disposing deletes its ONNX copy
            var portable = chain.Transform(data);
            Assert.Equal(Visible(expected.Schema), Visible(portable.Schema));
            Assert.Equal([.. transform.OutputShape], ((VectorDataViewType)portable.Schema[output].Type).Dimensions.ToArray());
            AssertClose(Values(expected, output), Values(portable, output), 1e-4);
            if (output != "Features") Assert.Equal(Values(data, "Features"), Values(portable, "Features"));

            var loaded = Assert.IsType<FrequencyDomainTransformer>(_context.Sparsity().LoadModel(file, out _));
            Assert.Equal(transform.InterleavedPixelColors, loaded.InterleavedPixelColors);
            Assert.Equal(output, loaded.OutputColumnName);
            Assert.Equal(Values(expected, output), Values(loaded.Transform(data), output));
        }
    }

    [Fact]
    public void A_damaged_transform_entry_is_reported_by_name()
    {
        var data = RandomImages(8, [8, 8, 1], seed: 3);
        var transform = _context.Transforms.ConvertToFrequencyDomain().Fit(data.View);
        using var stream = new MemoryStream();
        ModelFile.Save(transform, stream);
        var loaded = Assert.IsType<FrequencyDomainTransformer>(Load(stream.ToArray()));
        Assert.Equal(transform.Means, loaded.Means);
        Assert.Equal(transform.StandardDeviations, loaded.StandardDeviations);

        var e = Assert.Throws<ModelFormatException>(() => Load(EditManifest(stream.ToArray(), "\"blockSize\": 8", "\"blockSize\": 5")));
        Assert.Equal("manifest.json", e.Entry);
        Assert.Contains("block size 5", e.Message);
        e = Assert.Throws<ModelFormatException>(() => Load(EditManifest(stream.ToArray(), "\"pixelRange\": 1", "\"pixelRange\": -1")));
        Assert.Contains("pixel range -1", e.Message);
        e = Assert.Throws<ModelFormatException>(() => Load(EditManifest(stream.ToArray(), "\"std\"", "\"scale\"")));
        Assert.Contains("'std' of shape [64]", e.Message);
    }

    [DebianFashionMnistFact]
    public void The_gate_selects_a_quarter_of_the_Fashion_MNIST_channels_and_the_network_learns_from_them()
    {
        var train = _context.Data.TakeRows(_context.Data.LoadFashionMnist(FashionMnistSplit.Train), 6000);
        var test = _context.Data.TakeRows(_context.Data.LoadFashionMnist(FashionMnistSplit.Test), 1000);
        var options = new FrequencyDomainEstimator.Options
        {
            Selection = FrequencyChannelSelection.Gate, GateEpochs = 3, GateLayers = [Layers.Dense(64), Layers.ReLU()], Seed = 7,
        };
        var model = _context.Transforms.ConvertToFrequencyDomain(options).Append(Trainer([Layers.Dense(64), Layers.ReLU()], epochs: 5)).Fit(train);
        var transform = (FrequencyDomainTransformer)model.First();
        Assert.Equal(16, transform.SelectedChannels.Count);
        Assert.Equal([4, 4, 16], transform.OutputShape);
        var f = transform.SelectionFrequencies!;
        Assert.Equal(64, f.Count);
        double weakestKept = transform.SelectedChannels.Min(c => f[c]);
        Assert.All(Enumerable.Range(0, 64).Except(transform.SelectedChannels), c => Assert.True(f[c] <= weakestKept));
        Assert.Contains(0, transform.SelectedChannels);   // the DC of each block: the block's brightness
        double accuracy = _context.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
        log.WriteLine($"kept {string.Join(",", transform.SelectedChannels)}; accuracy on 1,000 test images {accuracy:P2}");
        Assert.True(accuracy > 0.75, $"accuracy {accuracy:P2}");

        // The same seed selects the same channels; the heat map and the frequencies survive save and load.
        var again = _context.Transforms.ConvertToFrequencyDomain(options).Fit(train);
        Assert.Equal(transform.SelectedChannels, again.SelectedChannels);
        Assert.Equal(f, again.SelectionFrequencies);
        string file = Path.Combine(_folder.FullName, "gate.zip");
        _context.Model.Save(model, train.Schema, file);
        var loaded = (FrequencyDomainTransformer)((TransformerChain<ITransformer>)_context.Sparsity().LoadModel(file, out _)).First();
        Assert.Equal(f.Select(v => (float)v), loaded.SelectionFrequencies!.Select(v => (float)v));
        string svg = Path.Combine(_folder.FullName, "heat.svg");
        Microsoft.ML.Sparsity.Plots.FrequencyPlots.SaveHeatMap(loaded, svg);
        Assert.Equal(64, File.ReadAllText(svg).Split("font-size=\"10\"").Length - 1);     // a percentage in each channel's cell
        Assert.Equal(loaded.SelectedChannels.Count, File.ReadAllText(svg).Split("stroke=\"#D62728\"").Length - 1);
    }

    [DebianFashionMnistFact]
    public void The_penalty_in_the_training_loss_switches_channels_off()
    {
        // λ·mean(gate) reaches the gate through the training loop: a larger λ leaves fewer channels on. (The penalty's
        // gradient per gate is λ/(batch·channels), so a short run needs a large λ to show it.)
        var train = _context.Data.TakeRows(_context.Data.LoadFashionMnist(FashionMnistSplit.Train), 2000);
        var onRate = new Dictionary<float, double>();
        foreach (float penalty in new[] { 0f, 40f })
        {
            var transform = _context.Transforms.ConvertToFrequencyDomain(new FrequencyDomainEstimator.Options
            {
                Selection = FrequencyChannelSelection.Gate, GatePenalty = penalty, GateEpochs = 2, GateLayers = [Layers.Dense(32), Layers.ReLU()], Seed = 5,
            }).Fit(train);
            onRate[penalty] = transform.SelectionFrequencies!.Average();
        }
        log.WriteLine($"channels on: {onRate[0]:P1} with λ = 0, {onRate[40]:P1} with λ = 40");
        Assert.True(onRate[40] < onRate[0] - 0.2, $"λ = 40 keeps {onRate[40]:P1} of the channels on, λ = 0 {onRate[0]:P1}");
    }

    private NeuralNetworkMulticlassTrainer Trainer(LayerDefinition[] layers, int epochs = 1) =>
        _context.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = layers, Epochs = epochs, BatchSize = 16, Seed = 3, NumberOfThreads = 2,
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
        });

    private static ITransformer Load(byte[] file) => ModelFile.Load(new MemoryStream(file), WorkerPool.Shared(2));

    /// <summary>The visible columns by name (the portable chain's DropColumns puts a replaced column back at its first position).</summary>
    private static (string, DataViewType)[] Visible(DataViewSchema schema) => [.. schema.Where(c => !c.IsHidden).Select(c => (c.Name, c.Type)).OrderBy(c => c.Name, StringComparer.Ordinal)];

    /// <summary>Every row's values of a vector column, concatenated.</summary>
    private static float[] Values(IDataView view, string column) => [.. view.GetColumn<VBuffer<float>>(column).SelectMany(v => v.DenseValues())];

    private static float[] Scores(IDataView scored) => Values(scored, ScoreColumns.Score);

    private static uint[] PredictedLabels(IDataView scored) => [.. scored.GetColumn<uint>(ScoreColumns.PredictedLabel)];

    private static void AssertClose(float[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxDiff = expected.Select((v, i) => Math.Abs(v - actual[i])).DefaultIfEmpty(0).Max();
        Assert.True(maxDiff <= tolerance, $"max difference {maxDiff:E2}");
    }

    private void AssertSameAsEngine(string name, IDataView scored, OnnxResult result)
    {
        var (dims, probabilities) = result.Outputs[OnnxExporter.ProbabilitiesName];
        var engine = Scores(scored);
        var labels = PredictedLabels(scored);
        Assert.Equal([labels.Length, engine.Length / labels.Length], dims);
        double maxDiff = engine.Select((p, i) => Math.Abs(p - probabilities[i])).Max();
        log.WriteLine($"{name}: max |engine − ONNX Runtime| probability difference {maxDiff:E2}");
        Assert.True(maxDiff <= 1e-4, $"{name}: {maxDiff:E2}");
        // The engine's PredictedLabel is a key (class index + 1); the ONNX graph's the class index.
        Assert.Equal(labels.Select(k => (double)(k - 1)), result.Outputs[OnnxExporter.PredictedLabelName].Data);
    }

    private static byte[] EditManifest(byte[] file, string find, string replace)
    {
        using var copy = new MemoryStream();
        copy.Write(file);
        using (var zip = new ZipArchive(copy, ZipArchiveMode.Update, leaveOpen: true))
        {
            var entry = zip.GetEntry(ModelFile.ManifestEntry)!;
            string text;
            using (var reader = new StreamReader(entry.Open())) text = reader.ReadToEnd();
            Assert.Contains(find, text);
            Serialization.HostileFiles.ReplaceJson(zip, ModelFile.ManifestEntry, text.Replace(find, replace, StringComparison.Ordinal));
        }
        return copy.ToArray();
    }
}
