using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Inference;

/// <summary>ML.NET's <c>PredictionEngine</c> over the package's transformer: it goes through the single-example path.</summary>
public sealed class PredictionEngineTests
{
    public sealed class Input
    {
        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    public sealed class ShortInput
    {
        [VectorType(783)]
        public float[] Features { get; set; } = [];
    }

    public sealed class Output
    {
        public float[]? Score { get; set; }
        public uint PredictedLabel;
    }

    public sealed class ColorInput
    {
        [VectorType(4)]
        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    public sealed class ColorOutput
    {
        public float[]? Score { get; set; }
        public string? PredictedLabel { get; set; }
    }

    private readonly MLContext _ml = new(seed: 1);

    private static float[][] Features(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, 784).Select(_ => random.NextSingle()).ToArray()).ToArray();
    }

    private static Dataset AsDataset(float[][] rows) => new(rows.SelectMany(r => r).ToArray(), [784], new float[rows.Length], classCount: 10);

    [Theory]
    [InlineData("dense")]
    [InlineData("90%")]
    [InlineData("2:4")]
    public void PredictionsEqualTransformsAndTheSingleExamplePath(string kind)
    {
        NeuralNetworkMulticlassModel model = WeightFormatTests.LeNetModel(
            kind == "dense" ? null : kind == "2:4" ? SparsityPattern.NM(2, 4) : SparsityPattern.Unstructured);
        var engine = _ml.Model.CreatePredictionEngine<Input, Output>(model);
        float[][] rows = Features(8, 3);
        var (transformed, transformedLabels) = ScoredRows.Transform(model, AsDataset(rows), 10);
        float[] expected = new float[10];
        for (int r = 0; r < rows.Length; r++)
        {
            Output output = engine.Predict(new Input { Features = rows[r] });
            int label = model.Predict(rows[r], expected);
            Assert.Equal(expected, output.Score);
            Assert.Equal((uint)label + 1, output.PredictedLabel);
            for (int c = 0; c < 10; c++)
                Assert.True(Math.Abs(transformed[r * 10 + c] - output.Score![c]) <= 1e-5f, $"row {r} class {c}: {output.Score[c]} vs {transformed[r * 10 + c]}");
            Assert.Equal(transformedLabels[r], output.PredictedLabel);
        }
    }

    [Fact]
    public void EightThreadsWithAnEngineEachGiveExactlyTheSequentialResults()
    {
        NeuralNetworkMulticlassModel model = WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9);
        Input[] inputs = Features(64, 5).Select(f => new Input { Features = f }).ToArray();
        var sequentialEngine = _ml.Model.CreatePredictionEngine<Input, Output>(model);
        Output[] sequential = inputs.Select(sequentialEngine.Predict).ToArray();

        const int Threads = 8, PerThread = 2_000;
        var engines = Enumerable.Range(0, Threads).Select(_ => _ml.Model.CreatePredictionEngine<Input, Output>(model)).ToArray();
        var failures = new int[Threads];
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            var output = new Output();
            for (int i = 0; i < PerThread; i++)
            {
                int row = (i * 7 + t * 13) % inputs.Length;
                engines[t].Predict(inputs[row], ref output);
                if (!output.Score!.AsSpan().SequenceEqual(sequential[row].Score) || output.PredictedLabel != sequential[row].PredictedLabel)
                    failures[t]++;
            }
        })).ToArray();
        foreach (Thread thread in threads)
            thread.Start();
        foreach (Thread thread in threads)
            thread.Join();

        Assert.All(failures, f => Assert.Equal(0, f));
    }

    [Fact]
    public void ModelPredictIsSafeForConcurrentCallers()
    {
        NeuralNetworkMulticlassModel model = WeightFormatTests.LeNetModel(SparsityPattern.NM(2, 4));
        float[][] inputs = Features(16, 6);
        float[][] expected = inputs.Select(i => { var s = new float[10]; model.Predict(i, s); return s; }).ToArray();
        int failures = 0;
        Parallel.For(0, 4000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var scores = new float[10];
            model.Predict(inputs[i % inputs.Length], scores);
            if (!scores.AsSpan().SequenceEqual(expected[i % inputs.Length]))
                Interlocked.Increment(ref failures);
        });
        Assert.Equal(0, failures);
    }

    [Fact]
    public void PredictedLabelIsAKeyThatMapsBackToTheClassNames()
    {
        string[] colors = ["red", "green", "blue"];
        var random = new Random(1);
        var rows = Enumerable.Range(0, 60).Select(i => new ColorInput
        {
            Label = colors[i % 3],
            Features = Enumerable.Range(0, 4).Select(f => (f == i % 3 ? 2f : 0f) + random.NextSingle()).ToArray(),
        }).ToArray();
        IDataView data = _ml.Data.LoadFromEnumerable(rows);
        var keyed = _ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(_ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options { Layers = [], Epochs = 2 }))
            .Fit(data);
        var toText = _ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(keyed.Transform(data));

        var keys = _ml.Model.CreatePredictionEngine<ColorInput, Output>(keyed);
        Output key = keys.Predict(rows[0]);
        Assert.InRange(key.PredictedLabel, 1u, 3u);
        Assert.Equal(1f, key.Score!.Sum(), 5);

        ColorOutput output = _ml.Model.CreatePredictionEngine<ColorInput, ColorOutput>(keyed.Append(toText)).Predict(rows[0]);
        Assert.Equal(colors[key.PredictedLabel - 1], output.PredictedLabel);
        Assert.Equal(key.Score, output.Score);
    }

    [Fact]
    public void NonFiniteFeaturesGiveNaNScoresAndAMissingLabel()
    {
        NeuralNetworkMulticlassModel model = WeightFormatTests.LeNetModel(SparsityPattern.Unstructured);
        var engine = _ml.Model.CreatePredictionEngine<Input, Output>(model);
        float[] features = Features(1, 2)[0];
        features[17] = float.NaN;
        Output nan = engine.Predict(new Input { Features = features });
        Assert.All(nan.Score!, s => Assert.True(float.IsNaN(s)));
        Assert.Equal(0u, nan.PredictedLabel);

        features[17] = 0f;
        features[700] = float.PositiveInfinity;
        Output infinite = engine.Predict(new Input { Features = features });
        Assert.All(infinite.Score!, s => Assert.True(float.IsNaN(s)));
        Assert.Equal(0u, infinite.PredictedLabel);

        // The engine stays usable: a finite example scores as before.
        float[] clean = Features(1, 2)[0];
        Assert.Equal(model.Predict(clean, new float[10]) + 1, (int)engine.Predict(new Input { Features = clean }).PredictedLabel);
    }

    [Fact]
    public void AFeatureVectorOfTheWrongSizeNamesTheLayerAndColumn()
    {
        NeuralNetworkMulticlassModel model = WeightFormatTests.LeNetModel(SparsityPattern.Unstructured);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.Model.CreatePredictionEngine<ShortInput, Output>(model));
        Assert.Contains("first layer 'dense0' expects 784 feature values", e.Message);
        Assert.Contains("column 'Features'", e.Message);
    }
}
