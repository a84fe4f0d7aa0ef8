using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// The model as ML.NET applications call it, against the engine's own paths in alternating rounds of one run:
/// ML.NET's <c>PredictionEngine</c> (one example through the transformer's row mapper) against the engine's
/// single-example <c>Predict</c>, and <c>Transform</c> read back with a cursor (Score and PredictedLabel) against the
/// engine's batched <c>Score</c> on the same rows.
/// </summary>
internal static class MLNetBench
{
    private const int Rounds = 5;
    private const int TransformRows = 10_000;

    private sealed class Example
    {
        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    private sealed class Prediction
    {
        public float[]? Score { get; set; }
        public uint PredictedLabel { get; set; }
    }

    /// <summary>Medians over alternating rounds: µs per call of ML.NET's PredictionEngine and of the engine's Predict.</summary>
    public static (double PredictionEngine, double Engine) SingleExample(MLContext ml, NeuralNetworkMulticlassModel model, double seconds)
    {
        if (model.Network.InputSize != 784)
            throw new ArgumentException($"The benchmark's examples have 784 features; the model takes {model.Network.InputSize}.", nameof(model));
        var engine = ml.Model.CreatePredictionEngine<Example, Prediction>(model);
        var random = new Random(7);
        var examples = Enumerable.Range(0, 16).Select(_ => new Example { Features = Enumerable.Range(0, 784).Select(_ => random.NextSingle()).ToArray() }).ToArray();
        var prediction = new Prediction();
        var scores = new float[model.ClassCount];
        int i = 0;
        void ThroughMLNet() => engine.Predict(examples[i++ & 15], ref prediction);
        void ThroughEngine() => model.Predict(examples[i++ & 15].Features, scores);

        // Half a second each to warm up (tiered compilation), then calls sized to a tenth of the time per round.
        int calls = Math.Max(1000, (int)(Calls(ThroughMLNet, 0.5) * seconds / 10 / 0.5));
        Calls(ThroughEngine, 0.5);
        var mlnet = new double[Rounds];
        var own = new double[Rounds];
        for (int r = 0; r < Rounds; r++)
        {
            mlnet[r] = Microseconds(ThroughMLNet, calls) / calls;
            own[r] = Microseconds(ThroughEngine, calls) / calls;
        }

        return (Statistics.Median(mlnet), Statistics.Median(own));
    }

    /// <summary>Medians over alternating rounds of rows per second: Transform over 10,000 rows read with a cursor, and the engine's batched Score on the same rows.</summary>
    public static (double Transform, double Engine) Batched(NeuralNetworkMulticlassModel model)
    {
        int length = model.Network.InputSize;
        var random = new Random(8);
        var features = new float[TransformRows * length];
        for (int f = 0; f < features.Length; f++) features[f] = random.NextSingle();
        var data = new DatasetDataView(new Dataset(features, [.. model.InputShape], new float[TransformRows], classCount: model.ClassCount, validate: false));
        var probabilities = new float[TransformRows * model.ClassCount];
        var predicted = new int[TransformRows];

        void ThroughTransform()
        {
            IDataView scored = model.Transform(data);
            using var cursor = scored.GetRowCursor([scored.Schema["Score"], scored.Schema["PredictedLabel"]]);
            var getScore = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
            var getLabel = cursor.GetGetter<uint>(scored.Schema["PredictedLabel"]);
            VBuffer<float> score = default;
            uint label = 0;
            while (cursor.MoveNext())
            {
                getScore(ref score);
                getLabel(ref label);
            }
        }

        void ThroughEngine() => model.Score(features, TransformRows, probabilities, predicted);

        // Half a second of each first: the cursor and getter code (ours and the input view's) runs in short calls that
        // the runtime only recompiles with full optimisation after a while; a single warm-up pass timed tier-0 code.
        Calls(ThroughTransform, 0.5);
        Calls(ThroughEngine, 0.5);
        var transform = new double[Rounds];
        var engine = new double[Rounds];
        for (int r = 0; r < Rounds; r++)
        {
            transform[r] = TransformRows / (Microseconds(ThroughTransform, 1) / 1e6);
            engine[r] = TransformRows / (Microseconds(ThroughEngine, 1) / 1e6);
        }

        return (Statistics.Median(transform), Statistics.Median(engine));
    }

    /// <summary>
    /// Training LeNet-300-100 on Fashion-MNIST (20 epochs, the recipe of docs/results.md) through the IDataView pipeline
    /// (<c>Fit</c>: one cursor pass copies the data into the engine's buffers, then trains) against the engine alone on
    /// the same buffers, in alternating rounds; and the cursor pass by itself. Returns medians: seconds through the
    /// pipeline, seconds on the engine alone, seconds of the copy.
    /// </summary>
    public static (double Pipeline, double Engine, double Read) TrainingOverhead(int rounds)
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFashionMnist(FashionMnistSplit.Train);
        var options = new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = Layers.LeNet300100(),
            Epochs = 20,
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
            LearningRateSchedule = LearningRateSchedule.Cosine(),
            Seed = 1,
        };
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
        Dataset examples = DataViewReader.Read(train, "Features", "Label");
        var pipeline = new double[rounds];
        var engine = new double[rounds];
        var read = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            pipeline[r] = Microseconds(() => trainer.Fit(train), 1) / 1e6;
            engine[r] = Microseconds(() => trainer.FitExamples(examples), 1) / 1e6;
            read[r] = Microseconds(() => DataViewReader.Read(train, "Features", "Label"), 1) / 1e6;
        }

        return (Statistics.Median(pipeline), Statistics.Median(engine), Statistics.Median(read));
    }

    private static long Calls(Action call, double seconds)
    {
        long calls = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds) { call(); calls++; }
        return calls;
    }

    private static double Microseconds(Action call, int calls)
    {
        long start = Stopwatch.GetTimestamp();
        for (int c = 0; c < calls; c++) call();
        return Stopwatch.GetElapsedTime(start).TotalMicroseconds;
    }
}
