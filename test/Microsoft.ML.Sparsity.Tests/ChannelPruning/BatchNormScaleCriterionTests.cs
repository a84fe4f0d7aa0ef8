using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Tests.Training;
using Microsoft.ML.Sparsity.Training;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;
using static Microsoft.ML.Sparsity.Tests.Network.GradCheck;

namespace Microsoft.ML.Sparsity.Tests.ChannelPruning;

/// <summary>Network slimming: channels scored by the following batch norm's |γ|, and the L1 penalty on γ while training.</summary>
public sealed class BatchNormScaleCriterionTests
{
    /// <summary>conv → BN → ReLU (γ₁ over 6 channels) and dense → ReLU → BN (γ₂ over 8 units), then the output layer.</summary>
    private static SequentialNetwork SlimmableNetwork()
    {
        var network = Build([6, 6, 2], 2, Layers.Conv2d(6, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.Flatten(),
            Layers.Dense(8), Layers.ReLU(), Layers.BatchNorm(), Layers.Dense(4));
        var norms = network.Layers.OfType<BatchNormLayer>().ToArray();
        new float[] { 0.5f, -0.1f, 0.9f, -0.05f, 0.03f, -0.08f }.CopyTo(norms[0].Gamma.Value, 0);
        new float[] { 0.2f, -0.6f, 0.06f, 0.8f, -0.15f, 0.4f, -0.01f, 0.9f }.CopyTo(norms[1].Gamma.Value, 0);
        return network;
    }

    private static int[] KeptChannels(PrunableLayer layer) =>
        Enumerable.Range(0, layer.OutChannels).Where(c => layer.Weight.Value.AsSpan(c * layer.Columns, layer.Columns).ContainsAnyExcept(0f)).ToArray();

    private static PruningOptions Slimming(LayerAllocation allocation) => new()
    {
        TargetSparsity = 0.5,
        Pattern = SparsityPattern.OutputChannels,
        Criterion = ImportanceCriterion.BatchNormScale,
        Allocation = allocation,
        ExcludedLayers = ["-1"],
    };

    [Fact]
    public void Each_layer_keeps_the_channels_of_largest_batch_norm_scale()
    {
        var network = SlimmableNetwork();
        PruneNow(network, Slimming(LayerAllocation.Uniform));
        var layers = PrunableLayer.From(network);
        // |γ₁| = (.5, .1, .9, .05, .03, .08): the 3 largest are channels 0, 1, 2. |γ₂| = (.2, .6, .06, .8, .15, .4, .01, .9): 1, 3, 5, 7.
        Assert.Equal(new[] { 0, 1, 2 }, KeptChannels(layers[0]));
        Assert.Equal(new[] { 1, 3, 5, 7 }, KeptChannels(layers[1]));
        Assert.Equal(4, KeptChannels(layers[2]).Length);
    }

    [Fact]
    public void A_global_allocation_ranks_the_scales_of_all_layers_together_as_the_paper_does()
    {
        var network = SlimmableNetwork();
        PruneNow(network, Slimming(LayerAllocation.Global));
        var layers = PrunableLayer.From(network);
        // The 7 smallest of all 14 |γ|: .01 (d6), .03 (c4), .05 (c3), .06 (d2), .08 (c5), .1 (c1), .15 (d4).
        Assert.Equal(new[] { 0, 2 }, KeptChannels(layers[0]));
        Assert.Equal(new[] { 0, 1, 3, 5, 7 }, KeptChannels(layers[1]));
    }

    [Fact]
    public void A_layer_without_a_following_batch_norm_is_named()
    {
        // A batch norm after the flatten normalises the flattened columns, not the convolution's channels.
        var flattened = Build([6, 6, 2], 1, Layers.Conv2d(4, 3), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Flatten(), Layers.BatchNorm(), Layers.Dense(3));
        var e = Assert.Throws<ArgumentException>(() => PruneNow(flattened, Slimming(LayerAllocation.Uniform)));
        Assert.Contains($"'{PrunableLayer.From(flattened)[0].Name}'", e.Message);
        Assert.Equal(nameof(PruningOptions.Criterion), e.ParamName);

        // Through pooling the batch norm still normalises the channels, one γ each.
        var pooled = Build([6, 6, 2], 1, Layers.Conv2d(4, 3), Layers.ReLU(), Layers.MaxPool2d(2), Layers.BatchNorm(), Layers.Flatten(), Layers.Dense(3));
        PruneNow(pooled, Slimming(LayerAllocation.Uniform));
        Assert.Equal(2, KeptChannels(PrunableLayer.From(pooled)[0]).Length);

        // The output layer, unless excluded.
        var options = Slimming(LayerAllocation.Uniform);
        options.ExcludedLayers.Clear();
        var network = SlimmableNetwork();
        var output = Assert.Throws<ArgumentException>(() => PruneNow(network, options));
        Assert.Contains($"'{PrunableLayer.From(network)[^1].Name}'", output.Message);

        var unstructured = Assert.Throws<ArgumentException>(() => PruneNow(SlimmableNetwork(), new PruningOptions { Criterion = ImportanceCriterion.BatchNormScale }));
        Assert.Contains("OutputChannels", unstructured.Message);
    }

    [Fact]
    public void The_penalty_gradient_matches_finite_differences_of_the_penalised_loss()
    {
        const int batch = 6, classes = 3;
        const float lambda = 0.3f;
        var random = new Random(4);
        var network = Build([4], 3, Layers.Dense(5), Layers.BatchNorm(), Layers.ReLU(), Layers.Dense(classes));
        var gamma = network.Layers.OfType<BatchNormLayer>().Single().Gamma;
        // Away from γ = 0, where |γ| has its kink.
        AwayFromZero(random, gamma.Length, 0.3f).CopyTo(gamma.Value, 0);
        network.EnsureCapacity(batch);
        Uniform(random, batch * 4).CopyTo(network.Input, 0);
        var labels = Enumerable.Range(0, batch).Select(i => (float)(i % classes)).ToArray();
        var loss = new SoftmaxCrossEntropyLoss();
        var penalty = BatchNormScalePenalty.For(network, lambda)!;

        double PenalisedLoss() =>
            loss.Compute(network.Forward(batch, training: true), labels, batch, classes, network.OutputGradient) + penalty.Loss();

        PenalisedLoss();
        network.Backward(batch);
        var unpenalised = (float[])gamma.Gradient.Clone();
        penalty.AddGradient();
        var analytic = (float[])gamma.Gradient.Clone();
        for (int i = 0; i < gamma.Length; i++) Assert.Equal(unpenalised[i] + lambda * MathF.Sign(gamma.Value[i]), analytic[i]);
        Assert.Equal(gamma.Length, Compare("gamma", analytic, gamma.Value, PenalisedLoss, eps: 1e-3f, atol: 1e-3, rtol: 1e-2));
        Assert.Equal(lambda * gamma.Value.Sum(g => Math.Abs(g)), penalty.Loss(), 1e-6);
    }

    private static (SequentialNetwork Network, IReadOnlyList<TrainingProgress> History) Train(float? lambda)
    {
        var options = new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(16), Layers.BatchNorm(), Layers.ReLU(), Layers.Dense(8), Layers.ReLU(), Layers.BatchNorm()],
            Epochs = 3,
            BatchSize = 20,
            Seed = 5,
            NumberOfThreads = 1,
        };
        if (lambda is { } l) options.BatchNormScaleL1 = l;
        var model = new MLContext(seed: 1).MulticlassClassification.Trainers.NeuralNetwork(options).Fit(TrainingData.Blobs(200).AsDataView());
        return (model.Network, model.TrainingHistory);
    }

    private static double ScaleL1(SequentialNetwork network) =>
        network.Layers.OfType<BatchNormLayer>().Sum(b => b.Gamma.Value.Sum(g => (double)Math.Abs(g)));

    [Fact]
    public void A_zero_penalty_changes_nothing_and_a_positive_one_shrinks_the_scales()
    {
        var unset = Train(null);
        var zero = Train(0);
        for (int i = 0; i < unset.Network.StateArrays.Count; i++) Assert.Equal(unset.Network.StateArrays[i], zero.Network.StateArrays[i]);
        Assert.Equal(unset.History.Select(h => h.TrainingLoss), zero.History.Select(h => h.TrainingLoss));

        var penalised = Train(0.05f);
        Assert.True(ScaleL1(penalised.Network) < ScaleL1(zero.Network) - 0.1,
            $"Σ|γ| {ScaleL1(penalised.Network):F4} with the penalty, {ScaleL1(zero.Network):F4} without.");
    }

    [Fact]
    public void Bad_penalties_are_rejected_naming_the_option()
    {
        foreach (float bad in new[] { -1e-4f, float.NaN, float.PositiveInfinity })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => Train(bad));
            Assert.Equal(nameof(NeuralNetworkTrainerOptions.BatchNormScaleL1), e.ParamName);
        }
        var noBatchNorm = new NeuralNetworkMulticlassTrainer.Options { Layers = [Layers.Dense(8), Layers.ReLU()], Epochs = 1, BatchNormScaleL1 = 1e-4f };
        var missing = Assert.Throws<ArgumentException>(() => new MLContext(1).MulticlassClassification.Trainers.NeuralNetwork(noBatchNorm).Fit(TrainingData.Blobs(40).AsDataView()));
        Assert.Equal(nameof(NeuralNetworkTrainerOptions.BatchNormScaleL1), missing.ParamName);
    }
}
