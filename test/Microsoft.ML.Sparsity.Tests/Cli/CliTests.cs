using System.Globalization;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Cli;

/// <summary>
/// The command-line tool (src/Microsoft.ML.Sparsity.Cli), run as a process with its output redirected: exit codes,
/// help, bad arguments and bad input as one line, every command on a model trained from a CSV file, the sweep and its
/// constraint, and the consumption project it writes.
/// </summary>
[Trait("Tier", "NativeOnly")]
public sealed class CliTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"cli-{Guid.NewGuid():N}");

    public CliTests()
    {
        Directory.CreateDirectory(_folder);
        // Three classes: the largest of the first three features; eight features in all, the label last.
        var random = new Random(5);
        var lines = new List<string> { "f1,f2,f3,f4,f5,f6,f7,f8,Label" };
        for (int r = 0; r < 600; r++)
        {
            float[] x = [.. Enumerable.Range(0, 8).Select(_ => random.NextSingle())];
            int label = x[0] > x[1] ? (x[0] > x[2] ? 0 : 2) : (x[1] > x[2] ? 1 : 2);
            lines.Add(string.Join(",", x.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "," + "abc"[label]);
        }
        File.WriteAllLines(Path.Combine(_folder, "data.csv"), lines);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private (int Exit, string Out, string Error) Run(params string[] args) =>
        Run("dotnet", ["exec", ChildProcesses.BuiltOutput("src/Microsoft.ML.Sparsity.Cli", "mlnet-sparsity.dll"), .. args]);

    private (int Exit, string Out, string Error) Run(string program, string[] args, string? folder = null) => ChildProcesses.Run(program, args, folder ?? _folder);

    /// <summary>
    /// Runs the built consumption project in <paramref name="project"/>; it must leave nothing in its temporary folder
    /// (loading the model copies its ONNX graph there) but ONNX Runtime's own file, ".ses" (its telemetry's session id).
    /// </summary>
    private string RunsAndCleansUp(string project, params string[] args)
    {
        string temporary = Directory.CreateDirectory(Path.Combine(_folder, "tmp")).FullName;
        string program = Path.Combine(project, "bin", "Release", "net10.0", "Consume.dll");
        string output = Succeeds(ChildProcesses.Run("dotnet", ["exec", program, .. args], project, temporaryFolder: temporary));
        Assert.All(Directory.EnumerateFileSystemEntries(temporary), path => Assert.Equal(".ses", Path.GetFileName(path)));
        return output;
    }

    /// <summary>Exit code 0, and no terminal control codes in the redirected output (CI logs stay readable).</summary>
    private static string Succeeds((int Exit, string Out, string Error) run)
    {
        Assert.True(run.Exit == 0, $"exit {run.Exit}: {run.Error}\n{run.Out}");
        Assert.DoesNotContain('\u001b', run.Out);
        return run.Out;
    }

    /// <summary>Exit code <paramref name="code"/> and one line on standard error, "error: …" containing each of <paramref name="words"/>.</summary>
    private static void FailsWith(int code, (int Exit, string Out, string Error) run, params string[] words)
    {
        Assert.True(run.Exit == code, $"exit {run.Exit}, expected {code}: {run.Error}\n{run.Out}");
        string[] lines = run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error: ", StringComparison.Ordinal), $"expected one error line: {run.Error}");
        foreach (string word in words) Assert.Contains(word, lines[0]);
    }

    [Fact]
    public void HelpListsEveryCommandAndEachCommandsOptions()
    {
        string root = Succeeds(Run("--help"));
        string[] commands = ["train", "prune", "sweep", "evaluate", "report", "export", "bench"];
        Assert.All(commands, c => Assert.Contains($"  {c} ", root));
        Assert.Contains("Exit codes: 0 success", root);
        Assert.Contains("  worker ", root);
        Assert.Contains("--cluster", Succeeds(Run("worker", "--help")));
        foreach (string command in commands)
        {
            string help = Succeeds(Run(command, "--help"));
            Assert.Contains($"mlnet-sparsity {command} [options]", help);
            Assert.Contains(command is "report" or "export" or "bench" ? "--model" : "--data", help);
        }
    }

    [Fact]
    public void ACommandLineThatDoesNotParseExitsWithOne()
    {
        foreach (string[] args in new[] { new[] { "frobnicate" }, ["train", "--data", "data.csv"], ["train", "--data", "data.csv", "--output", "m.zip", "--epochs", "many"], ["sweep", "--goal", "speed"] })
        {
            var run = Run(args);
            Assert.True(run.Exit == 1, $"{string.Join(' ', args)}: exit {run.Exit}");
            Assert.NotEmpty(run.Error);
        }
    }

    [Fact]
    public void BadInputExitsWithTwoAndOneLineNamingIt()
    {
        File.WriteAllLines(Path.Combine(_folder, "bad.csv"), ["f1,f2,Label", "1,2,a", "3,x,b"]);
        FailsWith(2, Run("train", "--data", "bad.csv", "--output", "m.zip"), "'bad.csv', line 3, column 'f2' (2): 'x' is not a finite number");
        File.WriteAllLines(Path.Combine(_folder, "ragged.csv"), ["f1,f2,Label", "1,2,a", "3,b"]);
        FailsWith(2, Run("train", "--data", "ragged.csv", "--output", "m.zip"), "'ragged.csv', line 3: 2 columns where the header has 3");
        FailsWith(2, Run("train", "--data", "missing.csv", "--output", "m.zip"), "'missing.csv'", "no such file or folder");
        FailsWith(2, Run("train", "--data", "data.csv", "--output", "m.zip", "--label-column", "Class"), "no column 'Class'", "--label-column");
        FailsWith(2, Run("train", "--data", "data.csv", "--output", "m.zip", "--sparsity", "1.5"), "--sparsity must be in (0, 1)");
        FailsWith(2, Run("train", "--data", "data.csv", "--output", "m.zip", "--pattern", "2-4"), "'2-4' is not a sparsity pattern");
        FailsWith(2, Run("train", "--data", "data.csv", "--output", Path.Combine("no", "such", "folder", "m.zip"), "--method", "dense", "--epochs", "1"), "does not exist");
        File.WriteAllText(Path.Combine(_folder, "notamodel.zip"), "hello");
        FailsWith(2, Run("report", "--model", "notamodel.zip"), "notamodel.zip");
        FailsWith(2, Run("report", "--model", "absent.zip"), "'absent.zip' does not exist");
        FailsWith(2, Run("sweep", "--data", "data.csv", "--output", "m.zip", "--sparsities", "0.9,2"), "--sparsities: '2' is not a sparsity in (0, 1)");
        // The tool's bound is the library's: a leap year of minutes (527,040).
        FailsWith(2, Run("sweep", "--data", "data.csv", "--output", "m.zip", "--minutes", "527041"), "--minutes must be in (0, 527040]");
    }

    [Fact]
    public void ClusterOptionsAreCheckedAndAnUnreachableClusterExitsWith69NamingIt()
    {
        FailsWith(2, Run("sweep", "--data", "data.csv", "--output", "m.zip", "--cluster", "localhost"), "--sweep-name");
        FailsWith(2, Run("sweep", "--data", "data.csv", "--output", "m.zip", "--cluster", "localhost", "--sweep-name", "s"), "--cluster takes --data fashion-mnist or a folder of IDX files");
        FailsWith(2, Run("sweep", "--data", "fashion-mnist", "--examples", "600", "--output", "m.zip", "--cluster", "localhost", "--sweep-name", "s", "--journal", "j"), "--journal");
        FailsWith(2, Run("worker", "--cluster", "http://example"), "neither \"localhost\" nor \"redis://HOST:PORT\"");
        FailsWith(69, Run("sweep", "--data", "fashion-mnist", "--examples", "600", "--output", "m.zip", "--cluster", "redis://127.0.0.1:1", "--sweep-name", "s", "--connect-timeout", "2"),
            "Could not reach the Orleans cluster at redis://127.0.0.1:1");
    }

    [Fact]
    public void EveryCommandRunsOnAModelTrainedFromACsvFile()
    {
        string train = Succeeds(Run("train", "--data", "data.csv", "--method", "gmp", "--sparsity", "0.8", "--epochs", "8", "--output", "m.zip", "--threads", "1"));
        Assert.Contains("[8/8] epoch 8/8", train);
        Assert.Contains("sparsity 80.0%", train);
        Assert.True(File.Exists(Path.Combine(_folder, "m.zip")));
        string report = Succeeds(Run("report", "--model", "m.zip"));
        Assert.Contains("| dense0 ", report);
        Assert.Contains("| total ", report);
        string evaluation = Succeeds(Run("evaluate", "--model", "m.zip", "--data", "data.csv", "--predictions", "p.txt"));
        Assert.Contains("| rows             | 600", evaluation);
        double accuracy = double.Parse(evaluation.Split('\n').Single(l => l.Contains("accuracy (micro)")).Split('|')[2].Trim().TrimEnd('%'), CultureInfo.InvariantCulture);
        Assert.True(accuracy > 60, $"accuracy {accuracy}% on three classes (chance 33%)");
        Assert.Equal(600, File.ReadAllLines(Path.Combine(_folder, "p.txt")).Length);
        Succeeds(Run("export", "--model", "m.zip", "--output", "m.onnx"));
        Assert.True(new FileInfo(Path.Combine(_folder, "m.onnx")).Length > 1000);
        string bench = Succeeds(Run("bench", "--model", "m.zip", "--seconds", "0.2"));
        Assert.Contains("| Dense     |", bench);
        Assert.Contains("1.00×", bench);
        string pruned = Succeeds(Run("prune", "--model", "m.zip", "--data", "data.csv", "--sparsity", "0.95", "--epochs", "1", "--output", "p.zip"));
        Assert.Contains("sparsity 95.0%", pruned);
        Assert.Contains("Fine-tuned:", pruned);
    }

    [Fact]
    public void ASweepSavesItsBestModelAndExitsWithThreeWhenNoTrialMeetsTheConstraints()
    {
        string[] sweep = ["sweep", "--data", "data.csv", "--methods", "dense,gmp", "--sparsities", "0.5,0.9", "--epochs", "4", "--trials", "4", "--journal", "journal", "--output", "best.zip"];
        string output = Succeeds(Run(sweep));
        Assert.Contains("Best for accuracy: trial", output);
        Assert.Equal(4, Directory.GetFiles(Path.Combine(_folder, "journal"), "trial-*.json").Length);
        Assert.True(File.Exists(Path.Combine(_folder, "best.zip")));
        // Resumed from the journal (no trial runs again), with a constraint nobody meets.
        FailsWith(3, Run([.. sweep, "--min-accuracy", "1"]), "No completed trial has accuracy ≥ 100.00%", "the front is: #");
    }

    /// <summary>Two classes of 20×20 grey PNGs: a bright horizontal or vertical line at a random place on dark noise.</summary>
    private string ImageFolder()
    {
        string root = Path.Combine(_folder, "images");
        var random = new Random(3);
        foreach (string label in new[] { "horizontal", "vertical" })
        {
            Directory.CreateDirectory(Path.Combine(root, label));
            for (int i = 0; i < 40; i++)
            {
                using var bitmap = new SkiaSharp.SKBitmap(20, 20, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque);
                int line = random.Next(3, 17);
                for (int y = 0; y < 20; y++)
                for (int x = 0; x < 20; x++)
                {
                    bool on = label == "horizontal" ? y == line : x == line;
                    byte grey = on ? (byte)255 : (byte)random.Next(0, 60);
                    bitmap.SetPixel(x, y, new SkiaSharp.SKColor(grey, grey, grey));
                }
                using var png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(root, label, $"{i:D3}.png"), png.ToArray());
            }
        }
        return root;
    }

    [Fact]
    public void AnImageFolderTrainsAndItsConsumptionProjectPredictsImageFilesAsTheToolDoes()
    {
        string images = ImageFolder();
        string train = Succeeds(Run("train", "--data", images, "--image-size", "16x16", "--method", "dense", "--epochs", "10", "--output", "m.zip", "--project", "consume", "--threads", "1"));
        Assert.Contains("80% training, 20% test", train);
        string evaluation = Succeeds(Run("evaluate", "--model", "m.zip", "--data", images, "--image-size", "16x16", "--predictions", "tool.txt"));
        Assert.Contains("| rows             | 80", evaluation);
        double accuracy = double.Parse(evaluation.Split('\n').Single(l => l.Contains("accuracy (micro)")).Split('|')[2].Trim().TrimEnd('%'), CultureInfo.InvariantCulture);
        Assert.True(accuracy > 65, $"accuracy {accuracy}% on two classes");
        FailsWith(2, Run("train", "--data", images, "--image-size", "16", "--output", "m2.zip"), "--image-size '16' is not HEIGHTxWIDTH");

        // The project reads image files itself (resized and grey as the tool read them) and predicts the tool's labels.
        string project = Path.Combine(_folder, "consume");
        Succeeds(Run("dotnet", ["build", "-c", "Release", "-nologo", "-v", "quiet"], project));
        string[] files = [.. new[] { "horizontal", "vertical" }.SelectMany(label => Directory.GetFiles(Path.Combine(images, label)).Order(StringComparer.Ordinal))];
        string predicted = RunsAndCleansUp(project, files);
        Assert.Equal(File.ReadAllLines(Path.Combine(_folder, "tool.txt")), predicted.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]));
    }

    [Fact]
    public void TheConsumptionProjectBuildsAndPredictsTheToolsLabels()
    {
        Succeeds(Run("train", "--data", "data.csv", "--method", "dense", "--epochs", "6", "--output", "m.zip", "--project", "consume", "--threads", "1"));
        Succeeds(Run("evaluate", "--model", "m.zip", "--data", "data.csv", "--predictions", "tool.txt"));
        File.WriteAllLines(Path.Combine(_folder, "rows.csv"), File.ReadLines(Path.Combine(_folder, "data.csv")).Skip(1).Select(l => l[..l.LastIndexOf(',')]));
        string project = Path.Combine(_folder, "consume");
        Succeeds(Run("dotnet", ["build", "-c", "Release", "-nologo", "-v", "quiet"], project));
        string predicted = RunsAndCleansUp(project, Path.Combine(_folder, "rows.csv"));
        string[] labels = [.. predicted.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0])];
        Assert.Equal(File.ReadAllLines(Path.Combine(_folder, "tool.txt")), labels);
        Assert.Contains("a", labels);
    }
}
