using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.GrowAndPrune;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.GrowAndPrune;

public class GapTests
{
    /// <summary>8 → 12 → 8 → 16 → 8 → 4, five dense layers whose inputs are multiples of 4 (so 2:4 fits every one).</summary>
    private static SequentialNetwork FiveLayers(int seed = 1) =>
        Build([8], seed, Layers.Dense(12), Layers.ReLU(), Layers.Dense(8), Layers.ReLU(), Layers.Dense(16), Layers.ReLU(), Layers.Dense(8), Layers.Dense(4));

    /// <summary>The definition of the random order: round r's permutation of 0..κ−1 by Random(Derive(seed, tag, r)).Shuffle.</summary>
    private static int ExpectedPartition(GapPartitionOrder order, int kappa, int seed, int step)
    {
        if (order == GapPartitionOrder.Cyclic) return step % kappa;
        var permutation = Enumerable.Range(0, kappa).ToArray();
        new Random(Seeds.Derive(seed, GapSchedule.SeedTag, step / kappa)).Shuffle(permutation);
        return permutation[step % kappa];
    }

    [Theory]
    [InlineData(GapPartitionOrder.Cyclic)]
    [InlineData(GapPartitionOrder.Random)]
    public void ScheduleGrowsThePartitionItsDefinitionSaysAtEveryStep(GapPartitionOrder order)
    {
        for (int kappa = 1; kappa <= 5; kappa++)
        {
            var schedule = new GapSchedule(kappa, rounds: 6, order, seed: 11);
            Assert.Equal(6 * kappa, schedule.Steps);
            for (int step = 0; step < schedule.Steps; step++) Assert.Equal(ExpectedPartition(order, kappa, 11, step), schedule.PartitionAt(step));
            // Every round grows every partition once.
            for (int round = 0; round < 6; round++)
                Assert.Equal(Enumerable.Range(0, kappa), Enumerable.Range(round * kappa, kappa).Select(schedule.PartitionAt).Order());
        }
        // The random order is not the cyclic one, and depends on the seed.
        var random = new GapSchedule(4, 6, GapPartitionOrder.Random, 11);
        var other = new GapSchedule(4, 6, GapPartitionOrder.Random, 12);
        var steps = Enumerable.Range(0, 24).ToArray();
        if (order == GapPartitionOrder.Random)
        {
            Assert.NotEqual(steps.Select(s => s % 4), steps.Select(random.PartitionAt));
            Assert.NotEqual(steps.Select(other.PartitionAt), steps.Select(random.PartitionAt));
        }
    }

    [Fact]
    public void BalancedPartitionsAreConsecutiveAndMinimiseTheLargest()
    {
        Assert.Equal([[0], [1, 2]], GapPartitions.Balanced([235_200, 30_000, 1_000], 2));
        Assert.Equal([[0, 1], [2, 3]], GapPartitions.Balanced([1, 1, 1, 1], 2));
        var random = new Random(5);
        for (int trial = 0; trial < 200; trial++)
        {
            int n = random.Next(1, 7), k = random.Next(1, n + 1);
            var sizes = Enumerable.Range(0, n).Select(_ => (long)random.Next(1, 50)).ToArray();
            var runs = GapPartitions.Balanced(sizes, k);
            Assert.Equal(k, runs.Length);
            Assert.Equal(Enumerable.Range(0, n), runs.SelectMany(r => r));
            Assert.All(runs, r => Assert.NotEmpty(r));
            Assert.Equal(BruteForceLargest(sizes, k), runs.Max(r => r.Sum(i => sizes[i])));
        }
    }

    private static long BruteForceLargest(long[] sizes, int k)
    {
        long best = long.MaxValue;
        // Choose k − 1 cut points among the n − 1 gaps.
        int n = sizes.Length;
        for (int bits = 0; bits < 1 << (n - 1); bits++)
        {
            if (System.Numerics.BitOperations.PopCount((uint)bits) != k - 1) continue;
            long largest = 0, run = 0;
            for (int i = 0; i < n; i++)
            {
                run += sizes[i];
                if (i == n - 1 || (bits >> i & 1) != 0) { largest = Math.Max(largest, run); run = 0; }
            }
            best = Math.Min(best, largest);
        }
        return best;
    }

    public static TheoryData<GapPartitionOrder, int, bool> Schedules()
    {
        var data = new TheoryData<GapPartitionOrder, int, bool>();
        foreach (var order in new[] { GapPartitionOrder.Cyclic, GapPartitionOrder.Random })
        for (int kappa = 1; kappa <= 5; kappa++)
        foreach (bool nm in new[] { false, true })
            data.Add(order, kappa, nm);
        return data;
    }

    /// <summary>
    /// Drives the controller step by step, "training" by giving every unmasked weight a fresh random value, and checks at
    /// every step: the grown partition is the schedule's and fully dense, every other layer exactly at its target (2:4:
    /// exactly 2 per group) with its pruned weights 0, and a pruned-back partition keeps its largest |w|.
    /// </summary>
    [Theory]
    [MemberData(nameof(Schedules))]
    public void EveryStepHasTheScheduledPartitionDenseAndTheRestExactlyAtTarget(GapPartitionOrder order, int kappa, bool nm)
    {
        const int seed = 21, stepsPerEpoch = 3, stepEpochs = 2, rounds = 2, epochs = 2 * 5 * 2 + 3;
        var network = FiveLayers();
        var optimizer = new SgdOptimizerOptions { Momentum = 0.9f }.Create(network.Parameters, Pool);
        var options = new GapOptions
        {
            TargetSparsity = 0.75, Allocation = LayerAllocation.Uniform, PartitionCount = kappa, StepEpochs = stepEpochs, Rounds = rounds, Order = order,
            Pattern = nm ? SparsityPattern.NM(2, 4) : SparsityPattern.Unstructured,
        };
        var controller = (GapController)options.CreateController(network, optimizer, seed, null);
        var layers = controller.Layers.Layers;
        var partitions = controller.Layers.Partitions;
        Assert.Equal(kappa, partitions.Length);
        Assert.Equal(Enumerable.Range(0, 5), partitions.SelectMany(p => p));
        controller.Start(stepsPerEpoch, (long)stepsPerEpoch * epochs);
        // 25% kept per layer; N:M keeps 2 of every 4.
        double sparsity = nm ? 0.5 : 0.75;
        Assert.Equal(layers.Select(l => (long)Math.Round(sparsity * l.Count)), controller.Targets);
        long stepLength = stepEpochs * stepsPerEpoch, total = (long)stepsPerEpoch * epochs;
        int gapSteps = kappa * rounds;
        var random = new Random(8);
        for (long t = 0; t <= total; t++)
        {
            if (t > 0)
            {
                foreach (var p in network.Parameters)
                for (int i = 0; i < p.Length; i++)
                    if (p.Mask is null || p.Mask[i] != 0) p.Value[i] = (random.NextSingle() + 0.01f) * (random.Next(2) * 2 - 1);
                bool boundary = t % stepLength == 0 && t / stepLength <= gapSteps;
                var before = layers.Select(l => (float[])l.Weight.Value.Clone()).ToArray();
                var wasDense = layers.Select(l => l.Weight.Mask is null).ToArray();
                controller.AfterStep(t);
                if (boundary)
                    for (int l = 0; l < layers.Count; l++)
                        if (wasDense[l] && layers[l].Weight.Mask is not null) AssertKeepsLargest(layers[l], before[l], nm);
            }
            long k = t / stepLength;
            int? grown = k < gapSteps ? ExpectedPartition(order, kappa, seed, (int)k) : null;
            for (int l = 0; l < layers.Count; l++)
            {
                var weight = layers[l].Weight;
                if (grown is int g && partitions[g].Contains(l)) { Assert.Null(weight.Mask); continue; }
                Assert.NotNull(weight.Mask);
                Assert.Equal(controller.Targets[l], weight.Mask!.LongCount(m => m == 0));
                for (int i = 0; i < weight.Length; i++) if (weight.Mask[i] == 0) Assert.Equal(0f, weight.Value[i]);
                if (nm) for (int i = 0; i < weight.Length; i += 4) Assert.Equal(2f, weight.Mask.AsSpan(i, 4).ToArray().Sum());
            }
            Assert.Equal(t >= gapSteps * stepLength, controller.MasksFinal(t));
        }
        Assert.Equal(sparsity, controller.Sparsity, 12);
    }

    /// <summary>The kept entries of a pruned-back layer are its largest |w| (per group of 4 for 2:4).</summary>
    private static void AssertKeepsLargest(PrunableLayer layer, float[] before, bool nm)
    {
        var mask = layer.Weight.Mask!;
        int group = nm ? 4 : before.Length;
        for (int g = 0; g < before.Length; g += group)
        {
            float smallestKept = float.MaxValue, largestPruned = 0;
            for (int i = g; i < g + group; i++)
            {
                if (mask[i] != 0) smallestKept = Math.Min(smallestKept, Math.Abs(before[i]));
                else largestPruned = Math.Max(largestPruned, Math.Abs(before[i]));
                Assert.Equal(mask[i] != 0 ? before[i] : 0f, layer.Weight.Value[i]);
            }
            Assert.True(smallestKept >= largestPruned, $"{layer.Name}: kept {smallestKept} < pruned {largestPruned}");
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData(5)]
    public void InitialMaskIsTheStaticRandomControlsForTheSameSeed(int? maskSeed)
    {
        const int trainingSeed = 31;
        foreach (var allocation in new[] { LayerAllocation.ErdosRenyiKernel, LayerAllocation.Uniform })
        {
            var a = SmallConv(seed: 3);
            var gap = new GapOptions { TargetSparsity = 0.8, Allocation = allocation, MaskSeed = maskSeed, Rounds = 1 };
            var controller = (GapController)gap.CreateController(a, new SgdOptimizerOptions().Create(a.Parameters, Pool), trainingSeed, null);
            controller.Start(1, 100);
            // Undo the first grow: the initial mask is the partitions' masks before it; read it from a fresh copy instead.
            var b = SmallConv(seed: 3);
            new PruningPlan(new MLContext(1).Sparsity().RandomPruning(0.8, allocation, maskSeed), b, trainingSeed).Prune(0, PruningSchedule.AtInitialization(), null);
            var grown = controller.Layers.Partitions[0].Select(i => controller.Layers.Layers[i].Index).ToArray();
            var la = PrunableLayer.From(a);
            var lb = PrunableLayer.From(b);
            for (int l = 0; l < la.Count; l++)
            {
                if (grown.Contains(l)) { Assert.Null(la[l].Weight.Mask); continue; }
                Assert.Equal(lb[l].Weight.Mask, la[l].Weight.Mask);
            }
            Assert.Equal(controller.Layers.Layers.Select(l => lb[l.Index].Weight.Mask!.LongCount(m => m == 0)), controller.Targets);
        }
    }

    [Fact]
    public void LayersTheAllocationLeavesDenseAreInNoPartition()
    {
        // ERK at 90% keeps LeNet-300-100's 100×10 output layer dense: C-GaP grows and prunes the two hidden layers only.
        var network = LeNet();
        var controller = (GapController)new GapOptions().CreateController(network, new SgdOptimizerOptions().Create(network.Parameters, Pool), 1, null);
        Assert.Equal(["dense0", "dense1"], controller.Layers.Layers.Select(l => l.Name));
        Assert.Equal([[0], [1]], controller.Layers.Partitions);
        controller.Start(10, 200);
        Assert.Equal(0, PrunableLayer.From(network)[2].Weight.Value.Count(v => v == 0));
    }

    [Fact]
    public void TrainingKeepsPrunedWeightsAndGrownOptimizerStateAtZeroAndEndsAtTheTargets()
    {
        var data = SyntheticData(256);
        var network = Build([16], 4, Layers.Dense(24), Layers.ReLU(), Layers.Dense(12), Layers.ReLU(), Layers.Dense(4));
        var optimizer = new AdamOptimizerOptions { LearningRate = 1e-2f }.Create(network.Parameters, Pool);
        var options = new GapOptions { TargetSparsity = 0.8, PartitionCount = 3, StepEpochs = 1, Rounds = 2, Order = GapPartitionOrder.Random };
        var gap = (GapController)options.CreateController(network, optimizer, 6, null);
        var checking = new CheckingController(gap, network, optimizer);
        var loop = new TrainingLoop(network, new SoftmaxCrossEntropyLoss(), optimizer, LearningRateSchedule.Constant(), 1e-2f, 32, 8, 6, true, 0, true, checking);
        loop.Run(data, null, null, null, CancellationToken.None);
        // 6 GaP steps of 1 epoch (8 optimiser steps each), then 2 epochs with the mask fixed.
        Assert.Equal([2, 1, 1, 1, 1, 1, 0, 0], loop.History.Select(h => h.PruningEvents));
        Assert.All(loop.History.Take(6), h => Assert.True(h.MaskChanges > 0));
        Assert.All(loop.History.Skip(6), h => Assert.Equal(0L, h.MaskChanges));
        Assert.Equal(16, checking.FixedSteps);
        Assert.True(checking.Grows >= 4, $"{checking.Grows} grows seen");
        var layers = gap.Layers.Layers;
        for (int l = 0; l < layers.Count; l++) Assert.Equal(gap.Targets[l], layers[l].Weight.Value.LongCount(v => v == 0));
    }

    /// <summary>Checks around every step: masked weights are 0; a grown layer's formerly pruned weights and their optimiser state are 0 when it is grown; masks do not change once final.</summary>
    private sealed class CheckingController(GapController inner, SequentialNetwork network, Optimizer optimizer) : SparsityController
    {
        private float[]?[]? _final;
        public int FixedSteps { get; private set; }
        public int Grows { get; private set; }
        public override double Sparsity => inner.Sparsity;
        public override void Start(int stepsPerEpoch, long totalSteps) => inner.Start(stepsPerEpoch, totalSteps);
        public override EpochMaskActivity EndEpoch() => inner.EndEpoch();
        public override bool MasksFinal(long completedSteps) => inner.MasksFinal(completedSteps);

        public override void AfterStep(long completedSteps)
        {
            var before = network.Parameters.Select(p => p.Mask).ToArray();
            inner.AfterStep(completedSteps);
            for (int p = 0; p < network.Parameters.Count; p++)
            {
                var parameter = network.Parameters[p];
                if (parameter.Mask is { } mask)
                    for (int i = 0; i < mask.Length; i++) if (mask[i] == 0) Assert.Equal(0f, parameter.Value[i]);
                if (before[p] is not { } old || parameter.Mask is not null) continue;
                Grows++;
                for (int i = 0; i < old.Length; i++)
                {
                    if (old[i] != 0) continue;
                    Assert.Equal(0f, parameter.Value[i]);
                    for (int s = 0; s < optimizer.StateSlots; s++) Assert.Equal(0f, optimizer.State[p * optimizer.StateSlots + s][i]);
                }
            }
            if (!inner.MasksFinal(completedSteps)) return;
            if (_final is null) { _final = network.Parameters.Select(p => (float[]?)p.Mask?.Clone()).ToArray(); return; }
            FixedSteps++;
            for (int p = 0; p < _final.Length; p++) Assert.Equal(_final[p], network.Parameters[p].Mask);
        }
    }

    [Fact]
    public void TrainerRecordsCGapAndWorksWithConvolutions()
    {
        var ml = new MLContext(seed: 2);
        var random = new Random(4);
        var features = new float[128 * 8 * 8 * 4];
        for (int i = 0; i < features.Length; i++) features[i] = random.NextSingle();
        var labels = Enumerable.Range(0, 128).Select(i => (float)(i % 3)).ToArray();
        var data = new DatasetDataView(new Dataset(features, [8, 8, 4], labels, classCount: 3));
        var gap = ml.Sparsity().GrowAndPrune(0.75, LayerAllocation.Uniform, partitions: 2, stepEpochs: 1, rounds: 1);
        gap.Pattern = SparsityPattern.NM(2, 4);
        gap.ExcludedLayers.Add("-1");
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Conv2d(8, 3, padding: 1), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Conv2d(8, 3), Layers.Flatten()],
            InputShape = [8, 8, 4],
            Epochs = 3,
            BatchSize = 32,
            NumberOfThreads = 1,
            Sparsity = gap,
        }).Fit(data);
        var report = model.GetSparsityReport();
        Assert.Equal(0.5, report.Layers[0].Sparsity);
        Assert.Equal(0.5, report.Layers[1].Sparsity);
        Assert.Equal(0, report.Layers[2].Sparsity);
        Assert.Contains("C-GaP", report.Layers[0].Pattern, StringComparison.Ordinal);
        Assert.StartsWith("C-GaP to 0.75 sparsity: 2:4, uniform, κ = 2, T = 1 epochs, 1 rounds", model.Options!["sparsity"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public void UnsetStepLengthOrRoundsFillSeventyFivePercentOfTheEpochs()
    {
        (int, int) Resolve(int? t, int? r, int epochs, int stepsPerRound) =>
            new GapOptions { StepEpochs = t, Rounds = r }.ResolveSchedule(epochs, stepsPerRound, stepsPerRound == 1 ? ParallelGapOptions.DefaultRounds : 1);
        Assert.Equal((7, 1), Resolve(null, null, 20, 2));
        Assert.Equal((1, 7), Resolve(1, null, 20, 2));
        Assert.Equal((3, 2), Resolve(null, 2, 20, 2));
        Assert.Equal((5, 2), Resolve(5, 2, 20, 2));
        Assert.Equal((5, 3), Resolve(null, null, 20, 1));      // P-GaP: a round is one step; three rounds by default
        Assert.Equal((1, 1), Resolve(null, null, 3, 3));        // at least 1 epoch, if the round fits at all
        Assert.Equal((1, 2), Resolve(null, null, 3, 1));        // P-GaP: fewer rounds when 75% of the run is shorter
        Assert.Equal("Rounds", Assert.Throws<ArgumentException>(() => Resolve(3, 4, 20, 2)).ParamName);
        Assert.Equal("StepEpochs", Assert.Throws<ArgumentException>(() => Resolve(11, null, 20, 2)).ParamName);
        Assert.Equal("Rounds", Assert.Throws<ArgumentException>(() => Resolve(null, 11, 20, 2)).ParamName);
    }

    [Fact]
    public void BadOptionsThrowNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        var data = new DatasetDataView(SyntheticData(64));
        string Fails<T>(GapOptions gap, int epochs = 6) where T : ArgumentException =>
            Assert.Throws<T>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = [Layers.Dense(8), Layers.ReLU(), Layers.Dense(8), Layers.ReLU()], Epochs = epochs, NumberOfThreads = 1, Sparsity = gap,
            }).Fit(data)).ParamName!;
        Assert.Equal("PartitionCount", Fails<ArgumentOutOfRangeException>(new GapOptions { PartitionCount = 4 }));
        Assert.Equal("PartitionCount", Fails<ArgumentOutOfRangeException>(new GapOptions { PartitionCount = 0 }));
        Assert.Equal("Rounds", Fails<ArgumentException>(new GapOptions { PartitionCount = 3, Rounds = 3 }));
        Assert.Equal("Rounds", Fails<ArgumentOutOfRangeException>(new GapOptions { Rounds = 0 }));
        Assert.Equal("StepEpochs", Fails<ArgumentOutOfRangeException>(new GapOptions { StepEpochs = 0 }));
        Assert.Equal("StepEpochs", Fails<ArgumentException>(new GapOptions { PartitionCount = 3, StepEpochs = 2 }, epochs: 5));
        Assert.Equal("Partitions", Fails<ArgumentException>(new GapOptions { Partitions = [["dense0"], ["dense1"]] }));
        Assert.Equal("Partitions", Fails<ArgumentException>(new GapOptions { Partitions = [["dense0", "output"], ["dense1", "0"]] }));
        Assert.Equal("Partitions", Fails<ArgumentException>(new GapOptions { Partitions = [["dense0"], ["dense1", "output"], []] }));
        Assert.Equal("Partitions", Fails<ArgumentException>(new GapOptions { Partitions = [["dense0"], ["dense1"], ["output"]], ExcludedLayers = ["-1"] }));
        Assert.Equal("PartitionCount", Fails<ArgumentException>(new GapOptions { Partitions = [["dense0"], ["dense1", "output"]], PartitionCount = 3 }));
        // User partitions need not be consecutive.
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(8), Layers.ReLU(), Layers.Dense(8), Layers.ReLU()], Epochs = 3, NumberOfThreads = 1,
            Sparsity = new GapOptions { Partitions = [["dense0", "-1"], ["1"]], Rounds = 1, TargetSparsity = 0.5, Allocation = LayerAllocation.Uniform },
        }).Fit(data);
        Assert.Equal(0.5, model.GetSparsityReport().Sparsity, 2);
    }

    /// <summary>16 uniform features in [−1, 1]; the label is the signs of the first two (4 classes).</summary>
    internal static Dataset SyntheticData(int rows)
    {
        var random = new Random(12);
        var features = new float[rows * 16];
        var labels = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            for (int f = 0; f < 16; f++) features[r * 16 + f] = random.NextSingle() * 2 - 1;
            labels[r] = (features[r * 16] > 0 ? 1 : 0) + (features[r * 16 + 1] > 0 ? 2 : 0);
        }
        return new Dataset(features, [16], labels, classCount: 4);
    }
}
