using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.NestedSparsity;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Inference;
using Microsoft.ML.Sparsity.Tests.Masks;
using Microsoft.ML.Sparsity.Tests.Serialization;
using Microsoft.ML.Sparsity.Training;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.NestedSparsity;

/// <summary>Nested sparsity: exact nesting and counts at every update, the passes' gradient, and prediction at every level.</summary>
public sealed class NestedSparsityTests
{
    private const int Batch = 8;
    private static readonly double[] Levels = [0.5, 0.75, 0.9, 0.96];

    /// <summary>Drives the controller through the training loop's hooks by hand, on seeded random batches.</summary>
    private sealed class Run
    {
        private readonly RandomBatches _batches = new(5, Batch);

        public Run(SequentialNetwork network, NestedSparsityOptions options, long totalSteps)
        {
            Network = network;
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f, WeightDecay = 1e-3f }.Create(network.Parameters, Pool);
            Controller = (NestedSparsityController)options.CreateController(network, Optimizer, seed: 9, log: null);
            Controller.Start(10, totalSteps);
            network.EnsureCapacity(Batch);
        }

        public SequentialNetwork Network { get; }
        public Microsoft.ML.Sparsity.Training.Optimizer Optimizer { get; }
        public NestedSparsityController Controller { get; }

        /// <summary>Step <paramref name="t"/>'s passes on one new batch, as the training loop makes them; returns the levels each pass set (read from the weights).</summary>
        public void Passes(long t, Action<int>? afterPass = null)
        {
            Controller.BeforeForward(t);
            int passes = Controller.Passes;
            for (int pass = 0; pass < passes; pass++)
            {
                if (passes > 1) Controller.BeforePass(t, pass);
                if (pass == 0) _batches.Next(Network);
                else _batches.Backward(Network);
                afterPass?.Invoke(pass);
                if (passes > 1) Controller.AfterPass(t, pass);
            }
            Controller.AfterBackward(t);
        }

        public void Step(long t)
        {
            Passes(t);
            Optimizer.Step(0.05f);
            Controller.AfterStep(t + 1);
        }
    }

    private static NestedSparsityOptions Options(LayerAllocation allocation, NestedLevelSampling sampling = NestedLevelSampling.Sandwich) => new()
    {
        Levels = [.. Levels],
        Allocation = allocation,
        Schedule = PruningSchedule.Gradual(beginStep: 10, endStep: 60, frequency: 10),
        Sampling = sampling,
    };

    private static SequentialNetwork Mlp() => Build([16], 3, Layers.Dense(32), Layers.ReLU(), Layers.Dense(16), Layers.ReLU(), Layers.Dense(4));

    /// <summary>Level i's mask of a layer's weight, from the codes the controller keeps on the network at the end (or the weight's mask while training).</summary>
    private static bool[] Kept(byte[] codes, int level) => [.. codes.Select(c => c > level)];

    [Theory]
    [InlineData("uniform", "mlp")]
    [InlineData("erk", "mlp")]
    [InlineData("global", "mlp")]
    [InlineData("uniform", "conv")]
    public void NestingAndCountsAreExactAfterEveryUpdate(string allocation, string kind)
    {
        var layerAllocation = allocation switch { "erk" => LayerAllocation.ErdosRenyiKernel, "global" => LayerAllocation.Global, _ => LayerAllocation.Uniform };
        var network = kind == "conv" ? SmallConv(seed: 3) : Mlp();
        var options = Options(layerAllocation);
        var run = new Run(network, options, totalSteps: 80);
        var schedule = options.Schedule;
        var layers = PrunableLayer.From(network);
        var finals = Levels.Select(l => new PruningPlan(options.PruningTo(l), network, 9).FinalSparsity.ToArray()).ToArray();
        var gone = layers.Select(l => new bool[l.Count]).ToArray();
        for (long t = 0; t < 80; t++)
        {
            run.Step(t);
            long step = t + 1;
            run.Controller.Finish(); // writes the codes onto the weights (the controller keeps its own and goes on)
            if (!schedule.IsPruningStep(step) || step > 60) continue;
            for (int l = 0; l < layers.Count; l++)
            {
                var layer = layers[l];
                byte[] codes = layer.Weight.LevelCodes!;
                for (int i = 0; i < Levels.Length; i++)
                {
                    bool[] kept = Kept(codes, i);
                    // Nested: a sparser level keeps nothing its denser neighbour prunes.
                    if (i > 0) Assert.All(Enumerable.Range(0, kept.Length), w => Assert.True(!kept[w] || Kept(codes, i - 1)[w], $"layer {layer.Name}: level {i} keeps weight {w}, level {i - 1} prunes it"));
                    // Magnitude: within the densest level, every weight a level keeps is at least as large as every one it prunes.
                    var inside = Enumerable.Range(0, kept.Length).Where(w => codes[w] > 0).ToArray();
                    if (inside.Any(w => kept[w]) && inside.Any(w => !kept[w]))
                        Assert.True(inside.Where(w => kept[w]).Min(w => Math.Abs(layer.Weight.Value[w])) >= inside.Where(w => !kept[w]).Max(w => Math.Abs(layer.Weight.Value[w])));
                    if (!layerAllocation.IsGlobal && layerAllocation != LayerAllocation.ErdosRenyiKernel)
                        Assert.Equal(layer.Count - MaskSelection.PrunedCount(schedule.SparsityAt(step, finals[i][l]), layer.Count), kept.Count(k => k));
                }
                // The densest level's pruned weights are 0, masked, and never come back.
                for (int w = 0; w < layer.Count; w++)
                {
                    Assert.Equal(codes[w] > 0 ? 1f : 0f, layer.Weight.Mask![w]);
                    if (codes[w] == 0) Assert.Equal(0f, layer.Weight.Value[w]);
                    Assert.False(gone[l][w] && codes[w] > 0, $"layer {layer.Name}: weight {w} came back");
                    gone[l][w] |= codes[w] == 0;
                }
            }
            // A global threshold, and ERK (whose per-layer counts are rounded to match the total), reach the total exactly.
            if (allocation is "global" or "erk")
                for (int i = 0; i < Levels.Length; i++)
                    Assert.Equal(layers.Sum(l => (long)l.Count) - MaskSelection.PrunedCount(schedule.SparsityAt(step, Levels[i]), layers.Sum(l => (long)l.Count)),
                        layers.Sum(l => (long)Kept(l.Weight.LevelCodes!, i).Count(k => k)));
        }
        // At the end every level is at its target.
        if (allocation == "uniform")
            foreach (var layer in layers)
                for (int i = 0; i < Levels.Length; i++)
                    Assert.Equal(layer.Count - MaskSelection.PrunedCount(Levels[i], layer.Count), Kept(layer.Weight.LevelCodes!, i).Count(k => k));
    }

    [Theory]
    [InlineData(NestedLevelSampling.Sandwich, 3)]
    [InlineData(NestedLevelSampling.All, 4)]
    public void AStepsGradientIsTheWeightedMeanOfItsLevelsMaskedGradients(NestedLevelSampling sampling, int passes)
    {
        var network = Mlp();
        var run = new Run(network, Options(LayerAllocation.Uniform, sampling), totalSteps: 80);
        for (long t = 0; t < 40; t++)
        {
            run.Step(t);
            Assert.Equal(t < 20 ? 1 : passes, run.Controller.Passes); // until the update at step 20 (the one at 10 is at sparsity 0) every level is the dense network
        }

        var layers = PrunableLayer.From(network);
        float[][] before = [.. network.Parameters.Select(p => (float[])p.Value.Clone())];
        var levelsSeen = new List<int>();
        var expected = network.Parameters.Select(p => new double[p.Length]).ToArray();
        run.Passes(40, pass =>
        {
            // Each pass runs at one level: the weights are the step's weights masked to it.
            run.Controller.Finish();
            int level = Enumerable.Range(0, Levels.Length).Single(i =>
                layers.All(l => Enumerable.Range(0, l.Count).All(w => l.Weight.Value[w] == (l.Weight.LevelCodes![w] > i ? before[network.Parameters.ToList().IndexOf(l.Weight)][w] : 0f))));
            levelsSeen.Add(level);
            for (int p = 0; p < network.Parameters.Count; p++)
            {
                var parameter = network.Parameters[p];
                double weight = level == Levels.Length - 1 ? 2 : 1; // the sparsest level counts twice (SparsestLevelWeight)
                for (int w = 0; w < parameter.Length; w++)
                    expected[p][w] += parameter.LevelCodes is { } codes && codes[w] <= level ? 0 : weight * parameter.Gradient[w];
            }
        });
        Assert.Equal(passes, levelsSeen.Count);
        Assert.Equal(0, levelsSeen[0]);
        Assert.Equal(Levels.Length - 1, levelsSeen[sampling == NestedLevelSampling.All ? ^1 : 2]);
        Assert.Equal(levelsSeen.Distinct().Count(), levelsSeen.Count);
        for (int p = 0; p < network.Parameters.Count; p++)
        {
            Assert.Equal(before[p], network.Parameters[p].Value); // the weights are the step's again
            for (int w = 0; w < expected[p].Length; w++)
                Assert.Equal(expected[p][w] / (passes + 1), network.Parameters[p].Gradient[w], 1e-6);
        }
    }

    [Theory]
    [InlineData(4, new[] { 0.5, 0.75 }, "mlp")]
    [InlineData(8, new[] { 0.5, 0.75, 0.875 }, "mlp")]
    [InlineData(4, new[] { 0.5, 0.75 }, "ragged")]
    [InlineData(8, new[] { 0.5, 0.75, 0.875 }, "conv")]
    public void NMLevelsNestAndKeepTheirCountOfEveryGroupAfterEveryUpdate(int m, double[] levels, string kind)
    {
        // "ragged": 18 inputs (groups of 4, 4, 4, 4, 2); "conv": the first convolution's 4 input channels are one ragged group of 8.
        var network = kind switch
        {
            "conv" => SmallConv(seed: 3),
            "ragged" => Build([18], 3, Layers.Dense(12), Layers.ReLU(), Layers.Dense(4)),
            _ => Mlp(),
        };
        var options = new NestedSparsityOptions { Levels = levels, NMGroupSize = m, Schedule = PruningSchedule.Gradual(beginStep: 10, endStep: 60, frequency: 10) };
        var run = new Run(network, options, totalSteps: 80);
        var layers = PrunableLayer.From(network);
        var gone = layers.Select(l => new bool[l.Count]).ToArray();
        for (long t = 0; t < 80; t++)
        {
            run.Step(t);
            long step = t + 1;
            run.Controller.Finish();
            if (!options.Schedule.IsPruningStep(step) || step > 60) continue;
            for (int l = 0; l < layers.Count; l++)
            {
                var layer = layers[l];
                byte[] codes = layer.Weight.LevelCodes!;
                for (int i = 0; i < levels.Length; i++)
                {
                    // Progressive N:M: M − ⌊s(t)·M⌋ of a group at the schedule's sparsity toward the level, never under its N.
                    int k = Math.Max(m - (int)Math.Floor(options.Schedule.SparsityAt(step, levels[i]) * m + 1e-9), (int)Math.Round((1 - levels[i]) * m));
                    if (step == 60) Assert.Equal((int)Math.Round((1 - levels[i]) * m), k);
                    for (int start = 0; start < layer.Count; start += layer.InChannels)
                        for (int g = start; g < start + layer.InChannels; g += m)
                        {
                            var group = Enumerable.Range(g, Math.Min(m, start + layer.InChannels - g)).ToArray();
                            var kept = group.Where(w => codes[w] > i).ToArray();
                            Assert.Equal((k * group.Length + m - 1) / m, kept.Length);
                            if (i > 0) Assert.All(kept, w => Assert.True(codes[w] > i - 1));
                            var pruned = group.Where(w => codes[w] <= i && codes[w] > 0).ToArray();
                            if (kept.Length > 0 && pruned.Length > 0)
                                Assert.True(kept.Min(w => Math.Abs(layer.Weight.Value[w])) >= pruned.Max(w => Math.Abs(layer.Weight.Value[w])), $"layer {layer.Name}, group at {g}, level {i}");
                        }
                }
                for (int w = 0; w < layer.Count; w++)
                {
                    Assert.Equal(codes[w] > 0 ? 1f : 0f, layer.Weight.Mask![w]);
                    if (codes[w] == 0) Assert.Equal(0f, layer.Weight.Value[w]);
                    Assert.False(gone[l][w] && codes[w] > 0, $"layer {layer.Name}: weight {w} came back");
                    gone[l][w] |= codes[w] == 0;
                }
            }
        }
    }

    [Fact]
    public void TheSandwichDrawsEveryMiddleLevel()
    {
        var run = new Run(Mlp(), Options(LayerAllocation.Uniform), totalSteps: 80);
        for (long t = 0; t < 60; t++) run.Step(t);
        var middles = new HashSet<int>();
        var layer = PrunableLayer.From(run.Network)[0];
        for (long t = 60; t < 100; t++)
        {
            run.Controller.BeforeForward(t);
            Assert.Equal(3, run.Controller.Passes);
            var kept = new List<long>();
            for (int pass = 0; pass < 3; pass++)
            {
                run.Controller.BeforePass(t, pass);
                kept.Add(layer.Weight.Value.LongCount(v => v != 0));
            }
            middles.Add(Array.IndexOf(Levels.Select(l => (long)(layer.Count - MaskSelection.PrunedCount(l, layer.Count))).ToArray(), kept[1]));
            Assert.Equal(layer.Count - MaskSelection.PrunedCount(Levels[0], layer.Count), kept[0]);
            Assert.Equal(layer.Count - MaskSelection.PrunedCount(Levels[^1], layer.Count), kept[2]);
            for (int pass = 0; pass < 3; pass++) run.Controller.AfterPass(t, pass);
        }
        Assert.Equal([1, 2], middles.Order());
    }

    private static NeuralNetworkMulticlassModel TrainNested(MLContext ml, IDataView data, params LayerDefinition[] layers) =>
        TrainNested(ml, data, new NestedSparsityOptions { Levels = [.. Levels] }, layers);

    private static NeuralNetworkMulticlassModel TrainNested(MLContext ml, IDataView data, NestedSparsityOptions sparsity, params LayerDefinition[] layers)
    {
        sparsity.Schedule = PruningSchedule.GradualOverTraining(0.1, 0.5, frequency: 5);
        return ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = layers,
            Epochs = 15,
            BatchSize = 32,
            Seed = 2,
            NumberOfThreads = 1,
            Sparsity = sparsity,
        }).Fit(data);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void EachLevelPredictsAsTheMaskedDenseForward(int nmGroupSize)
    {
        var ml = new MLContext(seed: 1);
        var data = MaskedTrainingTests.SyntheticData(512);
        double[] levels = nmGroupSize == 0 ? Levels : [0.5, 0.75];
        var model = TrainNested(ml, data, new NestedSparsityOptions { Levels = [.. levels], NMGroupSize = nmGroupSize }, Layers.Dense(32), Layers.ReLU(), Layers.Dense(16), Layers.ReLU());
        Assert.Equal(levels, model.SparsityLevels);
        Assert.Equal(0.5, model.SparsityLevel);
        var rows = Microsoft.ML.Sparsity.Data.DataViewReader.Read(data, "Features", null);
        foreach (double level in levels)
        {
            var atLevel = model.AtSparsityLevel(level);
            Assert.Equal(level, atLevel.SparsityLevel);
            var layers = PrunableLayer.From(model.Network);
            // Every layer's inputs (16, 32, 16) are whole groups of 4: N:M levels are exactly at their sparsity too.
            Assert.Equal(1 - (double)layers.Sum(l => l.Count - MaskSelection.PrunedCount(level, l.Count)) / layers.Sum(l => l.Count), atLevel.GetSparsityReport().Sparsity, 1e-12);
            // N:M levels are N:M to the prediction formats (2:4, then 1:4).
            if (nmGroupSize > 0) Assert.All(atLevel.WeightFormats, f => Assert.Equal($"{(int)Math.Round((1 - level) * 4)}:4", f.Pattern));
            float[] scores = ScoredRows.Read(atLevel.Transform(data)).Scores;
            // The reference: the model's own (densest) weights with the level's pruned weights zeroed, one plain forward.
            var reference = model.Network.Clone(Pool);
            int index = Array.IndexOf(levels, level);
            foreach (var p in reference.Parameters)
                if (p.LevelCodes is { } codes)
                    for (int w = 0; w < p.Length; w++) if (codes[w] <= index) p.Value[w] = 0;
            reference.EnsureCapacity(rows.Count);
            rows.Features.AsSpan(0, rows.Count * 16).CopyTo(reference.Input);
            float[] logits = reference.Forward(rows.Count, training: false);
            for (int r = 0; r < rows.Count; r++)
            {
                var row = logits.AsSpan(r * 4, 4);
                float max = System.Numerics.Tensors.TensorPrimitives.Max(row), sum = 0;
                for (int c = 0; c < 4; c++) sum += MathF.Exp(row[c] - max);
                for (int c = 0; c < 4; c++) Assert.Equal(MathF.Exp(row[c] - max) / sum, scores[r * 4 + c], 1e-5);
            }
        }
        // The levels are trained: at 0.75 (16 of the output layer's 64 weights) the model beats chance (25%) by far (measured 88%).
        var metrics = ml.MulticlassClassification.Evaluate(model.AtSparsityLevel(0.75).Transform(data));
        Assert.True(metrics.MicroAccuracy > 0.8, $"accuracy at 0.75: {metrics.MicroAccuracy}");
    }

    [Fact]
    public void TheFileKeepsEveryLevelInLittleMoreThanTheDensestLevelsBytes()
    {
        var ml = new MLContext(seed: 1);
        var data = MaskedTrainingTests.SyntheticData(512);
        var model = TrainNested(ml, data, Layers.Dense(64), Layers.ReLU(), Layers.Dense(32), Layers.ReLU()).AtSparsityLevel(0.9);
        using var nested = new MemoryStream();
        ModelFile.Save(model, nested);
        // The densest level on its own: the same weights and mask, no levels.
        var densest = model.Network.Clone(Pool);
        densest.SparsityLevels = null;
        foreach (var p in densest.Parameters) p.LevelCodes = null;
        var single = new NeuralNetworkMulticlassModel(densest, 4, null, "Features", [], model.Training);
        using var alone = new MemoryStream();
        ModelFile.Save(single, alone);
        Assert.InRange((double)nested.Length / alone.Length, 1.0, 1.15);

        nested.Position = 0;
        var loaded = Assert.IsType<NeuralNetworkMulticlassModel>(ModelFile.Load(nested, Pool));
        Assert.Equal(Levels, loaded.SparsityLevels);
        Assert.Equal(0.9, loaded.SparsityLevel);
        foreach (double level in Levels)
            Assert.Equal(ScoredRows.Read(model.AtSparsityLevel(level).Transform(data)).Scores, ScoredRows.Read(loaded.AtSparsityLevel(level).Transform(data)).Scores);
        for (int p = 0; p < model.Network.Parameters.Count; p++)
            Assert.Equal(model.Network.Parameters[p].LevelCodes, loaded.Network.Parameters[p].LevelCodes);
    }

    [Fact]
    public void OnnxExportOfALevelPredictsAsThatLevelInOnnxRuntime()
    {
        var ml = new MLContext(seed: 1);
        var data = MaskedTrainingTests.SyntheticData(256);
        var model = TrainNested(ml, data, Layers.Dense(32), Layers.ReLU());
        var rows = Microsoft.ML.Sparsity.Data.DataViewReader.Read(data, "Features", null);
        string path = Path.Combine(Path.GetTempPath(), $"nested-{Guid.NewGuid():N}.onnx");
        try
        {
            foreach (double level in new[] { 0.5, 0.96 })
            {
                var atLevel = model.AtSparsityLevel(level);
                ml.Sparsity().ConvertToOnnx(atLevel, path);
                var onnx = Export.OnnxRuntimeRunner.Run(new Export.OnnxJob(path, rows.Features[..(64 * 16)], [64, 16]));
                float[] scores = ScoredRows.Read(atLevel.Transform(ml.Data.TakeRows(data, 64))).Scores;
                double[] probabilities = onnx.Outputs[Microsoft.ML.Sparsity.Export.OnnxExporter.ProbabilitiesName].Data;
                for (int i = 0; i < scores.Length; i++) Assert.Equal(scores[i], probabilities[i], 1e-5);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BadLevelsAreRefusedNamingTheLevel()
    {
        var ml = new MLContext(seed: 1);
        var notIncreasing = Assert.Throws<ArgumentException>(() => ml.Sparsity().NestedSparsity([0.5, 0.9, 0.8]));
        Assert.Equal("Levels", notIncreasing.ParamName);
        Assert.Contains("level 2 (0.8)", notIncreasing.Message);
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sparsity().NestedSparsity([0.5, 1.0]));
        Assert.Contains("Level 1 (1)", outside.Message);
        Assert.Throws<ArgumentException>(() => ml.Sparsity().NestedSparsity([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sparsity().NestedSparsity([-0.1, 0.5]));
        var notNM = Assert.Throws<ArgumentException>(() => ml.Sparsity().NestedSparsity([0.5, 0.8], nmGroupSize: 4));
        Assert.Equal("Levels", notNM.ParamName);
        Assert.Contains("Level 1 (0.8) is not an N:4 sparsity", notNM.Message);
        Assert.Equal("Allocation", Assert.Throws<ArgumentException>(() => ml.Sparsity().NestedSparsity([0.5, 0.75], LayerAllocation.ErdosRenyiKernel, nmGroupSize: 4)).ParamName);
        Assert.Equal("NMGroupSize", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sparsity().NestedSparsity([0.5], nmGroupSize: 1)).ParamName);

        var data = MaskedTrainingTests.SyntheticData(128);
        var model = TrainNested(ml, data, Layers.Dense(8), Layers.ReLU());
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => model.AtSparsityLevel(0.8));
        Assert.Equal("level", missing.ParamName);
        Assert.Contains("[0.5, 0.75, 0.9, 0.96]", missing.Message);
        var plain = ml.MulticlassClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(8), Layers.ReLU()], epochs: 1).Fit(data);
        Assert.Empty(plain.SparsityLevels);
        Assert.Null(plain.SparsityLevel);
        Assert.Contains("one sparsity level", Assert.Throws<ArgumentOutOfRangeException>(() => plain.AtSparsityLevel(0.5)).Message);
    }

    [Fact]
    public void AFileWithACodeBeyondItsLevelsIsRefusedNamingTheTensor()
    {
        var ml = new MLContext(seed: 1);
        var model = TrainNested(ml, MaskedTrainingTests.SyntheticData(128), Layers.Dense(8), Layers.ReLU());
        using var stream = new MemoryStream();
        ModelFile.Save(model, stream);
        // 4 levels' codes take 2 bits a value, as 3 levels' would: claim 3 where some codes say 4.
        var entries = HostileFiles.ReadZip(stream.ToArray());
        var manifest = HostileFiles.Json(entries, ModelFile.ManifestEntry);
        manifest["transformers"]![0]!["sparsityLevels"] = new System.Text.Json.Nodes.JsonArray(0.5, 0.75, 0.9);
        HostileFiles.SetJsonAndChecksum(entries, ModelFile.ManifestEntry, manifest);
        var error = Assert.Throws<ModelFormatException>(() => ModelFile.Load(new MemoryStream(HostileFiles.WriteZip(entries)), Pool));
        Assert.Contains("levels/", error.Message);
        Assert.Contains("the model has 3", error.Message);
    }
}
