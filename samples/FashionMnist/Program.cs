// Trains the dense Fashion-MNIST baselines (LeNet-300-100 and a small CNN) and prints accuracy,
// parameter counts and time. Usage: dotnet run -c Release --project samples/FashionMnist -- [--model lenet|cnn|all]
//        [--epochs N] [--seed S] [--threads T] [--data DIR] [--quiet]
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Sparsity;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

var options = SampleArguments.Parse(args);
using var context = new SparsityContext(seed: options.Seed, threads: options.Threads);
if (!options.Quiet) context.Log += (_, e) => Console.WriteLine($"  {e.Message}");

var train = context.Data.LoadFashionMnist(FashionMnistSplit.Train, options.DataDirectory);
var test = context.Data.LoadFashionMnist(FashionMnistSplit.Test, options.DataDirectory);
Console.WriteLine($"Fashion-MNIST: {train.Count:N0} training and {test.Count:N0} test images; seed {options.Seed}, {context.Threads} threads.");

var results = new List<(string Model, double Accuracy, double MacroAccuracy, long Parameters, double Seconds)>();
foreach (var (name, recipe) in Recipes.For(options))
{
    Console.WriteLine($"\n== {name}: {recipe.Epochs} epochs, batch {recipe.BatchSize}, {Recipes.Describe(recipe.Optimizer)}, {recipe.LearningRateSchedule}");
    var clock = Stopwatch.StartNew();
    var model = context.MulticlassClassification.Trainers.NeuralNetwork(recipe).Fit(train);
    double seconds = clock.Elapsed.TotalSeconds;
    var metrics = context.MulticlassClassification.Evaluate(model.Transform(test));
    Console.WriteLine(model.Summary());
    Console.WriteLine($"test accuracy {metrics.MicroAccuracy:P2}, macro accuracy {metrics.MacroAccuracy:P2}, log-loss {metrics.LogLoss:F4}, trained in {seconds:F1} s");
    results.Add((name, metrics.MicroAccuracy, metrics.MacroAccuracy, model.ParameterCount, seconds));
}

Console.WriteLine("\n| model | test accuracy | macro accuracy | parameters | training time (s) |");
Console.WriteLine("|---|---|---|---|---|");
foreach (var r in results)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {r.Model} | {r.Accuracy:P2} | {r.MacroAccuracy:P2} | {r.Parameters:N0} | {r.Seconds:F1} |"));

/// <summary>The documented recipes of the dense baselines.</summary>
internal static class Recipes
{
    public static IEnumerable<(string Name, NeuralNetworkMulticlassTrainer.Options Recipe)> For(SampleArguments a)
    {
        if (a.Model is "lenet" or "all")
            yield return ("LeNet-300-100", new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = Layers.LeNet300100(),
                Epochs = a.Epochs ?? 20,
                BatchSize = 64,
                Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
                LearningRateSchedule = LearningRateSchedule.Cosine(),
                Seed = a.Seed,
            });
        if (a.Model is "cnn" or "all")
            yield return ("Small CNN", new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = Layers.SmallCnn(),
                Epochs = a.Epochs ?? 12,
                BatchSize = 64,
                Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
                LearningRateSchedule = LearningRateSchedule.Cosine(),
                Seed = a.Seed,
            });
    }

    public static string Describe(OptimizerOptions o) => o switch
    {
        SgdOptimizerOptions s => $"SGD(lr {s.LearningRate}, momentum {s.Momentum})",
        AdamOptimizerOptions adam => $"Adam(lr {adam.LearningRate})",
        _ => o.GetType().Name,
    };
}

internal sealed record SampleArguments(string Model, int? Epochs, int Seed, int Threads, string? DataDirectory, bool Quiet)
{
    public static SampleArguments Parse(string[] args)
    {
        var a = new SampleArguments("all", null, 1, 0, null, false);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            a = args[i] switch
            {
                "--model" => a with { Model = Value() },
                "--epochs" => a with { Epochs = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--seed" => a with { Seed = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--threads" => a with { Threads = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--data" => a with { DataDirectory = Value() },
                "--quiet" => a with { Quiet = true },
                _ => throw new ArgumentException($"Unknown argument '{args[i]}'. Use --model lenet|cnn|all, --epochs N, --seed S, --threads T, --data DIR, --quiet."),
            };
        }
        if (a.Model is not ("lenet" or "cnn" or "all")) throw new ArgumentException($"--model must be lenet, cnn or all, not '{a.Model}'.");
        return a;
    }
}
