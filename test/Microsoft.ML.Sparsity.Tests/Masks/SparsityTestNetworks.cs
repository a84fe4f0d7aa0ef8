using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.Tests.Masks;

/// <summary>Small networks and helpers shared by the sparsity tests.</summary>
internal static class SparsityTestNetworks
{
    public static readonly WorkerPool Pool = new(1);

    public static SequentialNetwork Build(int[] inputShape, int seed, params LayerDefinition[] layers) =>
        new(layers, inputShape, new LayerBuildContext(Pool, WeightInitializer.GlorotUniform, seed));

    /// <summary>784-300-100-10 with ReLUs, the last layer named "output" as the trainer names it.</summary>
    public static SequentialNetwork LeNet(int seed = 1) => Build([784], seed, [.. Layers.LeNet300100(), Layers.Dense(10) with { Name = "output" }]);

    /// <summary>conv3×3-8 (pad 1) → ReLU → maxpool 2 → conv3×3-16 → flatten → dense 10, on 8×8×4 inputs.</summary>
    /// <summary>
    /// 10 → dense 20 → dense 20 → dense 5: 200 + 400 + 100 = 700 multiply-adds, small enough to work channel allocations
    /// out by hand (with r of each hidden layer's channels kept: 200r + 400r² + 100r).
    /// </summary>
    public static SequentialNetwork ChannelMlp(int seed) => Build([10], seed, Layers.Dense(20), Layers.ReLU(), Layers.Dense(20), Layers.ReLU(), Layers.Dense(5));

    /// <summary>Whole output channels of every layer but the output one, by filter L1 norm, with their biases (and batch-norm γ, β).</summary>
    public static PruningOptions WholeChannels() => new()
    {
        Pattern = SparsityPattern.OutputChannels,
        PruneBiases = true,
        ExcludedLayers = { "-1" },
    };

    public static SequentialNetwork SmallConv(int seed = 1) =>
        Build([8, 8, 4], seed, Layers.Conv2d(8, 3, padding: 1), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Conv2d(16, 3), Layers.Flatten(), Layers.Dense(10));

    /// <summary>Prunes once, now, to the options' target.</summary>
    public static PruningPlan PruneNow(SequentialNetwork network, PruningOptions options, int seed = 7)
    {
        options.Schedule = PruningSchedule.AtInitialization();
        var plan = new PruningPlan(options, network, seed);
        plan.Prune(0, options.Schedule, null);
        return plan;
    }

    public static long Zeros(float[] values) => values.LongCount(v => v == 0);

    /// <summary>Each output channel's filter L1 norm Σ|w|, in double.</summary>
    public static double[] FilterL1Norms(PrunableLayer layer) =>
        [.. Enumerable.Range(0, layer.OutChannels).Select(c => Enumerable.Range(0, layer.Columns).Sum(i => Math.Abs((double)layer.Weight.Value[c * layer.Columns + i])))];

    /// <summary>
    /// Asserts that <paramref name="layer"/>'s mask prunes exactly <paramref name="count"/> whole channels, every one
    /// with a smaller filter L1 norm (in <paramref name="norms"/>, taken before pruning) than every kept one; returns them.
    /// </summary>
    public static int[] AssertSmallestL1Pruned(PrunableLayer layer, double[] norms, int count)
    {
        var pruned = Enumerable.Range(0, layer.OutChannels).Where(c => layer.Weight.Mask![c * layer.Columns] == 0).ToArray();
        var kept = Enumerable.Range(0, layer.OutChannels).Except(pruned).ToArray();
        Xunit.Assert.Equal(count, pruned.Length);
        Xunit.Assert.True(pruned.Max(c => norms[c]) < kept.Min(c => norms[c]), $"layer '{layer.Name}': a pruned filter has a larger L1 norm than a kept one.");
        return pruned;
    }
}

/// <summary>
/// Seeded random training batches for tests that drive a sparsity controller by hand: inputs uniform in [−1, 1),
/// random labels, softmax cross-entropy.
/// </summary>
internal sealed class RandomBatches(int seed, int batch)
{
    private readonly Random _data = new(seed);
    private readonly float[] _labels = new float[batch];
    private readonly SoftmaxCrossEntropyLoss _loss = new();

    /// <summary>A new batch into <paramref name="network"/>'s input, then its forward, loss and backward.</summary>
    public void Next(SequentialNetwork network)
    {
        for (int i = 0; i < batch * network.InputSize; i++) network.Input[i] = _data.NextSingle() * 2 - 1;
        for (int i = 0; i < batch; i++) _labels[i] = _data.Next(network.OutputSize);
        Backward(network);
    }

    /// <summary>Forward, loss and backward of <paramref name="network"/> on the input it holds and the current batch's labels.</summary>
    public void Backward(SequentialNetwork network)
    {
        _loss.Compute(network.Forward(batch, training: true), _labels, batch, network.OutputSize, network.OutputGradient);
        network.Backward(batch);
    }
}
