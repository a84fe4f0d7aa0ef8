// Frequency-domain input selection ("Learning in the Frequency Domain", Xu et al., CVPR 2020) on Fashion-MNIST padded
// to 32×32: LeNet-300-100 on the padded pixels (the spatial baseline), on all 64 block-DCT channels (B = 8), on the
// low-frequency 4×4 square (16 channels) and on the 16 channels the learned gate switches on most often.
// Usage: dotnet run -c Release --project samples/FrequencyDomain -- [--methods spatial,dct,square,gate] [--epochs N]
//        [--gate-epochs N] [--block 8|4] [--seed S] [--threads T] [--heatmap FILE.svg|FILE.png] [--data DIR]
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Microsoft.ML.Sparsity.FrequencyDomain;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var a = Arguments.Parse(args);
var ml = new MLContext(seed: a.Seed);
// The package's progress messages (ML.NET's own components log at the Trace level).
ml.Log += (_, e) =>
{
    if (e.Kind == ChannelMessageKind.Info) Console.WriteLine($"  [{e.Source}] {e.RawMessage}");
};
int? threads = a.Threads > 0 ? a.Threads : null;
var train = ml.Data.LoadFashionMnist(FashionMnistSplit.Train, a.DataDirectory);
var test = ml.Data.LoadFashionMnist(FashionMnistSplit.Test, a.DataDirectory);
Console.WriteLine($"Fashion-MNIST: {train.GetRowCount():N0} training and {test.GetRowCount():N0} test images; seed {a.Seed}, {threads ?? Environment.ProcessorCount} threads, block {a.Block}.");

if (MachineLoad.Probe(TimeSpan.FromSeconds(0.5)) is string machine) Console.WriteLine($"Before training, {machine}.");
var load = MachineLoad.Start();
var results = new List<(string Method, int Channels, int Inputs, long Parameters, double Accuracy, double Seconds)>();
foreach (string method in a.Methods)
{
    var clock = Stopwatch.StartNew();
    var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
    {
        Layers = Layers.LeNet300100(),
        Epochs = a.Epochs,
        BatchSize = 64,
        Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
        LearningRateSchedule = LearningRateSchedule.Cosine(),
        Seed = a.Seed,
        NumberOfThreads = threads,
    });
    Console.WriteLine($"\n== {method}");
    if (method == "spatial")
    {
        // The baseline sees the same 32×32 images the transform pads to (the image centred, black all around).
        var model = trainer.Fit(Pad(ml, train));
        double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(Pad(ml, test))).MicroAccuracy;
        results.Add((method, 1, 32 * 32, model.ParameterCount, accuracy, clock.Elapsed.TotalSeconds));
        continue;
    }
    var options = new FrequencyDomainEstimator.Options
    {
        BlockSize = a.Block,
        Selection = method switch { "dct" => FrequencyChannelSelection.All, "square" => FrequencyChannelSelection.LowFrequency, _ => FrequencyChannelSelection.Gate },
        GateEpochs = a.GateEpochs,
        Seed = a.Seed,
        NumberOfThreads = threads,
    };
    var pipeline = ml.Transforms.ConvertToFrequencyDomain(options).Append(trainer);
    var fitted = pipeline.Fit(train);
    var transform = (FrequencyDomainTransformer)fitted.First();
    double acc = ml.MulticlassClassification.Evaluate(fitted.Transform(test)).MicroAccuracy;
    int inputs = transform.OutputShape.Aggregate(1, (x, y) => x * y);
    results.Add((method, transform.SelectedChannels.Count, inputs, fitted.LastTransformer.ParameterCount, acc, clock.Elapsed.TotalSeconds));
    Console.WriteLine($"  kept channels {string.Join(",", transform.SelectedChannels)}");
    if (method == "gate" && a.HeatMap is string path)
    {
        Microsoft.ML.Sparsity.Plots.FrequencyPlots.SaveHeatMap(transform, path);
        Console.WriteLine($"  heat map written to {path}");
    }
}

Console.WriteLine($"\nFashion-MNIST test accuracy, seed {a.Seed}, LeNet-300-100 for {a.Epochs} epochs (gate trained {a.GateEpochs} epochs), block {a.Block}, {threads ?? Environment.ProcessorCount} threads");
Console.WriteLine("| input | channels | values per image | input reduction vs 32×32 (1,024) | vs 28×28 (784) | parameters | test accuracy | vs spatial (points) | time (s) |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
double? spatial = results.Where(r => r.Method == "spatial").Select(r => (double?)r.Accuracy).FirstOrDefault();
foreach (var r in results)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {r.Method} | {(r.Method == "spatial" ? "–" : r.Channels.ToString(CultureInfo.InvariantCulture))} | {r.Inputs:N0} | {1024.0 / r.Inputs:F2}× | {784.0 / r.Inputs:F2}× | {r.Parameters:N0} | {r.Accuracy * 100:F2}% | " +
        $"{(spatial is double s && r.Method != "spatial" ? ((r.Accuracy - s) * 100).ToString("+0.00;-0.00", CultureInfo.InvariantCulture) : "–")} | {r.Seconds:F0} |"));
if (load?.OtherCores() is double others) Console.WriteLine($"While these were trained, {MachineLoad.Describe(others)}.");

/// <summary>The images centred in 32×32 with black borders, as the transform pads them; the label key stays.</summary>
static IDataView Pad(MLContext ml, IDataView data)
{
    var rows = ml.Data.CreateEnumerable<Image>(data, reuseRowObject: false).Select(row =>
    {
        var padded = new float[32 * 32];
        for (int y = 0; y < 28; y++) row.Features.AsSpan(y * 28, 28).CopyTo(padded.AsSpan((y + 2) * 32 + 2, 28));
        return new PaddedImage { Features = padded, Label = row.Label };
    });
    return ml.Data.LoadFromEnumerable(rows.ToList());
}

internal sealed class Image
{
    [VectorType(28, 28, 1)] public float[] Features { get; set; } = [];
    [KeyType(10)] public uint Label { get; set; }
}

internal sealed class PaddedImage
{
    [VectorType(32, 32, 1)] public float[] Features { get; set; } = [];
    [KeyType(10)] public uint Label { get; set; }
}

internal sealed record Arguments(string[] Methods, int Epochs, int GateEpochs, int Block, int Seed, int Threads, string? HeatMap, string? DataDirectory)
{
    public static Arguments Parse(string[] args)
    {
        var a = new Arguments(["spatial", "dct", "square", "gate"], 20, 5, 8, 1, 0, null, null);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Number() => int.Parse(Value(), CultureInfo.InvariantCulture);
            a = args[i] switch
            {
                "--methods" => a with { Methods = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) },
                "--epochs" => a with { Epochs = Number() },
                "--gate-epochs" => a with { GateEpochs = Number() },
                "--block" => a with { Block = Number() },
                "--seed" => a with { Seed = Number() },
                "--threads" => a with { Threads = Number() },
                "--heatmap" => a with { HeatMap = Value() },
                "--data" => a with { DataDirectory = Value() },
                _ => throw new ArgumentException($"Unknown argument '{args[i]}'. {Usage}"),
            };
        }
        foreach (string m in a.Methods)
            if (m is not ("spatial" or "dct" or "square" or "gate")) throw new ArgumentException($"Unknown method '{m}'. {Usage}");
        return a;
    }

    private const string Usage = "Options: --methods spatial,dct,square,gate (the default: all four), --epochs N (default 20), --gate-epochs N (default 5), " +
        "--block 8|4 (default 8), --seed S (default 1), --threads T, --heatmap FILE.svg|FILE.png, --data DIR.";
}
