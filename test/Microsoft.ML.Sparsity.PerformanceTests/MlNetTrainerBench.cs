using System.Diagnostics;
using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.NMSparsity;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>One Fashion-MNIST image as the pipelines read it: the input columns every measured pipeline starts from.</summary>
internal sealed class FashionMnistImage
{
    /// <summary>The 784 pixels (28×28, row-major) scaled to [0, 1].</summary>
    [VectorType(784)]
    public float[] Features { get; set; } = [];

    /// <summary>The class, 0–9.</summary>
    public uint Label { get; set; }
}

/// <summary>The output columns every measured pipeline ends with (as ML.NET's multiclass trainers name them).</summary>
internal sealed class FashionMnistPrediction
{
    /// <summary>The 10 class scores.</summary>
    public float[] Score { get; set; } = [];

    /// <summary>The predicted class as a key (1-based index into the label's key values).</summary>
    public uint PredictedLabel { get; set; }
}

/// <summary>One trained pipeline's numbers: one row of the table.</summary>
/// <param name="MicroAccuracy">Test accuracy, ML.NET's <c>MulticlassClassification.Evaluate</c> micro-accuracy.</param>
/// <param name="TrainingSeconds">Wall clock of <c>Fit</c> on the training set.</param>
/// <param name="TrainingCpuSeconds">The process's CPU time (all threads) during <c>Fit</c>: how much of the machine it got.</param>
/// <param name="PredictMicroseconds">µs per <c>PredictionEngine.Predict</c> (one image), median of 5 rounds after 0.5 s of warm-up.</param>
/// <param name="RowsPerSecond">Test rows per second through <c>Transform</c> and a cursor reading Score and PredictedLabel, median of 3 passes.</param>
/// <param name="ModelBytes">Size of the zip that <c>mlContext.Model.Save</c> writes.</param>
internal readonly record struct MlNetTrainerResult(
    double MicroAccuracy, double TrainingSeconds, double TrainingCpuSeconds, double PredictMicroseconds, double RowsPerSecond, long ModelBytes);

/// <summary>
/// Multiclass trainers measured the way an ML.NET user runs them, on Fashion-MNIST: ML.NET 6.0's own
/// (<c>LbfgsMaximumEntropy</c>, <c>SdcaMaximumEntropy</c>, <c>LightGbm</c>, all at their defaults) and this package's
/// networks (LeNet-300-100 dense, pruned to 90% and 2:4, and the small CNN, on the recipe of docs/results.md), each
/// through <see cref="Measure"/>, which takes any pipeline as an <c>IEstimator&lt;ITransformer&gt;</c>.
/// </summary>
internal static class MlNetTrainerBench
{
    private const int LatencyImages = 100;
    private const int CallsPerRound = 2000;

    /// <summary>Trains and measures each trainer's pipeline on Fashion-MNIST and prints the Markdown table.</summary>
    public static void Run()
    {
        var mlContext = new MLContext(seed: 1);
        IDataView train = Load(mlContext, test: false);
        IDataView test = Load(mlContext, test: true);
        string version = typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
        Console.WriteLine($"\n### ML.NET {version} multiclass trainers on Fashion-MNIST\n");
        Console.WriteLine($"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, .NET {Environment.Version}, {Environment.ProcessorCount} processors, " +
            $"/proc/loadavg at the start: {LoadAverage()}. 60,000 training and 10,000 test images; Features = the 784 pixels scaled to [0, 1], " +
            "Label through MapValueToKey; trainers at ML.NET's defaults (MLContext seed 1). LbfgsMaximumEntropy and SdcaMaximumEntropy " +
            "get NormalizeMinMax in front (ML.NET's docs: normalisation required for them; their samples pair NormalizeMinMax with " +
            "SdcaMaximumEntropy) and a cache checkpoint before the trainer (they pass over the data many times); LightGbm reads the " +
            "pixels as they are. Accuracy: Evaluate's micro-accuracy on the test set; training: wall clock of Fit, and the process's CPU time during it; Predict: " +
            $"PredictionEngine, one image, median of 5 rounds of {CallsPerRound:N0} calls after 0.5 s of warm-up; Transform: the " +
            "10,000 test rows through Transform and a cursor reading Score and PredictedLabel, median of 3 passes; model: the zip " +
            "that Model.Save writes; load: /proc/loadavg's 1-minute load right after the row was measured (a shared machine).\n");
        Console.WriteLine("| trainer | test accuracy | training s | training CPU s | Predict µs (batch 1) | Transform rows/s | model bytes | load |\n|---|---|---|---|---|---|---|---|");
        foreach (var (name, pipeline) in Trainers(mlContext))
        {
            var r = Measure(mlContext, pipeline, train, test);
            Console.WriteLine($"| {name} | {100 * r.MicroAccuracy:F2}% | {r.TrainingSeconds:F1} | {r.TrainingCpuSeconds:F1} | {r.PredictMicroseconds:F1} | {r.RowsPerSecond:F0} | {r.ModelBytes:N0} | {LoadAverage().Split(' ')[0]} |");
        }
    }

    /// <summary>
    /// Fits <paramref name="pipeline"/> on <paramref name="train"/> and measures the trained model on
    /// <paramref name="test"/>. Both views have the columns of <see cref="FashionMnistImage"/> (Features, a known-size
    /// vector of 784 singles; Label, UInt32); the pipeline must map Label to a key and produce Score and a key-typed
    /// PredictedLabel, as ML.NET's multiclass trainers do.
    /// </summary>
    public static MlNetTrainerResult Measure(MLContext mlContext, IEstimator<ITransformer> pipeline, IDataView train, IDataView test)
    {
        using var process = Process.GetCurrentProcess();
        TimeSpan cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        ITransformer model = pipeline.Fit(train);
        double trainingSeconds = clock.Elapsed.TotalSeconds;
        process.Refresh();
        double trainingCpuSeconds = (process.TotalProcessorTime - cpu).TotalSeconds;

        double accuracy = mlContext.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;

        using var saved = new MemoryStream();
        mlContext.Model.Save(model, train.Schema, saved);

        var images = mlContext.Data.CreateEnumerable<FashionMnistImage>(test, reuseRowObject: false).Take(LatencyImages).ToArray();
        return new MlNetTrainerResult(accuracy, trainingSeconds, trainingCpuSeconds, PredictMicroseconds(mlContext, model, images),
            RowsPerSecond(model, test), saved.Length);
    }

    /// <summary>The trainers an ML.NET user picks from today, each in the pipeline its docs suggest.</summary>
    private static IEnumerable<(string Name, IEstimator<ITransformer> Pipeline)> Trainers(MLContext mlContext)
    {
        var trainers = mlContext.MulticlassClassification.Trainers;
        yield return ("LbfgsMaximumEntropy", mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.NormalizeMinMax("Features")).AppendCacheCheckpoint(mlContext)
            .Append(trainers.LbfgsMaximumEntropy()));
        yield return ("SdcaMaximumEntropy", mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.NormalizeMinMax("Features")).AppendCacheCheckpoint(mlContext)
            .Append(trainers.SdcaMaximumEntropy()));
        yield return ("LightGbm", mlContext.Transforms.Conversion.MapValueToKey("Label").Append(trainers.LightGbm()));

        var gmp90 = mlContext.Sparsity().GradualMagnitudePruning(0.9);
        gmp90.Allocation = LayerAllocation.ErdosRenyiKernel;
        var srste24 = new SrSteOptions { N = 2, M = 4, LeaveMisfitLayersDense = true };
        srste24.ExcludedLayers.Add("-1");
        foreach (var (name, layers, epochs, sparsity) in new (string, LayerDefinition[], int, SparsityMethod?)[]
        {
            ("NeuralNetwork LeNet-300-100 dense", Layers.LeNet300100(), 20, null),
            ("NeuralNetwork LeNet-300-100 GMP 90%", Layers.LeNet300100(), 20, gmp90),
            ("NeuralNetwork LeNet-300-100 2:4 SR-STE", Layers.LeNet300100(), 20, srste24),
            ("NeuralNetwork small CNN dense", Layers.SmallCnn(), 12, null),
        })
            yield return (name, mlContext.Transforms.Conversion.MapValueToKey("Label").Append(trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = layers,
                InputShape = [28, 28, 1],
                Epochs = epochs,
                BatchSize = 64,
                Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
                LearningRateSchedule = LearningRateSchedule.Cosine(),
                Seed = 1,
                Sparsity = sparsity,
            })));
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "unknown";

    private static IDataView Load(MLContext mlContext, bool test)
    {
        var (pixels, labels) = FashionMnistArrays.Load(test);
        var images = new FashionMnistImage[pixels.Length];
        for (int i = 0; i < images.Length; i++)
            images[i] = new FashionMnistImage { Features = pixels[i], Label = (uint)labels[i] };
        return mlContext.Data.LoadFromEnumerable(images);
    }

    /// <summary>
    /// Median µs per <c>Predict</c> over 5 rounds, after half a second of calls: the runtime recompiles hot code with full
    /// optimisation only after a delay, so the first few thousand calls would time unoptimised code.
    /// </summary>
    private static double PredictMicroseconds(MLContext mlContext, ITransformer model, FashionMnistImage[] images)
    {
        using var engine = mlContext.Model.CreatePredictionEngine<FashionMnistImage, FashionMnistPrediction>(model);
        var prediction = new FashionMnistPrediction();
        var clock = Stopwatch.StartNew();
        for (int i = 0; clock.ElapsedMilliseconds < 500; i++)
            engine.Predict(images[i % images.Length], ref prediction);
        var rounds = new double[5];
        for (int r = 0; r < rounds.Length; r++)
        {
            clock.Restart();
            for (int i = 0; i < CallsPerRound; i++)
                engine.Predict(images[i % images.Length], ref prediction);
            rounds[r] = clock.Elapsed.TotalMicroseconds / CallsPerRound;
        }
        Array.Sort(rounds);
        return rounds[rounds.Length / 2];
    }

    /// <summary>Median rows/s of 3 passes (after one untimed pass) of <paramref name="test"/> through <c>Transform</c> and a cursor.</summary>
    private static double RowsPerSecond(ITransformer model, IDataView test)
    {
        double Pass()
        {
            var clock = Stopwatch.StartNew();
            IDataView scored = model.Transform(test);
            DataViewSchema.Column score = scored.Schema["Score"], predicted = scored.Schema["PredictedLabel"];
            using var cursor = scored.GetRowCursor([score, predicted]);
            var getScore = cursor.GetGetter<VBuffer<float>>(score);
            var getPredicted = cursor.GetGetter<uint>(predicted);
            VBuffer<float> scores = default;
            uint label = 0;
            long rows = 0;
            while (cursor.MoveNext())
            {
                getScore(ref scores);
                getPredicted(ref label);
                rows++;
            }
            return rows / clock.Elapsed.TotalSeconds;
        }

        Pass();
        double[] passes = [Pass(), Pass(), Pass()];
        Array.Sort(passes);
        return passes[1];
    }
}
