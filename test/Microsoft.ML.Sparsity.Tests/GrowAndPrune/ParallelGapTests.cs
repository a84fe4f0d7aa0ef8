using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.GrowAndPrune;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.GrowAndPrune;

public class ParallelGapTests
{
    private static ParallelGapOptions Options(int threads, int epochs = 3, int rounds = 2) => new()
    {
        Training = new NeuralNetworkMulticlassTrainer.Options
        {
            // Wide enough that the engine splits the work (GEMM blocks, optimiser chunks of 16,384) between two threads.
            Layers = [Layers.Dense(256), Layers.ReLU(), Layers.Dense(128), Layers.BatchNorm(), Layers.ReLU()],
            Epochs = epochs,
            BatchSize = 64,
            Optimizer = new AdamOptimizerOptions { LearningRate = 1e-2f },
            NumberOfThreads = threads,
            ValidationFraction = 0.125f,
            Seed = 3,
        },
        Gap = new GapOptions { TargetSparsity = 0.8, Allocation = LayerAllocation.Uniform, PartitionCount = 3, Rounds = rounds },
    };

    [Fact]
    public void ResultsAreBitIdenticalForOneAndTwoThreadsAndEveryLayerEndsAtItsTarget()
    {
        var ml = new MLContext(seed: 1);
        var data = new DatasetDataView(GapTests.SyntheticData(512));
        var one = ml.Sparsity().ParallelGrowAndPrune(Options(threads: 1)).Run(data);
        var two = ml.Sparsity().ParallelGrowAndPrune(Options(threads: 2)).Run(data);
        var a = one.Model.Network;
        var b = two.Model.Network;
        for (int i = 0; i < a.StateArrays.Count; i++)
            Assert.True(a.StateArrays[i].AsSpan().SequenceEqual(b.StateArrays[i]), $"state array {i} differs");
        for (int p = 0; p < a.Parameters.Count; p++) Assert.Equal(a.Parameters[p].Mask, b.Parameters[p].Mask);
        Assert.Equal(2, one.Rounds.Count);
        Assert.All(one.Rounds, r => Assert.True(r.MaskChanges > 0));
        Assert.All(one.Rounds, r => Assert.NotNull(r.ValidationAccuracy));
        Assert.Single(one.Model.TrainingHistory); // 3 epochs: 2 rounds of T = 1, then 1 epoch of fine-tuning
        var report = one.Model.GetSparsityReport();
        Assert.All(report.Layers, l => Assert.Equal(Math.Round(0.8 * l.Count), l.Count - l.NonZeros));
        Assert.All(report.Layers, l => Assert.Contains("P-GaP", l.Pattern, StringComparison.Ordinal));
        Assert.Equal("ParallelGap", one.Model.Options!["trainer"]!.GetValue<string>());
        Assert.StartsWith("P-GaP to 0.8 sparsity: unstructured, uniform, κ = 3, T = auto, 2 rounds", one.Model.Options["sparsity"]!.GetValue<string>(), StringComparison.Ordinal);
        // Fit is the estimator's shape of the same run.
        var fitted = ml.Sparsity().ParallelGrowAndPrune(Options(threads: 1)).Fit(data);
        Assert.True(fitted.Network.StateArrays[0].AsSpan().SequenceEqual(a.StateArrays[0]));
    }

    /// <summary>dense0, batch norm, ReLU, dense1, output: three pruned layers, one per partition; the batch norm and ReLU go with dense0.</summary>
    private static (SequentialNetwork Network, GapLayers Gap) Tiny()
    {
        var network = Build([6], 1, Layers.Dense(8), Layers.BatchNorm(), Layers.ReLU(), Layers.Dense(6), Layers.Dense(4) with { Name = "output" });
        var gap = new GapLayers(new GapOptions { TargetSparsity = 0.5, Allocation = LayerAllocation.Uniform, PartitionCount = 3 }, network, 1, "P-GaP");
        return (network, gap);
    }

    [Fact]
    public void MergeTakesPartitionIFromCopyI()
    {
        var (network, gap) = Tiny();
        Assert.Equal([[0], [1], [2]], gap.Partitions);
        Assert.Equal([0, 0, 0, 1, 2], GapPartitions.LayerOwners(network, gap.Layers, gap.Partitions));
        var (stateOwners, parameterOwners) = GapCopy.Owners(network, gap);
        var start = new GapModelState(network.StateArrays.Select(a => Enumerable.Repeat(-1f, a.Length).ToArray()).ToArray(),
            network.Parameters.Select(p => Enumerable.Repeat(-1f, p.Length).ToArray()).ToArray<float[]?>());
        // Copy p returns its partition's arrays filled with p + 1; the copies arrive out of order.
        GapCopyResult Copy(int p) => new(p,
            Enumerable.Range(0, stateOwners.Length).Where(i => stateOwners[i] == p).ToDictionary(i => i, i => Enumerable.Repeat(p + 1f, start.State[i].Length).ToArray()),
            Enumerable.Range(0, parameterOwners.Length).Where(i => parameterOwners[i] == p).ToDictionary(i => i, i => (float[]?)Enumerable.Repeat(p + 1f, start.Masks[i]!.Length).ToArray()));
        var merged = GapCopy.Merge(start, [Copy(2), Copy(0), Copy(1)]);
        int[] expectedLayerOwner = [0, 0, 0, 1, 2];
        int state = 0;
        for (int l = 0; l < network.Layers.Count; l++)
            foreach (var _ in network.Layers[l].Parameters)
            {
                Assert.All(merged.State[state], v => Assert.Equal(expectedLayerOwner[l] + 1f, v));
                Assert.All(merged.Masks[state]!, v => Assert.Equal(expectedLayerOwner[l] + 1f, v));
                state++;
            }
        // The batch norm's running statistics come after the parameters, from dense0's copy.
        Assert.Equal(state + 2, merged.State.Length);
        Assert.All(merged.State.Skip(state).SelectMany(a => a), v => Assert.Equal(1f, v));
        Assert.Throws<InvalidOperationException>(() => GapCopy.Merge(start, [Copy(0), Copy(1)]));
        Assert.Throws<InvalidOperationException>(() => GapCopy.Merge(start, [Copy(0), Copy(1), Copy(2), Copy(1)]));
    }

    [Fact]
    public void ACopysRoundIsAPureFunctionReturningOnlyItsPrunedPartition()
    {
        var (network, gap) = Tiny();
        gap.ApplyInitialMask();
        var targets = gap.Targets();
        var start = GapModelState.Of(network);
        var snapshot = GapModelState.Of(network);
        var options = new ParallelGapOptions
        {
            Training = new NeuralNetworkMulticlassTrainer.Options { Layers = [Layers.Dense(8), Layers.BatchNorm(), Layers.ReLU(), Layers.Dense(6)], Epochs = 4, BatchSize = 16,
                Optimizer = new AdamOptimizerOptions { LearningRate = 0.05f } },
            Gap = new GapOptions { TargetSparsity = 0.5, Allocation = LayerAllocation.Uniform, PartitionCount = 3 },
        };
        var random = new Random(2);
        var features = Enumerable.Range(0, 512 * 6).Select(_ => random.NextSingle()).ToArray();
        var data = new Dataset(features, [6], Enumerable.Range(0, 512).Select(i => (float)(i % 4)).ToArray(), classCount: 4);
        var work = new GapCopyWork(start, Partition: 1, Round: 1, Seed: 5, ClassCount: 4, InputShape: [6]);
        var result = GapCopy.Train(work, options, data, Pool, CancellationToken.None);
        var again = GapCopy.Train(work, options, data, Pool, CancellationToken.None);
        // The input is untouched, and the same input gives the same output.
        for (int i = 0; i < start.State.Length; i++) Assert.Equal(snapshot.State[i], start.State[i]);
        Assert.Equal(result.State.Keys, again.State.Keys);
        foreach (var (i, values) in result.State) Assert.Equal(values, again.State[i]);
        // Only dense1's weight and bias come back, pruned to its target and trained.
        int dense1 = network.Parameters.ToList().IndexOf(gap.Layers[1].Weight);
        Assert.Equal([dense1, dense1 + 1], result.State.Keys.Order());
        Assert.Equal([dense1, dense1 + 1], result.Masks.Keys.Order());
        Assert.Equal(targets[1], result.Masks[dense1]!.LongCount(m => m == 0));
        Assert.Equal(targets[1], result.State[dense1].LongCount(v => v == 0));
        Assert.NotEqual(start.State[dense1], result.State[dense1]);
        Assert.NotEqual(start.Masks[dense1], result.Masks[dense1]);
    }

    [Fact]
    public void BadOptionsThrowNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        var data = new DatasetDataView(GapTests.SyntheticData(64));
        string Fails<T>(ParallelGapOptions options) where T : ArgumentException =>
            Assert.Throws<T>(() => ml.Sparsity().ParallelGrowAndPrune(options).Fit(data)).ParamName!;
        var sparse = Options(1);
        sparse.Training.Sparsity = ml.Sparsity().RandomPruning();
        Assert.Equal("Training", Fails<ArgumentException>(sparse));
        Assert.Equal("Rounds", Fails<ArgumentException>(Options(1, epochs: 3, rounds: 4)));
        var tooMany = Options(1);
        tooMany.Gap.PartitionCount = 4;
        Assert.Equal("PartitionCount", Fails<ArgumentOutOfRangeException>(tooMany));
        var step = Options(1);
        step.Gap.StepEpochs = -1;
        Assert.Equal("StepEpochs", Fails<ArgumentOutOfRangeException>(step));
        var repeated = Options(1);
        repeated.Gap.PartitionCount = null;
        repeated.Gap.Partitions = [["dense0"], ["dense1", "dense0"], ["output"]];
        Assert.Equal("Partitions", Fails<ArgumentException>(repeated));
    }
}
