using System.CommandLine;
using System.Globalization;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>The options several commands share, made afresh for each command.</summary>
internal static class CliOptions
{
    public static Option<string> Data(bool required = true) => new("--data")
    {
        Description = $"The data: {DataSource.Help}.",
        Required = required,
    };

    public static Option<string?> TestData() => new("--test-data") { Description = "A CSV file of test data (CSV --data only; default: a seeded 20% of --data)." };

    public static Option<string> LabelColumn() => new("--label-column") { Description = "The CSV label column.", DefaultValueFactory = _ => "Label" };

    public static Option<string> Model(string description) => new("--model") { Description = description, Required = true };

    public static Option<string> Output(string description) => new("--output") { Description = description, Required = true };

    public static Option<string> Architecture() => new Option<string>("--architecture")
    {
        Description = "The hidden layers: lenet (LeNet-300-100) or cnn (conv 32 → conv 64 → dense 128; needs image data: Fashion-MNIST or IDX).",
        DefaultValueFactory = _ => "lenet",
    }.AcceptOnlyFromAmong("lenet", "cnn");

    public static Option<int> Epochs(int defaultValue) => new("--epochs") { Description = "Passes over the training data.", DefaultValueFactory = _ => defaultValue };

    public static Option<double> LearningRate() => new("--learning-rate") { Description = "SGD's learning rate (momentum 0.9, cosine schedule).", DefaultValueFactory = _ => 0.05 };

    public static Option<int> Seed() => new("--seed") { Description = "Seeds training and data splits.", DefaultValueFactory = _ => 1 };

    public static Option<int?> Threads() => new("--threads") { Description = "The engine's thread count (default: every processor)." };

    public static Option<string?> Project() => new("--project")
    {
        Description = "Also write a small console project there that loads the model and predicts (Model Builder's consumption project).",
    };

    public static IReadOnlyList<LayerDefinition> Layers(string architecture) => architecture == "cnn" ? Network.Layers.SmallCnn() : Network.Layers.LeNet300100();

    /// <summary>The method names the tool takes, and what each is.</summary>
    public static readonly IReadOnlyDictionary<string, SweepMethod> Methods = new Dictionary<string, SweepMethod>
    {
        ["dense"] = SweepMethod.Dense,
        ["gmp"] = SweepMethod.GradualMagnitude,
        ["random"] = SweepMethod.Random,
        ["nm"] = SweepMethod.NMFromScratch,
        ["rigl"] = SweepMethod.RigL,
        ["set"] = SweepMethod.Set,
        ["gap"] = SweepMethod.GrowAndPrune,
    };

    public const string MethodHelp = "dense, gmp (gradual magnitude pruning), random, nm (N:M from scratch, SR-STE), rigl, set or gap (C-GaP)";

    public static SweepMethod Method(string name) => Methods.TryGetValue(name, out var method)
        ? method
        : throw new ArgumentException($"--method '{name}' is not one of {MethodHelp}.", "--method");

    /// <summary>Comma-separated numbers, each checked by <paramref name="valid"/>.</summary>
    public static List<T> List<T>(string text, string option, Func<T, bool> valid, string expected) where T : IParsable<T>
    {
        var values = new List<T>();
        foreach (string item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!T.TryParse(item, CultureInfo.InvariantCulture, out T? value) || !valid(value))
                throw new ArgumentException($"{option}: '{item}' is not {expected}.", option);
            values.Add(value);
        }
        if (values.Count == 0) throw new ArgumentException($"{option} lists nothing: give {expected}, comma-separated.", option);
        return values;
    }
}
