using System.Numerics.Tensors;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.ChannelPruning;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.FrequencyDomain;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Export;
using Microsoft.ML.Sparsity.Tests.Masks;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.ChannelPruning;

/// <summary>
/// Physical channel removal: on random weights, biases, batch-norm statistics and random channel masks, the compact
/// network's outputs equal the channel-masked network's within 1e-5 for every chain compaction follows, its shapes and
/// parameter counts are exactly those of the kept channels, and it saves, loads, exports and refuses bad input.
/// </summary>
public sealed class CompactTests : IDisposable
{
    private const float Tolerance = 1e-5f;
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("sparsity-compact-");

    public void Dispose() => _folder.Delete(recursive: true);

    private static SequentialNetwork Network(int[] inputShape, int seed, params LayerDefinition[] layers)
    {
        var network = SparsityTestNetworks.Build(inputShape, seed, layers);
        var random = new Random(seed + 1000);
        foreach (var layer in network.Layers)
        {
            if (layer is DenseLayer { Bias: { } db }) Fill(db.Value, random, -0.5f, 0.5f);
            if (layer is Conv2dLayer { Bias: { } cb }) Fill(cb.Value, random, -0.5f, 0.5f);
            if (layer is BatchNormLayer norm)
            {
                Fill(norm.Gamma.Value, random, 0.5f, 1.5f);
                Fill(norm.Beta.Value, random, -0.5f, 0.5f);
                Fill(norm.RunningMean, random, -0.3f, 0.3f);
                Fill(norm.RunningVariance, random, 0.5f, 2f);
            }
        }
        return network;
    }

    private static void Fill(float[] values, Random random, float low, float high)
    {
        for (int i = 0; i < values.Length; i++) values[i] = low + (high - low) * random.NextSingle();
    }

    /// <summary>Masks output channels <paramref name="channels"/> of the dense or convolution layer named <paramref name="layer"/> (the rest of its mask stays).</summary>
    private static void PruneChannels(SequentialNetwork network, string layer, params int[] channels)
    {
        var weight = network.Layers.Single(l => l.Name == layer).Parameters[0];
        int columns = weight.Length / weight.Shape[0];
        weight.Mask ??= Enumerable.Repeat(1f, weight.Length).ToArray();
        foreach (int c in channels) weight.Mask.AsSpan(c * columns, columns).Clear();
        TensorPrimitives.Multiply(weight.Value, weight.Mask, weight.Value);
    }

    private static int[] RandomChannels(int count, int pruned, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).OrderBy(_ => random.Next()).Take(pruned).Order()];
    }

    private static float[] Inputs(int size, int batch, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, size * batch).Select(_ => random.NextSingle() * 2 - 1).ToArray();
    }

    private static float[] Forward(SequentialNetwork network, float[] inputs)
    {
        int batch = inputs.Length / network.InputSize;
        network.EnsureCapacity(batch);
        inputs.CopyTo(network.Input, 0);
        return network.Forward(batch, training: false).AsSpan(0, batch * network.OutputSize).ToArray();
    }

    private static SequentialNetwork Compact(SequentialNetwork network) => CompactNetwork.Build(CompactPlan.For(network), SparsityTestNetworks.Pool);

    /// <summary>The largest |masked − compact| output over a batch; also checks the compact network is smaller.</summary>
    private static float MaxDifference(SequentialNetwork masked, SequentialNetwork compact, int seed)
    {
        float[] inputs = Inputs(masked.InputSize, 16, seed);
        float[] expected = Forward(masked, inputs), actual = Forward(compact, inputs);
        Assert.Equal(expected.Length, actual.Length);
        Assert.True(compact.Parameters.Sum(p => (long)p.Length) < masked.Parameters.Sum(p => (long)p.Length));
        float most = 0;
        for (int i = 0; i < expected.Length; i++) most = Math.Max(most, Math.Abs(expected[i] - actual[i]));
        return most;
    }

    private static int[] ShapeOf(SequentialNetwork network, string layer) => network.Layers.Single(l => l.Name == layer).Parameters[0].Shape;

    [Fact]
    public void Conv_batchnorm_relu_pool_conv_equals_the_masked_forward()
    {
        // conv0 (padded) → BN → ReLU → max pool → conv1 (unpadded: constants fold into its bias) → flatten → dense → output.
        var network = Network([8, 8, 3], 1,
            Layers.Conv2d(8, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2),
            Layers.Conv2d(6, 3), Layers.ReLU(), Layers.Flatten(), Layers.Dense(5));
        int[] pruned = RandomChannels(8, 5, seed: 2);
        PruneChannels(network, "conv0", pruned);
        // A removed channel whose BN shift is large: a non-zero constant after ReLU, folded into conv1's bias.
        var norm = (BatchNormLayer)network.Layers[1];
        norm.Beta.Value[pruned[0]] = 2f;
        var compact = Compact(network);

        Assert.True(MaxDifference(network, compact, seed: 3) <= Tolerance);
        Assert.Equal([3, 3, 3, 3], ShapeOf(compact, "conv0"));
        Assert.Equal([3], compact.Layers[1].Parameters[0].Shape);
        Assert.Equal([6, 3, 3, 3], ShapeOf(compact, "conv1"));
        Assert.Equal([5, 2 * 2 * 6], ShapeOf(compact, "dense0"));
        // conv0 3·(27 + 1), BN 2·3, conv1 6·(27 + 1), dense 5·(24 + 1).
        Assert.Equal(3 * 28 + 6 + 6 * 28 + 5 * 25, compact.Parameters.Sum(p => p.Length));
        // The kept channels carry their own values: BN statistics sliced, not reset.
        int[] kept = [.. Enumerable.Range(0, 8).Except(pruned)];
        var compactNorm = (BatchNormLayer)compact.Layers[1];
        Assert.Equal(kept.Select(c => norm.RunningVariance[c]), compactNorm.RunningVariance);
        Assert.Equal(kept.Select(c => norm.Gamma.Value[c]), compactNorm.Gamma.Value);
    }

    [Fact]
    public void Channels_pruned_by_the_output_channel_pattern_with_their_biases_all_go()
    {
        // conv3×3-8 (pad 1) → ReLU → max pool → conv3×3-16 → flatten → dense 10: half of each hidden layer's channels by L1.
        var network = SparsityTestNetworks.SmallConv(seed: 60);
        foreach (var layer in network.Layers.OfType<Conv2dLayer>()) Fill(layer.Bias!.Value, new Random(61), -0.5f, 0.5f);
        SparsityTestNetworks.PruneNow(network, new Pruning.PruningOptions
        {
            Pattern = global::Microsoft.ML.Sparsity.Masks.SparsityPattern.OutputChannels, TargetSparsity = 0.5, PruneBiases = true, ExcludedLayers = ["dense0"],
        });
        var plan = CompactPlan.For(network);
        var compact = CompactNetwork.Build(plan, SparsityTestNetworks.Pool);

        Assert.Empty(plan.KeptPruned);
        Assert.Equal([4, 3, 3, 4], ShapeOf(compact, "conv0"));
        Assert.Equal([8, 3, 3, 4], ShapeOf(compact, "conv1"));
        Assert.Equal([10, 2 * 2 * 8], ShapeOf(compact, "dense0"));
        Assert.All(compact.Parameters, p => Assert.Null(p.Mask));
        Assert.True(MaxDifference(network, compact, seed: 62) <= Tolerance);
    }

    [Fact]
    public void Channels_pruned_with_their_biases_lose_their_batch_norm_scale_and_shift_and_all_go_before_a_padded_conv()
    {
        // conv (pad 1) → BN → ReLU → conv (pad 1) → flatten → dense: without zeroing γ and β a pruned channel's constant
        // would reach the padded convolution and have to stay.
        var network = Network([6, 6, 2], 63,
            Layers.Conv2d(8, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.Conv2d(6, 3, padding: 1), Layers.Flatten(), Layers.Dense(4));
        var norm = network.Layers.OfType<BatchNormLayer>().Single();
        Fill(norm.Beta.Value, new Random(64), 0.5f, 1f);
        SparsityTestNetworks.PruneNow(network, new Pruning.PruningOptions
        {
            Pattern = global::Microsoft.ML.Sparsity.Masks.SparsityPattern.OutputChannels, TargetSparsity = 0.5, PruneBiases = true, ExcludedLayers = ["-1"],
        });
        var pruned = Enumerable.Range(0, 8).Where(c => norm.Gamma.Mask![c] == 0).ToArray();
        Assert.Equal(4, pruned.Length);
        Assert.All(pruned, c => Assert.Equal((0f, 0f), (norm.Gamma.Value[c], norm.Beta.Value[c])));

        var plan = CompactPlan.For(network);
        Assert.Empty(plan.KeptPruned);
        var compact = CompactNetwork.Build(plan, SparsityTestNetworks.Pool);
        Assert.Equal([4, 3, 3, 2], ShapeOf(compact, "conv0"));
        Assert.True(MaxDifference(network, compact, seed: 65) <= Tolerance);
    }

    [Fact]
    public void A_non_zero_constant_into_a_padded_conv_keeps_its_channel_and_a_zero_one_goes()
    {
        var network = Network([6, 6, 2], 4,
            Layers.Conv2d(4, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.Conv2d(3, 3, padding: 1), Layers.Flatten(), Layers.Dense(4));
        PruneChannels(network, "conv0", 1, 2);
        var norm = (BatchNormLayer)network.Layers[1];
        norm.Beta.Value[1] = 1.5f;    // ReLU keeps it: conv1's border outputs would see it through fewer taps
        norm.Beta.Value[2] = -3f;     // ReLU makes it 0: nothing to reproduce
        norm.RunningMean[1] = norm.RunningMean[2] = 0;
        var plan = CompactPlan.For(network);
        var compact = CompactNetwork.Build(plan, SparsityTestNetworks.Pool);

        Assert.Equal([0, 1, 3], plan.KeptOutputs(0)!);
        Assert.Contains(plan.KeptPruned, line => line.Contains("'conv0'") && line.Contains("channel(s) 1 kept") && line.Contains("'conv1'"));
        Assert.True(MaxDifference(network, compact, seed: 5) <= Tolerance);
        // The kept pruned channel stays masked in the compact layer.
        Assert.NotNull(compact.Layers[0].Parameters[0].Mask);
    }

    [Fact]
    public void A_channel_pruned_with_its_bias_before_a_sigmoid_and_a_padded_conv_stays_masked_everywhere()
    {
        // σ(0) = 0.5: even with its bias, γ and β pruned, a channel outputs a constant, so before a padded convolution it stays,
        // its filter, bias, γ and β still masked in the compact network.
        var network = Network([6, 6, 2], 8,
            Layers.Conv2d(6, 3, padding: 1), Layers.BatchNorm(), Layers.Activation(ActivationKind.Sigmoid), Layers.Conv2d(3, 3, padding: 1), Layers.Flatten(), Layers.Dense(4));
        SparsityTestNetworks.PruneNow(network, new Pruning.PruningOptions
        {
            Pattern = global::Microsoft.ML.Sparsity.Masks.SparsityPattern.OutputChannels, TargetSparsity = 0.5, PruneBiases = true, ExcludedLayers = ["-1"],
        });
        var norm = (BatchNormLayer)network.Layers[1];
        int[] pruned = [.. Enumerable.Range(0, 6).Where(c => norm.Gamma.Mask![c] == 0)];
        var plan = CompactPlan.For(network);
        Assert.Equal(6, plan.KeptOutputs(0)?.Length ?? 6);
        var compact = CompactNetwork.Build(plan, SparsityTestNetworks.Pool);
        Assert.True(MaxDifference(network, compact, seed: 9) <= Tolerance);
        var compactNorm = (BatchNormLayer)compact.Layers[1];
        foreach (var parameter in new[] { compact.Layers[0].Parameters[1], compactNorm.Gamma, compactNorm.Beta })
            Assert.Equal(pruned, Enumerable.Range(0, 6).Where(c => parameter.Mask![c] == 0));
    }

    [Fact]
    public void Conv_flatten_dense_and_conv_global_pool_dense_equal_the_masked_forward()
    {
        // Channels-last flatten: a removed channel is every 5th column of dense0; its bias is folded into dense0's.
        var flatten = Network([6, 6, 2], 6, Layers.Conv2d(5, 3), Layers.Flatten(), Layers.Dense(7), Layers.ReLU(), Layers.Dense(3));
        PruneChannels(flatten, "conv0", 0, 3);
        var compactFlatten = Compact(flatten);
        Assert.True(MaxDifference(flatten, compactFlatten, seed: 7) <= Tolerance);
        Assert.Equal([3, 3, 3, 2], ShapeOf(compactFlatten, "conv0"));
        Assert.Equal([7, 4 * 4 * 3], ShapeOf(compactFlatten, "dense0"));

        // A 1-D batch norm after the flatten: each of a removed channel's columns gets its own constant.
        var normed = Network([5, 5, 2], 24, Layers.Conv2d(4, 2), Layers.ReLU(), Layers.Flatten(), Layers.BatchNorm(), Layers.Dense(3));
        PruneChannels(normed, "conv0", 1, 2);
        var compactNormed = Compact(normed);
        Assert.True(MaxDifference(normed, compactNormed, seed: 25) <= Tolerance);
        Assert.Equal([4 * 4 * 2], compactNormed.Layers[3].Parameters[0].Shape);
        Assert.Equal([3, 4 * 4 * 2], ShapeOf(compactNormed, "dense0"));

        // A dense layer straight after a conv flattens too; global average pooling keeps a constant.
        var direct = Network([5, 5, 3], 8, Layers.Conv2d(6, 2), Layers.Activation(ActivationKind.Tanh), Layers.Dense(4), Layers.Dense(3));
        PruneChannels(direct, "conv0", RandomChannels(6, 3, seed: 9));
        Assert.True(MaxDifference(direct, Compact(direct), seed: 10) <= Tolerance);
        var pooled = Network([6, 6, 2], 11, Layers.Conv2d(6, 3), Layers.ReLU(), Layers.GlobalAveragePool(), Layers.Dense(3, useBias: false));
        int[] pruned = RandomChannels(6, 4, seed: 12);
        PruneChannels(pooled, "conv0", pruned);
        ((Conv2dLayer)pooled.Layers[0]).Bias!.Value[pruned[0]] = 0.3f; // through ReLU and the pooling: 0.3 into every output
        var compactPooled = Compact(pooled);
        Assert.True(MaxDifference(pooled, compactPooled, seed: 13) <= Tolerance);
        Assert.Equal([3, 2], ShapeOf(compactPooled, "dense0"));
        Assert.Equal(2, compactPooled.Layers[3].Parameters.Count); // a bias was added for the folded constants
    }

    [Fact]
    public void Dense_dense_equals_the_masked_forward_with_one_channel_left()
    {
        var network = Network([10], 14,
            Layers.Dense(12), Layers.BatchNorm(), Layers.Activation(ActivationKind.Sigmoid), Layers.Dropout(0.5f),
            Layers.Dense(8, useBias: false), Layers.Activation(ActivationKind.LeakyReLU), Layers.Dense(4));
        PruneChannels(network, "dense0", [.. Enumerable.Range(0, 12).Where(c => c != 5)]);   // all but one
        PruneChannels(network, "dense1", RandomChannels(8, 3, seed: 15));
        var compact = Compact(network);

        Assert.True(MaxDifference(network, compact, seed: 16) <= Tolerance);
        Assert.Equal([1, 10], ShapeOf(compact, "dense0"));
        Assert.Equal([5, 1], ShapeOf(compact, "dense1"));
        Assert.Equal([4, 5], ShapeOf(compact, "dense2"));
        // dense0 1·11, BN 2, dense1 5·1 + a bias of 5 (sigmoid's constants are never 0), dense2 4·6.
        Assert.Equal(11 + 2 + 10 + 24, compact.Parameters.Sum(p => p.Length));
        Assert.Null(compact.Layers[0].Parameters[0].Mask); // every mask left keeps everything: the compact layers are dense
    }

    [Fact]
    public void A_layer_with_every_channel_pruned_keeps_one_and_mixed_masks_stay()
    {
        var network = Network([9], 17, Layers.Dense(6), Layers.ReLU(), Layers.Dense(5), Layers.Dense(3));
        PruneChannels(network, "dense0", 0, 1, 2, 3, 4, 5);
        PruneChannels(network, "dense1", 2);
        var weight = network.Layers[2].Parameters[0];
        weight.Mask![0] = 0;                 // an unstructured hole in a kept row and kept column stays masked
        weight.Value[0] = 0;
        var plan = CompactPlan.For(network);
        var compact = CompactNetwork.Build(plan, SparsityTestNetworks.Pool);

        Assert.Equal([1, 9], ShapeOf(compact, "dense0"));
        Assert.Contains(plan.KeptPruned, line => line.Contains("'dense0'") && line.Contains("every channel"));
        Assert.Equal([4, 1], ShapeOf(compact, "dense1"));
        Assert.NotNull(compact.Layers[2].Parameters[0].Mask);
        Assert.True(MaxDifference(network, compact, seed: 18) <= Tolerance);
    }

    private static NeuralNetworkMulticlassModel CnnModel(int seed = 20)
    {
        var network = Network([8, 8, 2], seed,
            Layers.Conv2d(8, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2),
            Layers.Conv2d(10, 3), Layers.ReLU(), Layers.Flatten(), Layers.Dense(12), Layers.ReLU(), Layers.Dense(4));
        PruneChannels(network, "conv0", RandomChannels(8, 4, seed + 1));
        PruneChannels(network, "conv1", RandomChannels(10, 6, seed + 2));
        PruneChannels(network, "dense0", RandomChannels(12, 6, seed + 3));
        return new NeuralNetworkMulticlassModel(network, 4, null, "Features", []);
    }

    private static float[] Predictions(NeuralNetworkModel model, float[] inputs, int width)
    {
        int size = model.Network.InputSize, batch = inputs.Length / size;
        var scores = new float[batch * width];
        for (int b = 0; b < batch; b++) model.Predict(inputs.AsSpan(b * size, size), scores.AsSpan(b * width, width));
        return scores;
    }

    private static void AssertClose(float[] expected, float[] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"value {i}: {expected[i]} vs {actual[i]}");
    }

    [Fact]
    public void The_catalog_compacts_every_model_kind_and_reports_before_and_after()
    {
        var ml = new MLContext(seed: 1);
        NeuralNetworkMulticlassModel multiclass = CnnModel();
        float[] inputs = Inputs(multiclass.Network.InputSize, 8, seed: 21);
        NeuralNetworkMulticlassModel compact = ml.Sparsity().Compact(multiclass);
        AssertClose(Predictions(multiclass, inputs, 4), Predictions(compact, inputs, 4), Tolerance);
        Assert.Equal(multiclass.Layers.Select(l => l.Name), compact.Layers.Select(l => l.Name));
        Assert.Equal([4, 3, 3, 2], compact.Network.Layers[0].Parameters[0].Shape);

        var report = ml.Sparsity().GetCompactionReport(multiclass);
        Assert.Equal(multiclass.ParameterCount, report.ParametersBefore);
        Assert.Equal(compact.ParameterCount, report.ParametersAfter);
        Assert.Equal(compact.Layers.Select(l => l.MultiplyAdds), report.After.Select(l => l.MultiplyAdds));
        // conv0 before 8·8·8·18, after 8·8·4·18.
        Assert.Equal(8L * 8 * 8 * 18, report.Before[0].MultiplyAdds);
        Assert.Equal(8L * 8 * 4 * 18, report.After[0].MultiplyAdds);
        Assert.Equal([4, 4, 4], report.After[3].OutputShape);
        Assert.Contains("conv0", report.ToString());

        foreach (NeuralNetworkModel other in new NeuralNetworkModel[]
                 {
                     new NeuralNetworkBinaryModel(DenseNetwork(1), "Features", []),
                     new NeuralNetworkRegressionModel(DenseNetwork(1), "Features", []),
                 })
        {
            NeuralNetworkModel compacted = ml.Sparsity().Compact(other);
            Assert.IsType(other.GetType(), compacted);
            float[] x = Inputs(10, 6, seed: 22);
            AssertClose(Predictions(other, x, other.Head.Width), Predictions(compacted, x, other.Head.Width), Tolerance);
        }
    }

    [Fact]
    public void A_model_with_nested_levels_compacts_at_the_level_it_predicts_at()
    {
        // dense0's channel 1 is pruned at both levels, channels 4 and 7 only at the sparser one (level codes: the
        // first level that prunes a weight; 2 = none).
        var network = Network([10], 24, Layers.Dense(9), Layers.BatchNorm(), Layers.ReLU(), Layers.Dense(3));
        var weight = network.Layers[0].Parameters[0];
        weight.LevelCodes = [.. Enumerable.Range(0, weight.Length).Select(e => (e / 10) switch { 1 => (byte)0, 4 or 7 => (byte)1, _ => (byte)2 })];
        network.SparsityLevels = [0.2, 0.6];
        PruneChannels(network, "dense0", 1);   // a trained network's own mask is its densest level's
        var ml = new MLContext(seed: 1);
        var model = new NeuralNetworkMulticlassModel(network, 3, null, "Features", []);
        var sparser = (NeuralNetworkMulticlassModel)model.AtSparsityLevel(0.6);
        float[] inputs = Inputs(10, 8, seed: 25);

        NeuralNetworkMulticlassModel compact = ml.Sparsity().Compact(sparser);
        Assert.Equal([6, 10], compact.Network.Layers[0].Parameters[0].Shape);
        Assert.Null(compact.Network.SparsityLevels);
        AssertClose(Predictions(sparser, inputs, 3), Predictions(compact, inputs, 3), Tolerance);
        Assert.Equal(6 * 10 + 6, ml.Sparsity().GetCompactionReport(sparser).After[0].ParameterCount);
        Assert.Equal([8, 10], ml.Sparsity().Compact(model).Network.Layers[0].Parameters[0].Shape);   // the densest level
    }

    private static SequentialNetwork DenseNetwork(int outputs)
    {
        var network = Network([10], 23, Layers.Dense(9), Layers.BatchNorm(), Layers.ReLU(), Layers.Dense(outputs));
        PruneChannels(network, "dense0", 1, 4, 7);
        return network;
    }

    [Fact]
    public void Compact_prediction_keeps_the_model_and_predicts_through_the_compact_network()
    {
        NeuralNetworkMulticlassModel masked = CnnModel(seed: 30);
        NeuralNetworkMulticlassModel auto = masked.WithCompactPrediction();
        float[] inputs = Inputs(masked.Network.InputSize, 8, seed: 31);

        Assert.True(auto.CompactPrediction);
        Assert.False(masked.CompactPrediction);
        Assert.Equal(masked.ParameterCount, auto.ParameterCount);            // the model is still the masked network
        Assert.Equal(0.5, masked.WeightFormats[0].Density);                 // its prediction weights are the compact ones:
        Assert.Equal(1.0, auto.WeightFormats[0].Density);                   // conv0's 4 kept filters, dense
        Assert.True(auto.WeightFormats[0].Bytes < masked.WeightFormats[0].Bytes);
        AssertClose(Predictions(masked, inputs, 4), Predictions(auto, inputs, 4), Tolerance);
        // Transform's batched sessions too.
        var data = Training.TrainingData.Blobs(40, 128, classes: 4, seed: 32).Reshape(8, 8, 2);
        AssertClose(Inference.ScoredRows.Transform(masked, data, 4).Scores, Inference.ScoredRows.Transform(auto, data, 4).Scores, Tolerance);
        Assert.False(auto.WithCompactPrediction(false).CompactPrediction);

        // The choice survives the package's own file.
        var stream = new MemoryStream();
        ModelFile.Save(auto, stream);
        var loaded = (NeuralNetworkMulticlassModel)ModelFile.Load(new MemoryStream(stream.ToArray()), SparsityTestNetworks.Pool);
        Assert.True(loaded.CompactPrediction);
        Assert.Equal(Predictions(auto, inputs, 4), Predictions(loaded, inputs, 4));
    }

    private sealed class Row
    {
        [VectorType(128)]
        public float[] Features { get; set; } = [];
    }

    private sealed class Scored
    {
        [VectorType(4)]
        public float[] Score { get; set; } = [];
    }

    [Fact]
    public void The_compact_model_saves_loads_and_exports_to_onnx()
    {
        var ml = new MLContext(seed: 1);
        NeuralNetworkMulticlassModel masked = CnnModel(seed: 40);
        NeuralNetworkMulticlassModel compact = ml.Sparsity().Compact(masked);
        float[] inputs = Inputs(128, 12, seed: 41);
        float[] expected = Predictions(masked, inputs, 4);

        // The package's own file.
        var stream = new MemoryStream();
        ModelFile.Save(compact, stream);
        var own = (NeuralNetworkMulticlassModel)ModelFile.Load(new MemoryStream(stream.ToArray()), SparsityTestNetworks.Pool);
        Assert.Equal(compact.Layers.Select(l => l.ParameterCount), own.Layers.Select(l => l.ParameterCount));
        Assert.Equal(Predictions(compact, inputs, 4), Predictions(own, inputs, 4));

        // mlContext.Model.Save: the portable form (ONNX run by ML.NET's OnnxTransformer) and the fast transformer riding along.
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 12).Select(b => new Row { Features = inputs[(b * 128)..((b + 1) * 128)] }));
        string zip = Path.Combine(_folder.FullName, "compact.zip");
        ml.Model.Save(compact, data.Schema, zip);
        using var portable = (TransformerChain<ITransformer>)ml.Model.Load(zip, out _); // disposing deletes its ONNX copy
        float[] portableScores = [.. ml.Data.CreateEnumerable<Scored>(portable.Transform(data), reuseRowObject: false).SelectMany(r => r.Score)];
        AssertClose(expected, portableScores, 1e-4f);
        var restored = (NeuralNetworkMulticlassModel)ml.Sparsity().LoadModel(zip, out _);
        Assert.Equal(Predictions(compact, inputs, 4), Predictions(restored, inputs, 4));

        // ONNX export, run by ONNX Runtime, against the masked model's probabilities.
        string onnx = Path.Combine(_folder.FullName, "compact.onnx");
        ml.Sparsity().ConvertToOnnx(compact, onnx);
        var result = OnnxRuntimeRunner.Run(new OnnxJob(onnx, inputs, [12, 128]));
        var (dims, probabilities) = result.Outputs["probabilities"];
        Assert.Equal([12, 4], dims);
        AssertClose(expected, [.. probabilities.Select(p => (float)p)], 1e-4f);
    }

    [Fact]
    public void Bad_input_names_the_layer_and_what_was_expected()
    {
        var ml = new MLContext(seed: 1);
        // No channel pattern: a dense model, an unstructured-pruned one, a model whose only pruned channels are its outputs.
        var dense = new NeuralNetworkMulticlassModel(Network([10], 50, Layers.Dense(6), Layers.ReLU(), Layers.Dense(3)), 3, null, "Features", []);
        var e = Assert.Throws<ArgumentException>(() => ml.Sparsity().Compact(dense));
        Assert.Contains("no pruned channel", e.Message);
        Assert.Contains("OutputChannels", e.Message);
        Assert.Equal("model", e.ParamName);
        var outputsOnly = Network([10], 51, Layers.Dense(6), Layers.ReLU(), Layers.Dense(3));
        PruneChannels(outputsOnly, "dense1", 1);
        Assert.Throws<ArgumentException>(() => CompactPlan.For(outputsOnly));

        // No removable channel: the only pruned channel's constant is non-zero and feeds a padded conv.
        var padded = Network([5, 5, 2], 52, Layers.Conv2d(3, 3, padding: 1), Layers.Conv2d(2, 3, padding: 1), Layers.Flatten(), Layers.Dense(2));
        PruneChannels(padded, "conv0", 1);
        ((Conv2dLayer)padded.Layers[0]).Bias!.Value[1] = 0.25f;
        e = Assert.Throws<ArgumentException>(() => CompactPlan.For(padded));
        Assert.Contains("can be removed", e.Message);
        Assert.Contains("'conv0'", e.Message);
        Assert.Contains("'conv1' pads", e.Message);

        // A layer the compaction cannot follow: a channel gate after a pruned conv.
        var gated = SparsityTestNetworks.Build([6, 6, 2], 53, Layers.Conv2d(4, 3), new ChannelGateDefinition(0.1f), Layers.Conv2d(3, 3), Layers.Flatten(), Layers.Dense(2));
        PruneChannels(gated, "conv0", 2);
        e = Assert.Throws<ArgumentException>(() => CompactPlan.For(gated));
        Assert.Contains($"'{gated.Layers[1].Name}' (ChannelGate) follows 'conv0'", e.Message);
        Assert.Contains("batch norm, activations, pooling, dropout and flatten", e.Message);
        // The model refuses compact prediction alike, when it is asked for.
        var model = new NeuralNetworkMulticlassModel(gated, 2, null, "Features", []);
        Assert.Throws<ArgumentException>(() => model.WithCompactPrediction());
    }
}
