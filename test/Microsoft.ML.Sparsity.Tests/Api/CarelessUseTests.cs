using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.NMSparsity;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Tests.Masks;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Api;

/// <summary>
/// Careless uses of the public API, as a new user makes them: each must be refused with a typed exception whose
/// message names what was wrong (the option, column, layer or value) and says what was expected. A case that throws
/// the wrong type or a message without those words fails.
/// </summary>
public sealed class CarelessUseTests
{
    public sealed record Case(string Name, Action<MLContext, IDataView> Act, Type Expected, string[] Mentions)
    {
        public override string ToString() => Name;
    }

    private static NeuralNetworkMulticlassTrainer.Options Small() => new()
    {
        Layers = [Layers.Dense(8), Layers.ReLU()],
        Epochs = 1,
        NumberOfThreads = 1,
    };

    private static void Fit(MLContext ml, IDataView data, Action<NeuralNetworkMulticlassTrainer.Options> change)
    {
        var options = Small();
        change(options);
        ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(data);
    }

    private static readonly Case[] Cases =
    [
        new("zero epochs", (ml, d) => Fit(ml, d, o => o.Epochs = 0), typeof(ArgumentOutOfRangeException), ["Epochs"]),
        new("zero batch", (ml, d) => Fit(ml, d, o => o.BatchSize = 0), typeof(ArgumentOutOfRangeException), ["BatchSize"]),
        new("zero threads", (ml, d) => Fit(ml, d, o => o.NumberOfThreads = 0), typeof(ArgumentOutOfRangeException), ["NumberOfThreads"]),
        new("negative learning rate", (ml, d) => Fit(ml, d, o => o.Optimizer = new SgdOptimizerOptions { LearningRate = -0.1f }), typeof(ArgumentOutOfRangeException), ["LearningRate"]),
        new("NaN learning rate", (ml, d) => Fit(ml, d, o => o.Optimizer = new SgdOptimizerOptions { LearningRate = float.NaN }), typeof(ArgumentOutOfRangeException), ["LearningRate"]),
        new("momentum of 1", (ml, d) => Fit(ml, d, o => o.Optimizer = new SgdOptimizerOptions { Momentum = 1f }), typeof(ArgumentOutOfRangeException), ["Momentum"]),
        new("Adam beta of 1", (ml, d) => Fit(ml, d, o => o.Optimizer = new AdamOptimizerOptions { Beta2 = 1f }), typeof(ArgumentOutOfRangeException), ["Beta2"]),
        new("validation fraction 1", (ml, d) => Fit(ml, d, o => o.ValidationFraction = 1f), typeof(ArgumentOutOfRangeException), ["ValidationFraction"]),
        new("patience without validation", (ml, d) => Fit(ml, d, o => o.EarlyStoppingPatience = 2), typeof(ArgumentException), ["EarlyStoppingPatience", "validation"]),
        new("no layers given (null)", (ml, d) => Fit(ml, d, o => o.Layers = null!), typeof(ArgumentNullException), ["Layers"]),
        new("a layer of 0 units", (ml, d) => Fit(ml, d, o => o.Layers = [Layers.Dense(0)]), typeof(ArgumentOutOfRangeException), ["units"]),
        new("dropout rate 1", (ml, d) => Fit(ml, d, o => o.Layers = [Layers.Dense(8), Layers.Dropout(1f)]), typeof(ArgumentOutOfRangeException), ["rate"]),
        new("convolution on a flat vector", (ml, d) => Fit(ml, d, o => o.Layers = [Layers.Conv2d(4, 3)]), typeof(ArgumentException), ["InputShape"]),
        new("input shape of the wrong size", (ml, d) => Fit(ml, d, o => o.InputShape = [5, 5, 1]), typeof(ArgumentException), ["InputShape", "16"]),
        new("missing feature column", (ml, d) => Fit(ml, d, o => o.FeatureColumnName = "Pixels"), typeof(ArgumentOutOfRangeException), ["Pixels"]),
        new("missing label column", (ml, d) => Fit(ml, d, o => o.LabelColumnName = "Class"), typeof(ArgumentOutOfRangeException), ["Class"]),
        new("label is not a key", (ml, d) => Fit(ml, ml.Data.LoadFromEnumerable(new[] { new FloatLabel(), new FloatLabel { Label = 1 } }), _ => { }), typeof(ArgumentOutOfRangeException), ["Label", "key"]),
        new("target sparsity 1.5", (ml, d) => Fit(ml, d, o => o.Sparsity = ml.Sparsity().GradualMagnitudePruning(1.5)), typeof(ArgumentOutOfRangeException), ["targetSparsity"]),
        new("target sparsity 1", (ml, d) => Fit(ml, d, o => o.Sparsity = new PruningOptions { TargetSparsity = 1 }), typeof(ArgumentOutOfRangeException), ["TargetSparsity"]),
        new("random pruning -0.1", (ml, d) => ml.Sparsity().RandomPruning(-0.1), typeof(ArgumentOutOfRangeException), ["targetSparsity"]),
        new("SET to sparsity 1", (ml, d) => ml.Sparsity().Set(1.0), typeof(ArgumentOutOfRangeException), ["TargetSparsity"]),
        new("RigL with a global allocation", (ml, d) => ml.Sparsity().RigL(0.9, LayerAllocation.Global), typeof(ArgumentException), ["global", "Allocation"]),
        new("GaP with 0 partitions", (ml, d) => ml.Sparsity().GrowAndPrune(partitions: 0), typeof(ArgumentOutOfRangeException), ["PartitionCount"]),
        new("GaP with more partitions than layers", (ml, d) => Fit(ml, d, o => o.Sparsity = ml.Sparsity().GrowAndPrune(partitions: 5)), typeof(ArgumentException), ["PartitionCount"]),
        new("N:M with N ≥ M", (ml, d) => ml.Sparsity().NMFromScratch(4, 4), typeof(ArgumentOutOfRangeException), ["n"]),
        new("N:M pattern 0:4", (ml, d) => SparsityPattern.NM(0, 4), typeof(ArgumentOutOfRangeException), ["n"]),
        new("block of 0 rows", (ml, d) => SparsityPattern.Block(0, 4), typeof(ArgumentOutOfRangeException), ["rows"]),
        new("sparsity for an unknown layer", (ml, d) => Fit(ml, d, o => o.Sparsity = new PruningOptions { LayerSparsity = { ["dense7"] = 0.5 } }), typeof(ArgumentException), ["dense7"]),
        new("excluded unknown layer", (ml, d) => Fit(ml, d, o => o.Sparsity = new PruningOptions { ExcludedLayers = { "conv9" } }), typeof(ArgumentException), ["conv9"]),
        // (N:M on a layer whose inputs M does not divide is no longer refused: the last group of each run is ragged.)
        new("blocks larger than a layer", (ml, d) => Fit(ml, d, o => { o.Layers = [Layers.Dense(8), Layers.ReLU()]; o.Sparsity = new PruningOptions { Pattern = SparsityPattern.Block(32, 32) }; }), typeof(ArgumentException), ["32"]),
        new("step schedule of 0 epochs", (ml, d) => LearningRateSchedule.Step(0), typeof(ArgumentOutOfRangeException), ["epochs"]),
        new("gradual schedule ending before it begins", (ml, d) => PruningSchedule.Gradual(100, 50), typeof(ArgumentOutOfRangeException), ["endStep"]),
        new("lottery ticket of -1 levels", (ml, d) => ml.Sparsity().LotteryTicket(levels: -1), typeof(ArgumentOutOfRangeException), ["levels"]),
        new("lottery ticket pruning rate 1", (ml, d) => ml.Sparsity().LotteryTicket(pruningRate: 1), typeof(ArgumentOutOfRangeException), ["pruningRate"]),
        new("frequency domain block 3", (ml, d) => ml.Transforms.ConvertToFrequencyDomain(blockSize: 3), typeof(ArgumentOutOfRangeException), ["blockSize"]),
        new("loading a model from a missing file", (ml, d) => ml.Sparsity().LoadModel("/nonexistent/model.zip", out _), typeof(FileNotFoundException), ["/nonexistent/model.zip"]),
        new("loading a model from an empty path", (ml, d) => ml.Sparsity().LoadModel("", out _), typeof(ArgumentException), ["filePath"]),
        new("loading a ticket from an empty path", (ml, d) => ml.Sparsity().LoadLotteryTicket(""), typeof(ArgumentException), ["filePath"]),
        new("ONNX into a missing folder", (ml, d) => ml.Sparsity().ConvertToOnnx(ml.MulticlassClassification.Trainers.NeuralNetwork(Small()).Fit(d), "/nonexistent/dir/m.onnx"), typeof(DirectoryNotFoundException), ["/nonexistent/dir"]),
        new("scoring data without the feature column", (ml, d) =>
            {
                var model = ml.MulticlassClassification.Trainers.NeuralNetwork(Small()).Fit(d);
                model.Transform(ml.Data.LoadFromEnumerable(new[] { new { Other = 1f } }));
            }, typeof(ArgumentOutOfRangeException), ["Features"]),
        new("scoring vectors of another size", (ml, d) =>
            {
                var model = ml.MulticlassClassification.Trainers.NeuralNetwork(Small()).Fit(d);
                model.Transform(ml.Data.LoadFromEnumerable(new[] { new Wide() }));
            }, typeof(ArgumentOutOfRangeException), ["Features", "16"]),
    ];

    private sealed class FloatLabel
    {
        [VectorType(16)]
        public float[] Features { get; set; } = new float[16];

        public float Label { get; set; }
    }

    private sealed class Wide
    {
        [VectorType(20)]
        public float[] Features { get; set; } = new float[20];
    }

    public static TheoryData<Case> All() => [.. Cases];

    [Theory]
    [MemberData(nameof(All))]
    public void IsRefusedWithATypedExceptionThatNamesTheCause(Case c)
    {
        var ml = new MLContext(seed: 1);
        var data = MaskedTrainingTests.SyntheticData(64);
        var e = Record.Exception(() => c.Act(ml, data));
        Assert.True(e is not null, $"{c.Name}: nothing was thrown.");
        Assert.True(c.Expected.IsInstanceOfType(e), $"{c.Name}: {e.GetType().Name} (expected {c.Expected.Name}): {e.Message}");
        foreach (string word in c.Mentions)
            Assert.True(e.Message.Contains(word, StringComparison.OrdinalIgnoreCase), $"{c.Name}: the message does not mention '{word}': {e.Message}");
    }
}
