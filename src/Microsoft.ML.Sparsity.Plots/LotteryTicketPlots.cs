using System.Globalization;
using Microsoft.ML.Sparsity.LotteryTickets;
using ScottPlot;

namespace Microsoft.ML.Sparsity.Plots;

/// <summary>Lottery-ticket results: test accuracy at the early-stop point against the weights remaining.</summary>
public static class LotteryTicketPlots
{
    /// <summary>
    /// Writes test accuracy at the early-stop point against the fraction of weights remaining (log scale, 100% on the
    /// left), one line per (reset target, variant) through the mean over the runs, with the range over the runs as
    /// error bars. PNG or SVG by the extension, written atomically.
    /// </summary>
    /// <param name="runs">The runs, e.g. the seeds and reset targets of one recipe.</param>
    /// <param name="path">The .png or .svg file.</param>
    /// <param name="title">The title; null: a default naming the seeds.</param>
    /// <exception cref="ArgumentException">No runs, or a run has no test accuracy (it was run without test data).</exception>
    public static void Save(IEnumerable<LotteryTicketResult> runs, string path, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(runs);
        Save([.. runs.Select(r => new Run(r.Seed, r.ResetName, r.Levels))], path, title);
    }

    /// <summary>
    /// The plot of <see cref="Save(IEnumerable{LotteryTicketResult}, string, string?)"/> from the runs that
    /// <see cref="LotteryTicketResult.SaveJson(string, IEnumerable{LotteryTicketResult})"/> wrote to <paramref name="json"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not such a JSON array; the message names it.</exception>
    public static void SaveFromJson(string json, string path, string? title = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(json);
        List<LotteryTicketResult.JsonRun>? runs;
        try
        {
            runs = System.Text.Json.JsonSerializer.Deserialize<List<LotteryTicketResult.JsonRun>>(File.ReadAllText(json), Serialization.ModelManifest.Json);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidDataException($"'{json}' is not a lottery-ticket results file (LotteryTicketResult.SaveJson's): {e.Message}", e);
        }
        if (runs is null || runs.Any(r => r?.Levels is null)) throw new InvalidDataException($"'{json}' holds no runs with levels.");
        Save([.. runs.Select(r => new Run(r.Seed, LotteryTicketResult.NameOf(r.Reset, r.RewindStep), r.Levels!))], path, title);
    }

    private sealed record Run(int Seed, string ResetName, IReadOnlyList<LotteryTicketLevelResult> Levels);

    private static void Save(List<Run> list, string path, string? title)
    {
        if (list.Count == 0) throw new ArgumentException("No runs to plot.", "runs");
        if (list.Any(r => r.Levels.Any(l => l.EarlyStopTestAccuracy is null)))
            throw new ArgumentException("A plot shows test accuracy, and a run has none: run it with test data.", "runs");
        bool severalResets = list.Select(r => r.ResetName).Distinct().Count() > 1;
        var plot = PlotFile.New();
        var palette = new ScottPlot.Palettes.Category10();
        int colour = 0;
        var series = list.SelectMany(run => run.Levels.Select(level => (Reset: run.ResetName, Level: level)))
            .GroupBy(x => (x.Reset, x.Level.Variant))
            .OrderBy(g => list.FindIndex(r => r.ResetName == g.Key.Reset)).ThenBy(g => g.Key.Variant);
        var remaining = new List<double>();
        foreach (var s in series)
        {
            var points = s.GroupBy(x => x.Level.Level).OrderBy(g => g.Key).Select(g => g.Select(x => x.Level).ToList()).ToList();
            double[] xs = [.. points.Select(p => Math.Log10(p.Average(l => l.WeightsRemaining) * 100))];
            double[] ys = [.. points.Select(p => p.Average(l => l.EarlyStopTestAccuracy!.Value) * 100)];
            remaining.AddRange(points.Select(p => p.Average(l => l.WeightsRemaining) * 100));
            var color = palette.GetColor(colour++);
            var bars = new ScottPlot.Plottables.ErrorBar(xs, ys, null, null,
                [.. points.Select((p, i) => p.Max(l => l.EarlyStopTestAccuracy!.Value) * 100 - ys[i])],
                [.. points.Select((p, i) => ys[i] - p.Min(l => l.EarlyStopTestAccuracy!.Value) * 100)]) { Color = color, CapSize = 4 };
            plot.Add.Plottable(bars);
            var line = plot.Add.Scatter(xs, ys, color);
            line.MarkerSize = 6;
            line.LegendText = severalResets ? $"{s.Key.Reset}, {Label(s.Key.Variant)}" : Label(s.Key.Variant);
        }
        SweepPlots.LogTicks(plot.Axes.Bottom, remaining, v => v.ToString("0.##", CultureInfo.InvariantCulture) + "%");
        plot.Axes.AutoScale();
        plot.Axes.SetLimitsX(Math.Log10(remaining.Max()) + 0.1, Math.Log10(remaining.Min()) - 0.1); // 100% on the left
        plot.XLabel("Weights remaining (%, log scale)");
        plot.YLabel("Test accuracy at early stop (%)");
        plot.Title(title ?? $"Iterative magnitude pruning (seeds {string.Join(", ", list.Select(r => r.Seed).Distinct())})");
        plot.ShowLegend(Alignment.LowerLeft);
        PlotFile.Save(plot, path);
    }

    private static string Label(LotteryTicketVariant variant) => variant switch
    {
        LotteryTicketVariant.Ticket => "ticket",
        LotteryTicketVariant.RandomReinitialization => "random reinit",
        _ => "random mask",
    };
}
