// The sample's plotting mode: test accuracy against density, one line per sparsity method, from the CSV that --csv
// writes (one row per trained model). ScottPlot draws it; the plot is the sample's business, so the package itself
// keeps no graphics dependency.
// Usage: dotnet run -c Release --project samples/FashionMnist -- --plot CSV --out FILE.svg|FILE.png [--out ...]
//        [--allocation erk|uniform-half|...] [--model lenet|cnn|...]
using System.Globalization;
using System.Text;
using ScottPlot;

internal static class AccuracyPlot
{
    private const string Usage = "Plot options: --plot CSV --out FILE.svg|FILE.png (one or more) [--allocation A (default erk)] [--model M (default: the file's only model)].";

    public static bool IsRequested(string[] args) => args.Contains("--plot");

    /// <summary>Reads the CSV, draws the plot and writes it; returns the process exit code (1 for bad input).</summary>
    public static int Run(string[] args)
    {
        try
        {
            var (csv, outputs, allocation, model) = ParseArguments(args);
            var runs = AccuracyCsv.Read(csv);
            var selection = AccuracySelection.Select(csv, runs, allocation, model);
            foreach (var series in selection.Series)
                foreach (var p in series.Points)
                    Console.WriteLine(FormattableString.Invariant($"{series.Method,-7} density {100 * p.Density:0.#}%: mean {p.Mean:F2}%, min {p.Min:F2}%, max {p.Max:F2}% (seeds {string.Join(", ", p.Seeds)})"));
            var plot = Draw(selection);
            foreach (string output in outputs)
            {
                AtomicWrite.Bytes(output, Image(plot, Path.GetExtension(output)));
                Console.WriteLine($"Wrote {output}.");
            }
            return 0;
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }
    }

    private static (string Csv, List<string> Outputs, string Allocation, string? Model) ParseArguments(string[] args)
    {
        string? csv = null, model = null;
        var outputs = new List<string>();
        string allocation = "erk";
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value. {Usage}");
            switch (args[i])
            {
                case "--plot": csv = Value(); break;
                case "--out": outputs.Add(Value()); break;
                case "--allocation": allocation = Value(); break;
                case "--model": model = Value(); break;
                default: throw new ArgumentException($"Unknown argument '{args[i]}' with --plot. {Usage}");
            }
        }
        if (csv is null) throw new ArgumentException($"--plot needs the CSV file. {Usage}");
        if (outputs.Count == 0) throw new ArgumentException($"--out is required with --plot. {Usage}");
        foreach (string output in outputs)
        {
            if (Path.GetExtension(output) is not (".svg" or ".png")) throw new ArgumentException($"--out must name a .svg or .png file, not '{output}'.");
            if (Path.GetDirectoryName(Path.GetFullPath(output)) is { } folder && !Directory.Exists(folder))
                throw new ArgumentException($"--out {output}: the folder '{folder}' does not exist.");
        }
        return (csv, outputs, allocation, model);
    }

    private static readonly Dictionary<string, (string Label, MarkerShape Marker)> Styles = new()
    {
        ["gmp"] = ("GMP", MarkerShape.FilledCircle),
        ["random"] = ("Static random", MarkerShape.FilledSquare),
        ["set"] = ("SET", MarkerShape.FilledTriangleUp),
        ["rigl"] = ("RigL", MarkerShape.FilledDiamond),
        ["cgap"] = ("C-GaP", MarkerShape.FilledTriangleDown),
        ["pgap"] = ("P-GaP", MarkerShape.OpenCircle),
    };

    private static Plot Draw(AccuracySelection s)
    {
        // Without the font, SkiaSharp on Linux silently draws a plot with no text at all.
        const string font = "DejaVu Sans";
        if (Fonts.GetTypeface(font, false, false).FamilyName != font)
            throw new InvalidOperationException($"The plot's font {font} is not installed (SkiaSharp looks in /usr/share/fonts): install Debian's fonts-dejavu-core, as build/plot.sh does.");
        var plot = new Plot();
        plot.Font.Set(font);
        var palette = new ScottPlot.Palettes.Category10();
        if (s.Dense is { } dense)
        {
            var band = plot.Add.VerticalSpan(dense.Min, dense.Max, Colors.Gray.WithAlpha(0.25));
            band.LineWidth = 0;
            var line = plot.Add.HorizontalLine(dense.Mean, 1.5f, Colors.Black, LinePattern.Dashed);
            line.LegendText = $"Dense{SeedNote(dense.Seeds, s.Seeds)}";
        }
        // Methods at the same density are nudged sideways (in log units) so that their error bars do not hide each other.
        var sparse = s.Series.Where(x => x.Method != "dense").ToList();
        for (int m = 0; m < sparse.Count; m++)
        {
            var series = sparse[m];
            double nudge = (m - (sparse.Count - 1) / 2.0) * 0.012;
            double[] xs = series.Points.Select(p => Math.Log10(100 * p.Density) + nudge).ToArray();
            double[] ys = series.Points.Select(p => p.Mean).ToArray();
            var color = palette.GetColor(AccuracyCsv.Methods.IndexOf(series.Method) - 1);
            var (label, marker) = Styles[series.Method];
            var bars = new ScottPlot.Plottables.ErrorBar(xs, ys, null, null,
                series.Points.Select(p => p.Max - p.Mean).ToArray(), series.Points.Select(p => p.Mean - p.Min).ToArray());
            plot.Add.Plottable(bars);
            bars.Color = color;
            bars.CapSize = 5;
            var scatter = plot.Add.Scatter(xs, ys, color);
            scatter.MarkerShape = marker;
            scatter.MarkerSize = 8;
            scatter.LineWidth = 1.5f;
            scatter.LegendText = label + SeedNote(series.Points.SelectMany(p => p.Seeds).Distinct().Order().ToArray(), s.Seeds);
        }

        double[] densities = sparse.SelectMany(x => x.Points).Select(p => 100 * p.Density).ToArray();
        double left = Math.Log10(densities.Min()) - 0.1, right = Math.Log10(densities.Max()) + 0.1;
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (double d in new[] { 0.5, 1, 2, 5, 10, 20, 50, 100 })
            if (Math.Log10(d) >= left && Math.Log10(d) <= right) ticks.AddMajor(Math.Log10(d), FormattableString.Invariant($"{d}%\n({100 - d}% sparse)"));
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = y => y.ToString("0.0", CultureInfo.InvariantCulture) };
        plot.Axes.AutoScale();
        plot.Axes.SetLimitsX(left, right);
        plot.XLabel("Density (% of weights kept, log scale)");
        plot.YLabel("Test accuracy (%)");
        plot.Title($"{s.ModelName} on Fashion-MNIST, {s.Allocation}, {s.Epochs} epochs, seeds {string.Join(", ", s.Seeds)}\nmarkers: mean over seeds; bars and band: min–max", 15);
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    private static byte[] Image(Plot plot, string extension)
    {
        const int width = 900, height = 520;
        return extension == ".svg" ? Encoding.UTF8.GetBytes(plot.GetSvgXml(width, height)) : plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>" (seed 1)" when a method was run with other seeds than the title names, else nothing.</summary>
    private static string SeedNote(int[] seeds, int[] all) =>
        seeds.SequenceEqual(all) ? "" : $" (seed{(seeds.Length == 1 ? "" : "s")} {string.Join(", ", seeds)})";
}

/// <summary>One row of the CSV: one trained model's test accuracy; <see cref="Line"/> is its line in the file (from 1).</summary>
internal sealed record AccuracyRun(string Model, string Allocation, string Method, double Sparsity, int Seed, int Epochs, double Accuracy, int Line);

/// <summary>Reads the CSV that the sample's --csv writes and checks every field.</summary>
internal static class AccuracyCsv
{
    public const string Header = "model,allocation,method,sparsity,seed,epochs,accuracy";

    /// <summary>The methods the CSV may name, in the order the plot draws them (and takes their colours).</summary>
    public static readonly List<string> Methods = ["dense", "gmp", "random", "set", "rigl", "cgap", "pgap"];

    public static List<AccuracyRun> Read(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: no such file (--plot expects the CSV that --csv writes, with the header '{Header}').");
        string[] lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0].Trim() != Header)
            throw new InvalidDataException($"{path}, line 1: expected the header '{Header}', found '{(lines.Length == 0 ? "" : lines[0])}'.");
        var runs = new List<AccuracyRun>();
        for (int i = 1; i < lines.Length; i++)
            if (lines[i].Trim().Length > 0) runs.Add(Parse(lines[i], $"{path}, line {i + 1}", i + 1));
        if (runs.Count == 0) throw new InvalidDataException($"{path}: the header is there but no rows follow it.");
        return runs;
    }

    private static AccuracyRun Parse(string text, string where, int line)
    {
        string[] f = text.Split(',').Select(x => x.Trim()).ToArray();
        if (f.Length != 7) throw new InvalidDataException($"{where}: expected 7 comma-separated fields ({Header}), found {f.Length} in '{text}'.");
        if (f[0].Length == 0) throw new InvalidDataException($"{where}: model is empty.");
        if (f[1].Length == 0) throw new InvalidDataException($"{where}: allocation is empty.");
        if (!Methods.Contains(f[2])) throw new InvalidDataException($"{where}: method must be one of {string.Join(", ", Methods)}, not '{f[2]}'.");
        double sparsity = Number(f[3], "sparsity", "a fraction in [0, 1), e.g. 0.9", v => v >= 0 && v < 1, where);
        if ((f[2] == "dense") != (sparsity == 0))
            throw new InvalidDataException($"{where}: sparsity must be {(f[2] == "dense" ? "0 for dense" : $"above 0 for {f[2]}")}, not '{f[3]}'.");
        int seed = (int)Number(f[4], "seed", "a whole number", v => v == Math.Round(v) && Math.Abs(v) <= int.MaxValue, where);
        int epochs = (int)Number(f[5], "epochs", "a whole number above 0", v => v == Math.Round(v) && v >= 1 && v <= int.MaxValue, where);
        double accuracy = Number(f[6], "accuracy", "a percentage in [0, 100]", v => v >= 0 && v <= 100, where);
        return new AccuracyRun(f[0], f[1], f[2], sparsity, seed, epochs, accuracy, line);
    }

    private static double Number(string field, string name, string expected, Func<double, bool> valid, string where) =>
        double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && valid(v)
            ? v
            : throw new InvalidDataException($"{where}: {name} must be {expected}, not '{field}'.");
}

/// <summary>Mean, minimum and maximum test accuracy over seeds at one density.</summary>
internal sealed record AccuracyPoint(double Density, double Mean, double Min, double Max, int[] Seeds);

internal sealed record AccuracySeries(string Method, AccuracyPoint[] Points);

/// <summary>
/// The runs of one model and allocation, grouped per method and density. Dense runs are taken whatever their allocation
/// column says: a dense model has no allocation, and the sample records the one it was run with.
/// </summary>
internal sealed record AccuracySelection(string ModelName, string Allocation, int Epochs, int[] Seeds, AccuracySeries[] Series)
{
    public AccuracyPoint? Dense => Series.FirstOrDefault(x => x.Method == "dense")?.Points[0];

    public static AccuracySelection Select(string path, List<AccuracyRun> runs, string allocation, string? model)
    {
        string[] models = runs.Select(r => r.Model).Distinct().ToArray();
        model ??= models.Length == 1 ? models[0] : throw new ArgumentException($"{path} holds the models {string.Join(", ", models)}: choose one with --model.");
        if (!models.Contains(model)) throw new ArgumentException($"--model {model}: {path} has no such model; it has {string.Join(", ", models)}.");
        var ofModel = runs.Where(r => r.Model == model).ToList();
        var chosen = ofModel.Where(r => r.Method == "dense" || r.Allocation == allocation).ToList();
        if (!chosen.Any(r => r.Method != "dense"))
            throw new ArgumentException($"--allocation {allocation}: {path} has no sparse {model} runs with that allocation; it has {string.Join(", ", ofModel.Where(r => r.Method != "dense").Select(r => r.Allocation).Distinct())}.");

        // A run listed twice (the ERK and uniform recipes each train dense, a re-run appended) counts once, if it agrees.
        var unique = new List<AccuracyRun>();
        foreach (var same in chosen.GroupBy(r => (r.Method, r.Sparsity, r.Seed)))
        {
            var first = same.First();
            if (same.FirstOrDefault(r => r.Accuracy != first.Accuracy || r.Epochs != first.Epochs) is { } other)
                throw new InvalidDataException($"{path}, lines {first.Line} and {other.Line}: the same run ({model}, {first.Method}, sparsity {first.Sparsity.ToString(CultureInfo.InvariantCulture)}, seed {first.Seed}) with different epochs or accuracy.");
            unique.Add(first);
        }
        if (unique.FirstOrDefault(r => r.Epochs != unique[0].Epochs) is { } mixed)
            throw new InvalidDataException($"{path}, lines {unique[0].Line} and {mixed.Line}: {unique[0].Epochs} and {mixed.Epochs} epochs; one plot takes one recipe.");

        var series = unique.GroupBy(r => r.Method).OrderBy(g => AccuracyCsv.Methods.IndexOf(g.Key))
            .Select(g => new AccuracySeries(g.Key, g.GroupBy(r => r.Sparsity).OrderByDescending(d => d.Key).Select(d => new AccuracyPoint(
                1 - d.Key, d.Average(r => r.Accuracy), d.Min(r => r.Accuracy), d.Max(r => r.Accuracy), d.Select(r => r.Seed).Order().ToArray())).ToArray()))
            .ToArray();
        int[] seeds = unique.Select(r => r.Seed).Distinct().Order().ToArray();
        string modelName = model switch { "lenet" => "LeNet-300-100", "cnn" => "small CNN", _ => model };
        string allocationName = allocation switch { "erk" => "ERK", "uniform-half" => "uniform, output layer at s/2", _ => allocation };
        return new AccuracySelection(modelName, allocationName, unique[0].Epochs, seeds, series);
    }
}
