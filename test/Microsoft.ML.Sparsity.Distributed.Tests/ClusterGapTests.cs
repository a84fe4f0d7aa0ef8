using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.GrowAndPrune;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Distributed.Tests;

/// <summary>P-GaP with its copies on an in-process cluster of three workers, against P-GaP on one machine; its options' trip to the workers.</summary>
[Trait("Tier", "NativeOnly")]
public sealed class ClusterGapTests
{
    /// <summary>Three partitions (the two hidden layers and the output), two rounds of one epoch, one epoch of fine-tuning.</summary>
    private static ParallelGapOptions Options() => new()
    {
        Training = new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(48), Layers.ReLU(), Layers.Dense(24), Layers.BatchNorm(), Layers.ReLU()],
            Epochs = 3,
            BatchSize = 64,
            Optimizer = new AdamOptimizerOptions { LearningRate = 1e-2f },
            LearningRateSchedule = LearningRateSchedule.Cosine(),
            Seed = 3,
        },
        Gap = new GapOptions { TargetSparsity = 0.8, Allocation = LayerAllocation.Uniform, PartitionCount = 3, Rounds = 2 },
    };

    [Fact]
    public async Task P_GaP_on_three_workers_gives_the_weights_of_P_GaP_on_one_machine_bit_for_bit()
    {
        var data = ClusterSweepTests.Data;
        var ml = new MLContext(seed: 1);
        var split = ml.Data.TrainTestSplit(ml.Data.TakeRows(ml.Data.LoadFashionMnist(FashionMnistSplit.Train), 1500), 1.0 / 6, seed: 1);
        var here = ml.Sparsity().ParallelGrowAndPrune(Options()).Run(split.TrainSet, split.TestSet);

        await using var cluster = await TestClusters.Start();
        var there = ml.Sparsity().ParallelGrowAndPrune(Options()).RunOnCluster(cluster.Client, data, splitSeed: 1);

        var a = here.Model.Network;
        var b = there.Model.Network;
        Assert.Equal(a.StateArrays.Count, b.StateArrays.Count);
        for (int i = 0; i < a.StateArrays.Count; i++)
            Assert.True(a.StateArrays[i].AsSpan().SequenceEqual(b.StateArrays[i]), $"state array {i} differs");
        for (int p = 0; p < a.Parameters.Count; p++) Assert.Equal(a.Parameters[p].Mask, b.Parameters[p].Mask);
        Assert.Equal(here.Rounds.Select(r => (r.MaskChanges, r.ValidationAccuracy)), there.Rounds.Select(r => (r.MaskChanges, r.ValidationAccuracy)));
        Assert.All(there.Rounds, r => Assert.True(r.MaskChanges > 0));
        // Two rounds of three copies, spread over the three workers.
        Assert.Equal(6, cluster.Silos.Sum(silo => TestClusters.WorkStarted(cluster, silo)));
        Assert.All(cluster.Silos, silo => Assert.True(TestClusters.WorkStarted(cluster, silo) > 0, $"{silo.SiloAddress} trained no copy"));
    }

    [Fact]
    public void Every_option_of_P_GaP_reaches_the_worker()
    {
        var options = Options();
        var t = options.Training;
        (t.LabelColumnName, t.FeatureColumnName, t.InputShape, t.Epochs, t.BatchSize) = ("L", "F", [784], 7, 32);
        t.Optimizer = new SgdOptimizerOptions { LearningRate = 0.123f, Momentum = 0.8f, Nesterov = true, WeightDecay = 1e-4f };
        t.LearningRateSchedule = LearningRateSchedule.Step(3, 0.5f).WithWarmup(11);
        (t.WeightInitializer, t.ValidationFraction, t.EarlyStoppingPatience, t.Shuffle, t.BatchNormScaleL1) = (WeightInitializer.HeNormal, 0.25f, 2, false, 1e-5f);
        var g = options.Gap;
        (g.TargetSparsity, g.Pattern, g.Allocation, g.OutputLayerAtHalfRate, g.LeaveMisfitLayersDense, g.MaskSeed) = (0.75, SparsityPattern.NM(1, 8), LayerAllocation.ErdosRenyi, true, true, 17);
        g.LayerSparsity["dense0"] = 0.5;
        g.ExcludedLayers.Add("output");
        (g.PartitionCount, g.StepEpochs, g.Rounds, g.Order) = (2, 2, 3, GapPartitionOrder.Random);
        g.Partitions.Add(["dense0"]);
        g.Partitions.Add(["dense1", "output"]);

        string json = GapOptionsJson.Write(options);
        var back = GapOptionsJson.Read(json);
        Assert.Equal(json, GapOptionsJson.Write(back));
        Assert.Equal(t.LearningRateSchedule.ToString(), back.Training.LearningRateSchedule.ToString());
        Assert.Equal(11, back.Training.LearningRateSchedule.WarmupSteps);
        Assert.Equal("1:8", back.Gap.Pattern.ToString());
        Assert.Equal(0.8f, ((SgdOptimizerOptions)back.Training.Optimizer).Momentum);

        // Every public field is written, but the sparsity method (P-GaP's own) and the thread count (the worker's):
        // a field added to the options without being sent fails here.
        var node = JsonNode.Parse(json)!;
        static string Camel(string name) => char.ToLowerInvariant(name[0]) + name[1..];
        foreach (var field in typeof(NeuralNetworkMulticlassTrainer.Options).GetFields(BindingFlags.Public | BindingFlags.Instance))
            if (field.Name is not ("Sparsity" or "NumberOfThreads"))
                Assert.True(node["training"]!.AsObject().ContainsKey(field.Name == "LearningRateSchedule" ? "schedule" : Camel(field.Name)), $"Training.{field.Name} is not sent to workers");
        foreach (var field in typeof(GapOptions).GetFields(BindingFlags.Public | BindingFlags.Instance))
            Assert.True(node["gap"]!.AsObject().ContainsKey(Camel(field.Name)), $"Gap.{field.Name} is not sent to workers");
        Assert.Equal(["Training", "Gap"], typeof(ParallelGapOptions).GetFields(BindingFlags.Public | BindingFlags.Instance).Select(f => f.Name));
    }

    [Fact]
    public void Options_a_worker_cannot_read_are_named()
    {
        var e = Assert.Throws<ArgumentException>(() => GapOptionsJson.Read("{\"training\": {}}"));
        Assert.Contains("P-GaP options", e.Message);
    }
}
