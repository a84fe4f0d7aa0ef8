using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.LotteryTickets;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Tests.Training;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.LotteryTickets;

/// <summary>Iterative magnitude pruning: exact densities, rewinding, controls, the ticket artifact.</summary>
public sealed class LotteryTicketTests
{
    private static readonly Dataset Data = TrainingData.Blobs(288, features: 12, classes: 3);

    /// <summary>12 → 16 → 8 → 3 with Adam; 264 training examples at batch 24 make 11 steps per epoch.</summary>
    internal static IterativeMagnitudePruningOptions Small(int levels = 2, int epochs = 2) => new()
    {
        Training = new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(16), Layers.ReLU(), Layers.Dense(8), Layers.ReLU()],
            Epochs = epochs,
            BatchSize = 24,
            Optimizer = new AdamOptimizerOptions { LearningRate = 0.01f },
            LearningRateSchedule = LearningRateSchedule.Cosine(0.1f),
            ValidationFraction = 1f / 12,
            Seed = 5,
            NumberOfThreads = 1,
        },
        Levels = levels,
        PruningRate = 0.3,
        EvaluationInterval = 3,
    };

    internal static LotteryTicketResult Run(IterativeMagnitudePruningOptions options, Dataset? test = null) =>
        new MLContext(seed: 1).Sparsity().LotteryTicket(options).Run(Data.AsDataView(), (test ?? Data).AsDataView());

    private static long Kept(float[]? mask, int length) => mask?.LongCount(m => m != 0) ?? length;

    [Fact]
    public void PerLayerDensitiesFollowTheRateExactlyWithTheOutputLayerAtHalfRate()
    {
        var options = Small(levels: 4);
        var result = Run(options);
        var layers = PrunableLayer.From(result.Model.Network);
        Assert.Equal([16 * 12, 8 * 16, 3 * 8], layers.Select(l => l.Count));
        for (int l = 0; l < layers.Count; l++)
        {
            double rate = l == layers.Count - 1 ? 0.15 : 0.3;
            Assert.Equal((long)Math.Round(layers[l].Count * Math.Pow(1 - rate, 4), MidpointRounding.AwayFromZero), Kept(layers[l].Weight.Mask, layers[l].Count));
            Assert.DoesNotContain(layers[l].Weight.Value.Where((w, i) => layers[l].Weight.Mask![i] == 0), w => w != 0);
        }
        // Every level's fraction remaining is Σ round(n·(1 − p)^r) / N.
        foreach (var level in result.Levels)
        {
            double expected = layers.Sum(l => Math.Round(l.Count * Math.Pow(1 - (l.Index == 2 ? 0.15 : 0.3), level.Level), MidpointRounding.AwayFromZero)) / layers.Sum(l => l.Count);
            Assert.Equal(expected, level.WeightsRemaining, 12);
        }
        Assert.Equal(Enumerable.Range(0, 5), result.Levels.Select(l => l.Level));
        Assert.Equal(4, result.Ticket.Level);
        Assert.Equal(result.Levels[^1].WeightsRemaining, result.Ticket.WeightsRemaining);
    }

    [Fact]
    public void PerLayerModeCanLeaveTheOutputLayerDense()
    {
        var network = Masks.SparsityTestNetworks.Build([12], 3, Layers.Dense(16), Layers.ReLU(), Layers.Dense(8), Layers.ReLU(), Layers.Dense(3));
        var options = new IterativeMagnitudePruningOptions { ExcludeOutputLayer = true, PruningRate = 0.2 };
        var pruned = TicketMasks.Pruned(PrunableLayer.From(network), options);
        var masks = TicketMasks.Magnitude(pruned, options, 2);
        Assert.Equal([2, 2], new[] { pruned.Count, masks.Length });
        // Both remaining layers at the full rate: round(192·0.64) = 123, round(128·0.64) = 82.
        Assert.Equal([123L, 82L], masks.Select(m => m.LongCount(v => v != 0)));
    }

    [Fact]
    public void GlobalModeKeepsTheTotalWithOneThresholdAndCanLeaveTheOutputLayerDense()
    {
        var network = Masks.SparsityTestNetworks.Build([12], 3, Layers.Dense(16), Layers.ReLU(), Layers.Dense(8), Layers.ReLU(), Layers.Dense(3));
        var options = new IterativeMagnitudePruningOptions { Global = true, ExcludeOutputLayer = true, PruningRate = 0.2 };
        var all = PrunableLayer.From(network);
        var pruned = TicketMasks.Pruned(all, options);
        Assert.Equal(2, pruned.Count);
        for (int level = 1; level <= 3; level++)
        {
            var masks = TicketMasks.Magnitude(pruned, options, level);
            long total = pruned.Sum(l => (long)l.Count);
            Assert.Equal((long)Math.Round(total * Math.Pow(0.8, level), MidpointRounding.AwayFromZero), masks.Sum(m => m.LongCount(v => v != 0)));
            var kept = pruned.SelectMany((l, i) => l.Weight.Value.Where((_, j) => masks[i][j] != 0)).Select(MathF.Abs).ToArray();
            var removed = pruned.SelectMany((l, i) => l.Weight.Value.Where((_, j) => masks[i][j] == 0)).Select(MathF.Abs).ToArray();
            Assert.True(kept.Min() >= removed.Max(), "one threshold: every kept |w| is at least every pruned |w|");
            for (int l = 0; l < pruned.Count; l++) pruned[l].ApplyMask(masks[l]);
        }
        // A run: the output layer has no mask at all.
        var run = Run(new IterativeMagnitudePruningOptions { Training = Small().Training, Levels = 2, Global = true, ExcludeOutputLayer = true, PruningRate = 0.3 });
        var layers = PrunableLayer.From(run.Model.Network);
        Assert.Null(layers[^1].Weight.Mask);
        long prunable = layers[0].Count + layers[1].Count;
        Assert.Equal((long)Math.Round(prunable * 0.49, MidpointRounding.AwayFromZero), Kept(layers[0].Weight.Mask, 0) + Kept(layers[1].Weight.Mask, 0));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(7L)]
    [InlineData(15L)]
    public void RewindingWithAnAllOnesMaskReproducesTheOriginalRunExactly(long rewindStep)
    {
        var dense = Run(Small(levels: 0));
        var options = Small(levels: 1);
        options.PruningRate = 1e-9;   // keeps round(n·(1 − 1e-9)) = n weights: an all-ones mask
        options.Reset = rewindStep == 0 ? LotteryTicketReset.InitialWeights : LotteryTicketReset.WeightRewinding;
        options.RewindStep = rewindStep;
        var rewound = Run(options);
        Assert.Equal(1.0, rewound.Levels[^1].WeightsRemaining);
        AssertSameWeights(dense.Model, rewound.Model);
        Assert.Equal(dense.Levels[0] with { Seconds = 0 }, rewound.Levels[1] with { Level = 0, Seconds = 0 });
    }

    [Fact]
    public void ControlsKeepTheTicketsDensitiesAndDifferFromIt()
    {
        var options = Small(levels: 2);
        options.Controls = LotteryTicketControls.All;
        var result = Run(options);
        Assert.Equal(
            [(0, LotteryTicketVariant.Ticket), (1, LotteryTicketVariant.RandomReinitialization), (1, LotteryTicketVariant.RandomMask), (1, LotteryTicketVariant.Ticket),
             (2, LotteryTicketVariant.RandomReinitialization), (2, LotteryTicketVariant.RandomMask), (2, LotteryTicketVariant.Ticket)],
            result.Levels.Select(l => (l.Level, l.Variant)));
        foreach (var level in result.Levels.GroupBy(l => l.Level))
            Assert.Single(level.Select(l => l.WeightsRemaining).Distinct());
        // The random mask has the ticket's per-layer counts but other positions.
        var ticketMasks = new[] { Enumerable.Repeat(1f, 10).Concat(Enumerable.Repeat(0f, 90)).ToArray() };
        var random = TicketMasks.Random(ticketMasks, seed: 3, level: 1);
        Assert.Equal(10, random[0].Count(m => m != 0));
        Assert.NotEqual(ticketMasks[0], random[0]);
        Assert.Equal(random[0], TicketMasks.Random(ticketMasks, seed: 3, level: 1)[0]);
    }

    [Theory]
    [InlineData(LotteryTicketReset.LearningRateRewinding)]
    [InlineData(LotteryTicketReset.FineTuning)]
    public void LearningRateRewindingAndFineTuningRetrainTheTrainedWeightsWithAFreshOptimiser(LotteryTicketReset reset)
    {
        var dense = Run(Small(levels: 0));
        var options = Small(levels: 1);
        options.PruningRate = 1e-9;   // an all-ones mask: level 1 is plain retraining of the level-0 weights
        options.Reset = reset;
        var result = Run(options);
        Assert.Equal(dense.Levels[0] with { Seconds = 0 }, result.Levels[0] with { Seconds = 0 });
        // The same retraining through the trainer: from the trained weights, a fresh optimiser, the schedule from step 0
        // (learning-rate rewinding) or the schedule's final rate throughout (fine-tuning); same split and data order.
        var training = Small().Training;
        if (reset == LotteryTicketReset.FineTuning)
        {
            training.Optimizer.LearningRate *= training.LearningRateSchedule.Factor(21, 11, 22);
            training.LearningRateSchedule = LearningRateSchedule.Constant();
        }
        var ml = new MLContext(seed: 1);
        var retrained = ml.MulticlassClassification.Trainers.NeuralNetwork(training).Fit(Data.AsDataView(), dense.Model);
        AssertSameWeights(retrained, result.Model);
        Assert.Equal(reset, result.Ticket.Reset);
    }

    [Fact]
    public void TheTicketSavesLoadsAndTrainsOnAFreshModelOfTheSameArchitecture()
    {
        var options = Small(levels: 2);
        var result = Run(options);
        string path = Path.Combine(Path.GetTempPath(), $"ticket-{Guid.NewGuid():N}.zip");
        try
        {
            result.Ticket.Save(path);
            var ml = new MLContext(seed: 1);
            var ticket = ml.Sparsity().LoadLotteryTicket(path);
            Assert.Equal(2, ticket.Level);
            Assert.Equal(result.Ticket.WeightsRemaining, ticket.WeightsRemaining);
            var start = ticket.Start.Network;
            var original = result.Ticket.Start.Network;
            for (int i = 0; i < start.StateArrays.Count; i++) Assert.Equal(original.StateArrays[i], start.StateArrays[i]);
            // The starting weights are θ0 under the mask: equal to the level-0 network's initial weights where kept.
            var training = options.Training;
            var theta0 = new SequentialNetwork([.. training.Layers, new DenseDefinition(3) { Name = "output" }], [12],
                new LayerBuildContext(Microsoft.ML.Sparsity.Engine.WorkerPool.Inline, training.WeightInitializer, training.Seed!.Value));
            var weight = PrunableLayer.From(start)[0].Weight;
            for (int i = 0; i < weight.Length; i++) Assert.Equal(weight.Mask![i] != 0 ? theta0.Parameters[0].Value[i] : 0f, weight.Value[i]);

            var trainerOptions = Small().Training;
            trainerOptions.Sparsity = ticket;
            trainerOptions.Epochs = 1;
            var model = ml.MulticlassClassification.Trainers.NeuralNetwork(trainerOptions).Fit(Data.AsDataView());
            var trained = PrunableLayer.From(model.Network);
            var ticketLayers = PrunableLayer.From(start);
            for (int l = 0; l < trained.Count; l++)
            {
                Assert.Equal(ticketLayers[l].Weight.Mask, trained[l].Weight.Mask);
                for (int i = 0; i < trained[l].Count; i++) if (trained[l].Weight.Mask![i] == 0) Assert.Equal(0f, trained[l].Weight.Value[i]);
            }
            Assert.NotEqual(ticketLayers[0].Weight.Value, trained[0].Weight.Value);

            // Another architecture: the message names the tensor.
            var other = Small().Training;
            other.Layers = [Layers.Dense(20), Layers.ReLU(), Layers.Dense(8), Layers.ReLU()];
            other.Sparsity = ticket;
            var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(other).Fit(Data.AsDataView()));
            Assert.Contains("dense0.weight", e.Message);

            // A model file (the package's own format, which tickets share) that is not a ticket.
            using (var stream = File.Create(path)) Microsoft.ML.Sparsity.Serialization.ModelFile.Save(model, stream);
            var notTicket = Assert.Throws<Microsoft.ML.Sparsity.Serialization.ModelFormatException>(() => ml.Sparsity().LoadLotteryTicket(path));
            Assert.Contains("not a lottery ticket", notTicket.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ResultsAreWrittenAsTableCsvJsonAndPlot()
    {
        var options = Small(levels: 2);
        options.Controls = LotteryTicketControls.All;
        var result = Run(options);
        string folder = Directory.CreateTempSubdirectory("imp-results").FullName;
        try
        {
            result.SaveCsv(Path.Combine(folder, "r.csv"));
            result.SaveJson(Path.Combine(folder, "r.json"));
            Microsoft.ML.Sparsity.Plots.LotteryTicketPlots.Save([result], Path.Combine(folder, "r.svg"));
            var csv = File.ReadAllLines(Path.Combine(folder, "r.csv"));
            Assert.Equal(1 + result.Levels.Count, csv.Length);
            Assert.StartsWith("seed,reset,rewindStep,level,variant,weightsRemaining", csv[0]);
            Assert.Equal(12, csv[1].Split(',').Length);
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "r.json")));
            Assert.Equal(result.Levels.Count, json.RootElement[0].GetProperty("levels").GetArrayLength());
            // The plot (ScottPlot's SVG): one legend entry per variant.
            var svg = System.Xml.Linq.XDocument.Load(Path.Combine(folder, "r.svg"));
            string[] texts = [.. svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim())];
            Assert.Contains("ticket", texts);
            Assert.Contains("random reinit", texts);
            Assert.Contains("random mask", texts);
            // The same plot from the saved JSON.
            Microsoft.ML.Sparsity.Plots.LotteryTicketPlots.SaveFromJson(Path.Combine(folder, "r.json"), Path.Combine(folder, "again.svg"));
            static string WithoutClipIds(string svg) => System.Text.RegularExpressions.Regex.Replace(svg, "cl_[0-9a-f]+", "cl_"); // SkiaSharp numbers clip paths per process
            Assert.Equal(WithoutClipIds(File.ReadAllText(Path.Combine(folder, "r.svg"))), WithoutClipIds(File.ReadAllText(Path.Combine(folder, "again.svg"))));
            foreach (string bad in new[] { "{\"seed\": 1}", "[null]", "[{\"seed\": 1}]" })
            {
                File.WriteAllText(Path.Combine(folder, "bad.json"), bad);
                Assert.Contains("bad.json", Assert.Throws<InvalidDataException>(() =>
                    Microsoft.ML.Sparsity.Plots.LotteryTicketPlots.SaveFromJson(Path.Combine(folder, "bad.json"), Path.Combine(folder, "bad.svg"))).Message);
            }
            var table = result.ToMarkdown().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3 + result.Levels.Count, table.Length);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void APruningRateOutsideZeroOneIsRejected(double rate)
    {
        var options = Small();
        options.PruningRate = rate;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Run(options));
        Assert.Equal(nameof(IterativeMagnitudePruningOptions.PruningRate), e.ParamName);
    }

    [Fact]
    public void ARewindStepBeyondTheTrainingLengthIsRejected()
    {
        var options = Small(epochs: 2);
        options.Reset = LotteryTicketReset.WeightRewinding;
        options.RewindStep = 22;   // 2 epochs × 11 steps
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Run(options));
        Assert.Equal(nameof(IterativeMagnitudePruningOptions.RewindStep), e.ParamName);
        Assert.Contains("22 steps", e.Message);
        options.Reset = LotteryTicketReset.LearningRateRewinding;
        options.RewindStep = 3;
        Assert.Equal(nameof(IterativeMagnitudePruningOptions.RewindStep), Assert.Throws<ArgumentException>(() => Run(options)).ParamName);
    }

    internal static void AssertSameWeights(NeuralNetworkMulticlassModel expected, NeuralNetworkMulticlassModel actual)
    {
        Assert.Equal(expected.Network.StateArrays.Count, actual.Network.StateArrays.Count);
        for (int i = 0; i < expected.Network.StateArrays.Count; i++)
            Assert.True(expected.Network.StateArrays[i].AsSpan().SequenceEqual(actual.Network.StateArrays[i]), $"tensor {i} differs");
    }
}
