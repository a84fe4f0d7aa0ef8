using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.NestedSparsity;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Tests.Masks;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.NestedSparsity;

/// <summary>The engine that predicts a nested model at a level chosen per call, per engine or for a latency budget.</summary>
public sealed class SparsityLevelEngineTests
{
    private static readonly double[] Levels = [0.5, 0.75, 0.9, 0.96];

    public sealed class Example
    {
        [VectorType(16)]
        public float[] Raw { get; set; } = new float[16];
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = [];
        public uint PredictedLabel { get; set; }
    }

    private static readonly MLContext Ml = new(seed: 1);

    /// <summary>A pipeline: a column copy ("Raw" to "Features"), then a nested model.</summary>
    private static readonly Lazy<(TransformerChain<ITransformer> Pipeline, NeuralNetworkMulticlassModel Model)> Trained = new(() =>
    {
        var data = MaskedTrainingTests.SyntheticData(512);
        var model = Ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(32), Layers.ReLU()],
            Epochs = 3,
            Seed = 2,
            NumberOfThreads = 1,
            Sparsity = new NestedSparsityOptions { Levels = [.. Levels], Schedule = PruningSchedule.GradualOverTraining(0.1, 0.5, frequency: 5) },
        }).Fit(data);
        var raw = Ml.Transforms.CopyColumns("Raw", "Features").Fit(data).Transform(data);
        return (new TransformerChain<ITransformer>(Ml.Transforms.CopyColumns("Features", "Raw").Fit(raw), model), model);
    });

    private static Example[] Examples(int count)
    {
        var random = new Random(8);
        return [.. Enumerable.Range(0, count).Select(_ => new Example { Raw = [.. Enumerable.Range(0, 16).Select(_ => random.NextSingle() * 2 - 1)] })];
    }

    [Fact]
    public void EveryLevelPredictsAsTheModelAtThatLevel()
    {
        var (pipeline, model) = Trained.Value;
        var engine = Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(pipeline, new SparsityLevelEngineOptions { Level = 0.9 });
        Assert.Equal(Levels, engine.Levels);
        Assert.Equal(0.9, engine.Level);
        var prediction = new Prediction();
        foreach (double level in Levels)
        {
            // Not disposed: an ML.NET engine disposes the chain it was made from, and this one holds the shared pipeline's first transformer.
            var reference = Ml.Model.CreatePredictionEngine<Example, Prediction>(new TransformerChain<ITransformer>(pipeline.First(), model.AtSparsityLevel(level)));
            foreach (var example in Examples(20))
            {
                engine.Predict(example, ref prediction, level);
                Assert.Equal(reference.Predict(example).Score, prediction.Score);
                if (level == 0.9) Assert.Equal(reference.Predict(example).Score, engine.Predict(example).Score);
            }
        }
    }

    [Fact]
    public void SwitchingLevelAllocatesNothing()
    {
        var (pipeline, _) = Trained.Value;
        var engine = Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(pipeline);
        var examples = Examples(8);
        var prediction = new Prediction();
        for (int round = 0; round < 3; round++)
            foreach (double level in Levels)
                foreach (var example in examples) engine.Predict(example, ref prediction, level);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int round = 0; round < 25; round++)
            for (int i = 0; i < examples.Length; i++)
                engine.Predict(examples[i], ref prediction, Levels[(round + i) % Levels.Length]);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void ABudgetPicksTheDensestLevelThatFitsOrTheSparsestAndSaysSo()
    {
        var (pipeline, _) = Trained.Value;
        var example = Examples(1)[0];
        var roomy = Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(pipeline, new SparsityLevelEngineOptions { LatencyBudget = TimeSpan.FromSeconds(1), WarmUpTime = TimeSpan.FromMilliseconds(50) });
        Assert.Empty(roomy.WarmUpLatencies);
        roomy.Predict(example);
        Assert.Equal(Levels.Length, roomy.WarmUpLatencies.Count);
        Assert.All(roomy.WarmUpLatencies, t => Assert.InRange(t, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(1)));
        Assert.Equal(0.5, roomy.Level);
        Assert.True(roomy.WithinBudget);

        var tight = Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(pipeline, new SparsityLevelEngineOptions { LatencyBudget = TimeSpan.FromTicks(1), WarmUpTime = TimeSpan.FromMilliseconds(50) });
        tight.WarmUp(example);
        Assert.Equal(0.96, tight.Level);
        Assert.False(tight.WithinBudget);
    }

    [Fact]
    public void BadInputIsRefusedNamingTheLevelOrModel()
    {
        var (pipeline, _) = Trained.Value;
        var plain = Ml.MulticlassClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(8), Layers.ReLU()], epochs: 1).Fit(MaskedTrainingTests.SyntheticData(64));
        Assert.Equal("model", Assert.Throws<ArgumentException>(() => Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(plain)).ParamName);
        var level = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(pipeline, new SparsityLevelEngineOptions { Level = 0.8 }));
        Assert.Contains("no sparsity level 0.8; its levels are [0.5, 0.75, 0.9, 0.96]", level.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(pipeline, new SparsityLevelEngineOptions { LatencyBudget = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(pipeline, new SparsityLevelEngineOptions { WarmUpTime = TimeSpan.Zero }));
        var engine = Ml.Sparsity().CreatePredictionEngine<Example, Prediction>(pipeline);
        var prediction = new Prediction();
        Assert.Equal("level", Assert.Throws<ArgumentOutOfRangeException>(() => engine.Predict(Examples(1)[0], ref prediction, 0.99)).ParamName);
    }
}
