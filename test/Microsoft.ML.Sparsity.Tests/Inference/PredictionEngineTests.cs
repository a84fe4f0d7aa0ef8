using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Sparsity;
using Microsoft.ML.Sparsity.Tests.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Inference;

public sealed class PredictionEngineTests : IDisposable
{
    public sealed class Input
    {
        public float[] Features { get; set; } = [];
    }

    public sealed class Output
    {
        public float[]? Score { get; set; }
        public uint PredictedLabel;
    }

    public sealed class NamedOutput
    {
        public float[]? Probabilities;
        public string? Label { get; set; }
    }

    private readonly SparsityContext _context = new(seed: 1);

    public void Dispose() => _context.Dispose();

    private static Input[] Inputs(int count, int seed)
    {
        var data = TrainingData.Blobs(count, 784, classes: 10, seed: seed);
        return Enumerable.Range(0, count).Select(r => new Input { Features = data.GetFeatures(r).ToArray() }).ToArray();
    }

    [Theory]
    [InlineData("dense")]
    [InlineData("90%")]
    [InlineData("2:4")]
    public void TypedPredictionEqualsTheModelsScoresAndAllocatesNothingOnceWarm(string kind)
    {
        NeuralNetworkMulticlassModel model = WeightFormatTests.LeNetModel(
            kind == "dense" ? null : kind == "2:4" ? SparsityPattern.NM(2, 4) : SparsityPattern.Unstructured);
        var engine = _context.Model.CreatePredictionEngine<Input, Output>(model);
        Input[] inputs = Inputs(8, 3);
        float[] expected = new float[10];
        foreach (Input input in inputs)
        {
            Output output = engine.Predict(input);
            int label = model.Predict(input.Features, expected);
            Assert.Equal(expected, output.Score);
            Assert.Equal((uint)label, output.PredictedLabel);
        }

        var reused = new Output();
        engine.Predict(inputs[0], ref reused);
        float[] scores = reused.Score!;
        // The quietest of five windows is judged: the runtime (tiered compilation) may allocate on this thread once.
        long quietest = long.MaxValue;
        for (int window = 0; window < 5; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20; i++)
                engine.Predict(inputs[i % inputs.Length], ref reused);
            quietest = Math.Min(quietest, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, quietest);
        Assert.Same(scores, reused.Score);
    }

    [Fact]
    public void EightThreadsGiveExactlyTheSequentialResults()
    {
        NeuralNetworkMulticlassModel model = WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9);
        var pool = _context.Model.CreatePredictionEnginePool<Input, Output>(model);
        Input[] inputs = Inputs(64, 5);
        var engine = _context.Model.CreatePredictionEngine<Input, Output>(model);
        Output[] sequential = inputs.Select(engine.Predict).ToArray();

        const int Threads = 8, PerThread = 10_000;
        var failures = new int[Threads];
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            var output = new Output();
            for (int i = 0; i < PerThread; i++)
            {
                int row = (i * 7 + t * 13) % inputs.Length;
                pool.Predict(inputs[row], ref output);
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
        Input[] inputs = Inputs(16, 6);
        float[][] expected = inputs.Select(i => { var s = new float[10]; model.Predict(i.Features, s); return s; }).ToArray();
        int failures = 0;
        Parallel.For(0, 4000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var scores = new float[10];
            model.Predict(inputs[i % inputs.Length].Features, scores);
            if (!scores.AsSpan().SequenceEqual(expected[i % inputs.Length]))
                Interlocked.Increment(ref failures);
        });
        Assert.Equal(0, failures);
    }

    [Fact]
    public void ClassNamesAndCustomMembers()
    {
        var data = TrainingData.Blobs(60, 4, classes: 3, seed: 1, classNames: ["red", "green", "blue"]);
        var model = _context.MulticlassClassification.Trainers.NeuralNetwork(
            new Microsoft.ML.Sparsity.Training.NeuralNetworkMulticlassTrainer.Options { Layers = [], Epochs = 2 }).Fit(data);
        var options = new PredictionEngineOptions { ScoreColumnName = "Probabilities", PredictedLabelColumnName = "Label" };
        var engine = _context.Model.CreatePredictionEngine<Input, NamedOutput>(model, options);

        NamedOutput output = engine.Predict(new Input { Features = data.GetFeatures(0).ToArray() });

        Assert.Contains(output.Label, new[] { "red", "green", "blue" });
        Assert.Equal(1f, output.Probabilities!.Sum(), 5);
    }

    [Fact]
    public void BadInputNamesTheLayerOrColumn()
    {
        NeuralNetworkMulticlassModel model = WeightFormatTests.LeNetModel(SparsityPattern.Unstructured);
        var engine = _context.Model.CreatePredictionEngine<Input, Output>(model);

        var length = Assert.Throws<ArgumentException>(() => engine.Predict(new Input { Features = new float[783] }));
        Assert.Contains("first layer 'dense0' expects 784 feature values", length.Message);

        float[] features = Inputs(1, 2)[0].Features;
        features[17] = float.NaN;
        var nan = Assert.Throws<ArgumentException>(() => engine.Predict(new Input { Features = features }));
        Assert.Contains("Feature column 'Features', index 17, is NaN", nan.Message);
        features[17] = 0f;
        features[700] = float.PositiveInfinity;
        Assert.Contains("index 700", Assert.Throws<ArgumentException>(() => engine.Predict(new Input { Features = features })).Message);

        features[700] = float.NaN;
        var propagating = _context.Model.CreatePredictionEngine<Input, Output>(model, new PredictionEngineOptions { NonFiniteInput = NonFiniteInputHandling.Propagate });
        Assert.All(propagating.Predict(new Input { Features = features }).Score!, s => Assert.True(float.IsNaN(s)));

        var member = Assert.Throws<ArgumentException>(() =>
            _context.Model.CreatePredictionEngine<Input, Output>(model, new PredictionEngineOptions { ScoreColumnName = "Scores" }));
        Assert.Contains("no public field or property 'Scores'", member.Message);
        Assert.Throws<ArgumentException>(() => _context.Model.CreatePredictionEngine<Input, Input>(model));
    }

    [Fact]
    public void IndexOfNonFiniteFindsTheFirst()
    {
        float[] values = Enumerable.Range(0, 37).Select(i => (float)i).ToArray();
        Assert.Equal(-1, PredictionEngine<Input, Output>.IndexOfNonFinite(values));
        foreach (int at in new[] { 0, 7, 8, 35, 36 })
        {
            float[] copy = (float[])values.Clone();
            copy[at] = float.NegativeInfinity;
            Assert.Equal(at, PredictionEngine<Input, Output>.IndexOfNonFinite(copy));
        }
    }
}
