using System.CommandLine;
using System.Globalization;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>The data options (--data, --test-data, --label-column, --image-size, --color), made afresh for each command.</summary>
internal sealed class DataArguments
{
    private readonly Option<string> _data = new("--data") { Description = $"The data: {DataSource.Help}.", Required = true };
    private readonly Option<string?> _testData = new("--test-data") { Description = "Test data for a CSV file or image folder, in the same form (default: a seeded 20% of --data)." };
    private readonly Option<string> _label = new("--label-column") { Description = "The CSV label column.", DefaultValueFactory = _ => "Label" };
    private readonly Option<string> _imageSize = new("--image-size") { Description = "Image folders: the size images are resized to, HEIGHTxWIDTH.", DefaultValueFactory = _ => "28x28" };
    private readonly Option<bool> _color = new("--color") { Description = "Image folders: read RGB (three channels) instead of grey." };
    private readonly bool _withTestData;

    /// <param name="withTestData">Whether the command takes --test-data (evaluate scores --data alone).</param>
    public DataArguments(bool withTestData = true) => _withTestData = withTestData;

    public void AddTo(System.CommandLine.Command command)
    {
        command.Options.Add(_data);
        if (_withTestData) command.Options.Add(_testData);
        command.Options.Add(_label);
        command.Options.Add(_imageSize);
        command.Options.Add(_color);
    }

    public DataOptions Read(ParseResult parse) =>
        new(parse.GetValue(_data)!, _withTestData ? parse.GetValue(_testData) : null, parse.GetValue(_label)!, ImageSpec.Parse(parse.GetValue(_imageSize)!, parse.GetValue(_color)));
}

/// <summary>The options several commands share, made afresh for each command.</summary>
internal static class CliOptions
{

    public static Option<string> Model(string description) => new("--model") { Description = description, Required = true };

    public static Option<string> Output(string description) => new("--output") { Description = description, Required = true };

    /// <summary>
    /// A folder the command will write into (created if missing), checked writable before it trains: a temporary file
    /// is created and deleted there.
    /// </summary>
    public static string CheckedFolder(string folder, string option)
    {
        try
        {
            Directory.CreateDirectory(folder);
            string probe = Path.Combine(folder, $".write-check-{Guid.NewGuid():N}.tmp");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return folder;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new IOException($"{option} '{folder}' cannot be written: {e.Message}", e);
        }
    }

    /// <summary>The output's folder must exist: checked before a command trains for minutes only to fail at the save.</summary>
    public static string CheckedOutput(string path)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Cannot save '{path}': its folder '{folder}' does not exist.");
        return path;
    }

    public static Option<string> Architecture() => new Option<string>("--architecture")
    {
        Description = "The hidden layers: lenet (LeNet-300-100) or cnn (conv 32 → conv 64 → dense 128; needs image data: Fashion-MNIST, IDX or an image folder).",
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
        ["lottery"] = SweepMethod.LotteryTicket,
        ["chex"] = SweepMethod.ChannelExploration,
    };

    public const string MethodHelp = "dense, gmp (gradual magnitude pruning), random, nm (N:M from scratch, SR-STE), rigl, set, gap (C-GaP), lottery (lottery ticket: three levels of iterative magnitude pruning) or chex (channel exploration: --sparsity is the fraction of channels removed; the model is compacted)";

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
