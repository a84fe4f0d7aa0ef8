using Microsoft.ML.Sparsity.GrowAndPrune;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;
using Microsoft.ML.Sparsity.Tests.Masks;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.GrowAndPrune;

/// <summary>The exactness properties of SET and RigL, checked at every step of runs with many mask updates.</summary>
public sealed class DynamicSparseTrainingTests
{
    private const int Batch = 8;

    private static SequentialNetwork Net(string kind) => kind == "conv"
        ? SmallConv(seed: 3)
        : Build([16], 3, Layers.Dense(32), Layers.ReLU(), Layers.Dense(16), Layers.ReLU(), Layers.Dense(4));

    private static OptimizerOptions Optimizer(string name) => name == "adam"
        ? new AdamOptimizerOptions { LearningRate = 0.01f, WeightDecay = 1e-3f }
        : new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f, Nesterov = true, WeightDecay = 1e-3f };

    /// <summary>Drives a controller through the training loop's hooks by hand, on seeded random batches.</summary>
    private sealed class Run
    {
        private readonly RandomBatches _batches = new(21, Batch);

        public Run(SequentialNetwork network, OptimizerOptions optimizer, DynamicSparseOptions options, int stepsPerEpoch, long totalSteps)
        {
            Network = network;
            Optimizer = optimizer.Create(network.Parameters, Pool);
            Controller = (DynamicSparseController)options.CreateController(network, Optimizer, seed: 11, log: null);
            Controller.Start(stepsPerEpoch, totalSteps);
            network.EnsureCapacity(Batch);
        }

        public SequentialNetwork Network { get; }
        public Microsoft.ML.Sparsity.Training.Optimizer Optimizer { get; }
        public DynamicSparseController Controller { get; }

        /// <summary>Forward and backward on a new batch (step <paramref name="t"/>, 0-based).</summary>
        public void Backward(long t)
        {
            _batches.Next(Network);
            Controller.AfterBackward(t);
        }

        /// <summary>The current batch's gradient of every prunable weight, computed by a copy of the network without masks.</summary>
        public float[][] DenseGradient()
        {
            var copy = Network.Clone(Pool);
            foreach (var p in copy.Parameters) p.Mask = null;
            copy.EnsureCapacity(Batch);
            Network.Input.AsSpan(0, Batch * Network.InputSize).CopyTo(copy.Input);
            _batches.Backward(copy);
            return PrunableLayer.From(copy).Select(l => (float[])l.Weight.Gradient.Clone()).ToArray();
        }

        /// <summary>The optimiser state slots of a layer's weight.</summary>
        public float[][] State(PrunableLayer layer)
        {
            int p = Network.Parameters.ToList().IndexOf(layer.Weight);
            return Enumerable.Range(0, Optimizer.StateSlots).Select(s => Optimizer.State[p * Optimizer.StateSlots + s]).ToArray();
        }
    }

    public static TheoryData<string, string, string, string> Cases => new()
    {
        { "set", "dense", "momentum", "every 25 steps" },
        { "set", "conv", "adam", "every epoch" },
        { "set", "dense", "adam", "initializer" },
        { "rigl", "dense", "adam", "every 25 steps" },
        { "rigl", "conv", "momentum", "every 25 steps" },
        { "rigl", "dense", "momentum", "end at step 330" },
    };

    private static DynamicSparseOptions Options(string method, string variant)
    {
        DynamicSparseOptions o = method == "set" ? new SetOptions() : new RigLOptions();
        (o.TargetSparsity, o.Allocation, o.UpdateFrequency, o.UpdateEveryEpoch) = (0.8, LayerAllocation.Uniform, 25, variant == "every epoch");
        if (variant == "initializer") o.GrowInitializer = WeightInitializer.GlorotUniform;
        if (variant == "end at step 330") o.EndStep = 330;
        return o;
    }

    /// <summary>f(t) written out from the papers, independently of the library's schedule.</summary>
    private static double ExpectedFraction(DynamicSparseOptions o, long t, long end) =>
        o is RigLOptions ? 0.3 * (1 + Math.Cos(Math.PI * t / end)) / 2 : 0.3;

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryUpdateMovesExactlyTheScheduledCountAndGrownWeightsStartAfresh(string method, string kind, string optimizer, string variant)
    {
        const int steps = 400, stepsPerEpoch = 40;
        var options = Options(method, variant);
        var run = new Run(Net(kind), Optimizer(optimizer), options, stepsPerEpoch, steps);
        var layers = run.Controller.Layers;
        Assert.Equal(PrunableLayer.From(run.Network).Count, layers.Count);
        long end = options.EndStep ?? (long)Math.Round(options.EndFraction * steps);
        long interval = options.UpdateEveryEpoch ? stepsPerEpoch : options.UpdateFrequency;
        var activeCounts = layers.Select(l => l.Weight.Mask!.Count(m => m != 0)).ToArray();
        Assert.All(layers.Zip(activeCounts), p => Assert.Equal(Math.Round(0.2 * p.First.Count), p.Second));
        int updates = 0, moved = 0, randomLooking = 0, informative = 0;
        for (long t = 0; t < steps; t++)
        {
            run.Backward(t);
            bool update = (t + 1) % interval == 0 && t + 1 < end;
            var gradient = update && method == "rigl" ? run.DenseGradient() : null;
            if (gradient is not null)
                for (int l = 0; l < layers.Count; l++) Assert.Equal(gradient[l], layers[l].Weight.Gradient);
            var masksBefore = layers.Select(l => (float[])l.Weight.Mask!.Clone()).ToArray();
            run.Optimizer.Step(0.02f);
            var weightsBefore = layers.Select(l => (float[])l.Weight.Value.Clone()).ToArray();
            run.Controller.AfterStep(t + 1);
            for (int l = 0; l < layers.Count; l++)
            {
                var (layer, mask, w, state) = (layers[l], layers[l].Weight.Mask!, layers[l].Weight.Value, run.State(layers[l]));
                // Pruned weights and their optimiser state are exactly 0 after every step.
                for (int i = 0; i < mask.Length; i++)
                    if (mask[i] == 0) Assert.True(w[i] == 0 && state.All(s => s[i] == 0), $"step {t + 1}, {layer.Name}[{i}] is pruned but not zero");
                Assert.Equal(activeCounts[l], mask.Count(m => m != 0));
                var before = masksBefore[l];
                var dropped = Enumerable.Range(0, mask.Length).Where(i => before[i] != 0 && mask[i] == 0).ToArray();
                var grown = Enumerable.Range(0, mask.Length).Where(i => before[i] == 0 && mask[i] != 0).ToArray();
                var kept = Enumerable.Range(0, mask.Length).Where(i => before[i] != 0 && mask[i] != 0).ToArray();
                if (!update)
                {
                    Assert.Empty(dropped);
                    Assert.Empty(grown);
                    continue;
                }
                // The count: round(f(t)·active), at most the inactive positions; a weight dropped and grown back would make it fall short.
                int active = activeCounts[l], inactive = mask.Length - active;
                int k = (int)Math.Min(Math.Round(ExpectedFraction(options, t + 1, end) * active, MidpointRounding.AwayFromZero), inactive);
                Assert.Equal(k, dropped.Length);
                Assert.Equal(k, grown.Length);
                Assert.All(kept, i => Assert.Equal(weightsBefore[l][i], w[i]));
                if (k == 0) continue;
                moved += k;
                // Dropped: the active weights closest to zero.
                Assert.True(dropped.Max(i => MathF.Abs(weightsBefore[l][i])) <= kept.Min(i => MathF.Abs(weightsBefore[l][i])));
                // Grown: initial value and zero optimiser state.
                foreach (int i in grown)
                {
                    Assert.All(state, s => Assert.Equal(0f, s[i]));
                    if (options.GrowInitializer is null) Assert.Equal(0f, w[i]);
                    else Assert.True(w[i] != 0 && MathF.Abs(w[i]) <= MathF.Sqrt(6f / (layer.Columns + layer.Rows * layer.KernelH * layer.KernelW)));
                }
                if (gradient is not null)
                {
                    // RigL: exactly the top-k |dense gradient| among the positions inactive before the update (ties: lower position).
                    var g = gradient[l];
                    var expected = Enumerable.Range(0, mask.Length).Where(i => before[i] == 0)
                        .OrderByDescending(i => MathF.Abs(g[i])).ThenBy(i => i).Take(k).Order().ToArray();
                    Assert.Equal(expected, grown);
                    if (grown.Any(i => g[i] != 0)) informative++;
                }
                else if (!grown.SequenceEqual(Enumerable.Range(0, mask.Length).Where(i => before[i] == 0).Take(k))) randomLooking++;
            }
            if (update) updates++;
        }
        Assert.Equal(Enumerable.Range(1, steps).Count(s => s % interval == 0 && s < end), updates);
        Assert.True(updates >= 7, $"{updates} updates");
        Assert.True(moved > 0);
        if (method == "set") Assert.True(randomLooking > 0, "SET's grown positions look like the first inactive ones, not random ones");
        else Assert.True(informative >= updates, $"only {informative} layer updates grew where the gradient is non-zero");
    }

    [Theory]
    [InlineData("set")]
    [InlineData("rigl")]
    public void TheInitialMaskIsTheRandomPruningMaskForTheSameSeed(string method)
    {
        var ml = new MLContext(1);
        foreach (var allocation in new[] { LayerAllocation.ErdosRenyiKernel, LayerAllocation.Uniform })
        foreach (int? seed in new int?[] { 5, null })
        {
            DynamicSparseOptions dst = method == "set" ? ml.Sparsity().Set(0.9, allocation, seed) : ml.Sparsity().RigL(0.9, allocation, seed);
            var a = LeNet(seed: 2);
            var controller = dst.CreateController(a, new SgdOptimizerOptions().Create(a.Parameters, Pool), seed: 11, log: null);
            controller.Start(100, 1000);
            var b = LeNet(seed: 2);
            ml.Sparsity().RandomPruning(0.9, allocation, seed).CreateController(b, new SgdOptimizerOptions().Create(b.Parameters, Pool), seed: 11, log: null)
                .Start(100, 1000);
            var c = LeNet(seed: 2);
            ml.Sparsity().RandomPruning(0.9, allocation, 6).CreateController(c, new SgdOptimizerOptions().Create(c.Parameters, Pool), seed: 12, log: null)
                .Start(100, 1000);
            var (la, lb, lc) = (PrunableLayer.From(a), PrunableLayer.From(b), PrunableLayer.From(c));
            for (int l = 0; l < la.Count; l++)
            {
                Assert.Equal(lb[l].Weight.Mask, la[l].Weight.Mask);
                Assert.Equal(lb[l].Weight.Value, la[l].Weight.Value);
            }
            Assert.NotEqual(lc[0].Weight.Mask, la[0].Weight.Mask);
        }
    }

    private static NeuralNetworkMulticlassTrainer.Options Training(SparsityMethod method, int threads, int epochs = 4) => new()
    {
        Layers = [Layers.Dense(256), Layers.ReLU(), Layers.Dense(128), Layers.ReLU()],
        Epochs = epochs,
        BatchSize = 32,
        NumberOfThreads = threads,
        Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
        Sparsity = method,
        Seed = 9,
    };

    [Theory]
    [InlineData("set")]
    [InlineData("rigl")]
    public void ResultsAreBitIdenticalWithOneAndTwoThreads(string method)
    {
        var ml = new MLContext(1);
        var data = Masks.MaskedTrainingTests.SyntheticData(1024);
        DynamicSparseOptions Method() => method == "set"
            ? new SetOptions { UpdateEveryEpoch = false, UpdateFrequency = 10, GrowInitializer = WeightInitializer.GlorotUniform }
            : new RigLOptions { UpdateFrequency = 10 };
        var one = ml.MulticlassClassification.Trainers.NeuralNetwork(Training(Method(), threads: 1)).Fit(data);
        var two = ml.MulticlassClassification.Trainers.NeuralNetwork(Training(Method(), threads: 2)).Fit(data);
        var reference = ml.MulticlassClassification.Trainers.NeuralNetwork(Training(new SetOptions(), threads: 1)).Fit(data);
        for (int p = 0; p < one.Network.Parameters.Count; p++)
        {
            Assert.Equal(one.Network.Parameters[p].Value, two.Network.Parameters[p].Value);
            Assert.Equal(one.Network.Parameters[p].Mask, two.Network.Parameters[p].Mask);
        }
        Assert.NotEqual(reference.Network.Parameters[0].Mask, one.Network.Parameters[0].Mask);
    }

    [Fact]
    public void ProgressCountsUpdatesAndFlippedEntriesAndTheModelRecordsTheMethod()
    {
        var ml = new MLContext(1);
        var data = Masks.MaskedTrainingTests.SyntheticData(1024);
        var progress = new List<TrainingProgress>();
        var set = new SetOptions { Allocation = LayerAllocation.Uniform };
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(Training(set, threads: 1, epochs: 6))
            .Fit(data, null, new SynchronousProgress<TrainingProgress>(progress.Add));
        // 32 steps an epoch; updates at the ends of epochs 1–5 (not at the run's last step); epoch 1 also drew the initial mask.
        Assert.Equal([2, 1, 1, 1, 1, 0], progress.Select(p => p.PruningEvents));
        var layers = PrunableLayer.From(model.Network);
        long perUpdate = 2 * layers.Sum(l => (long)Math.Round(0.3 * Math.Round(0.1 * l.Count), MidpointRounding.AwayFromZero));
        Assert.Equal([perUpdate, perUpdate, perUpdate, perUpdate, perUpdate, 0], progress.Select(p => p.MaskChanges));
        var report = model.GetSparsityReport();
        Assert.All(report.Layers, l => Assert.Matches(@"^SET: 5 updates, [\d,]+ grown \(unstructured\)$", l.Pattern));
        Assert.All(report.Layers, l => Assert.True(l.NonZeros <= Math.Round(0.1 * l.Count)));
        Assert.Equal(set.ToString(), model.Options!["sparsity"]!.GetValue<string>());
        Assert.StartsWith("SET to 0.9 sparsity: uniform, updates every epoch, drop fraction 0.3 (constant) until 1 of training", set.ToString(), StringComparison.Ordinal);
        Assert.True(progress[^1].ValidationAccuracy is null && progress[^1].TrainingLoss < progress[0].TrainingLoss);
    }

    [Fact]
    public void BadOptionsThrowTypedExceptionsNamingTheOption()
    {
        var ml = new MLContext(1);
        var data = Masks.MaskedTrainingTests.SyntheticData(256);
        void Fails<TException>(DynamicSparseOptions options, string option) where TException : ArgumentException
        {
            var e = Assert.Throws<TException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(Training(options, threads: 1, epochs: 1)).Fit(data));
            Assert.Equal(option, e.ParamName);
        }
        Fails<ArgumentOutOfRangeException>(new RigLOptions { UpdateFrequency = 0 }, nameof(DynamicSparseOptions.UpdateFrequency));
        Fails<ArgumentOutOfRangeException>(new SetOptions { UpdateFrequency = -5 }, nameof(DynamicSparseOptions.UpdateFrequency));
        Fails<ArgumentOutOfRangeException>(new SetOptions { DropFraction = 0 }, nameof(DynamicSparseOptions.DropFraction));
        Fails<ArgumentOutOfRangeException>(new RigLOptions { DropFraction = 1 }, nameof(DynamicSparseOptions.DropFraction));
        Fails<ArgumentOutOfRangeException>(new RigLOptions { DropFraction = double.NaN }, nameof(DynamicSparseOptions.DropFraction));
        Fails<ArgumentOutOfRangeException>(new RigLOptions { EndFraction = 1.5 }, nameof(DynamicSparseOptions.EndFraction));
        Fails<ArgumentOutOfRangeException>(new RigLOptions { EndFraction = 0 }, nameof(DynamicSparseOptions.EndFraction));
        Fails<ArgumentOutOfRangeException>(new RigLOptions { EndStep = 9 }, nameof(DynamicSparseOptions.EndStep));    // the run has 8 steps
        Fails<ArgumentOutOfRangeException>(new RigLOptions { EndStep = 0 }, nameof(DynamicSparseOptions.EndStep));
        Fails<ArgumentOutOfRangeException>(new SetOptions { TargetSparsity = 1 }, nameof(DynamicSparseOptions.TargetSparsity));
        Fails<ArgumentOutOfRangeException>(new SetOptions { DropFractionSchedule = (DropFractionSchedule)7 }, nameof(DynamicSparseOptions.DropFractionSchedule));
        Fails<ArgumentException>(new SetOptions { Allocation = LayerAllocation.Global }, nameof(DynamicSparseOptions.Allocation));
        Fails<ArgumentException>(new SetOptions { ExcludedLayers = { "nope" } }, nameof(DynamicSparseOptions.ExcludedLayers));
        // EndStep = the run's last step is allowed.
        ml.MulticlassClassification.Trainers.NeuralNetwork(Training(new RigLOptions { EndStep = 8, UpdateFrequency = 2 }, threads: 1, epochs: 1)).Fit(data);
    }
}
