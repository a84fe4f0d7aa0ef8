using System.Globalization;
using Microsoft.ML.Sparsity.Sweeps;
using ScottPlot;

namespace Microsoft.ML.Sparsity.Plots;

/// <summary>Pictures of a sweep: the Pareto front of accuracy against latency or bytes, and every trial's learning curve.</summary>
public static class SweepPlots
{
    /// <summary>
    /// Writes validation accuracy against single-prediction latency (<paramref name="axis"/> = Latency) or file size
    /// (Bytes), log scale: every completed trial a grey dot, the front's trials coloured and joined in order, each
    /// labelled with its index. PNG or SVG by the extension, written atomically.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="axis"/> is not one objective the sweep measured.</exception>
    public static void SavePareto(SweepResult result, string path, SweepObjectives axis = SweepObjectives.Latency)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (axis is not (SweepObjectives.Latency or SweepObjectives.Bytes) || !result.Objectives.HasFlag(axis))
            throw new ArgumentException($"Plot against Latency or Bytes, an objective the sweep measured ({result.Objectives}).", nameof(axis));
        double X(SweepTrial t) => axis == SweepObjectives.Latency ? t.LatencyMicroseconds!.Value : t.Bytes!.Value;
        var completed = result.Trials.Where(t => t.Status == SweepTrialStatus.Completed).ToList();
        if (completed.Count == 0) throw new ArgumentException("The sweep has no completed trial to plot.", nameof(result));
        var plot = PlotFile.New();
        var others = completed.Except(result.ParetoFront).ToList();
        if (others.Count > 0)
        {
            var rest = plot.Add.Scatter(others.Select(t => Math.Log10(X(t))).ToArray(), others.Select(t => t.ValidationAccuracy * 100).ToArray(), Colors.Gray);
            rest.LineWidth = 0;
            rest.MarkerSize = 7;
            rest.LegendText = "other completed trials";
        }
        var front = result.ParetoFront.OrderBy(X).ToList();
        var line = plot.Add.Scatter(front.Select(t => Math.Log10(X(t))).ToArray(), front.Select(t => t.ValidationAccuracy * 100).ToArray(), Colors.Red);
        line.MarkerSize = 9;
        line.LineWidth = 1.5f;
        line.ConnectStyle = ConnectStyle.StepVertical;
        line.LegendText = "Pareto front";
        foreach (var t in front)
        {
            var label = plot.Add.Text($"#{t.Index} {Short(t.Settings)}", Math.Log10(X(t)), t.ValidationAccuracy * 100);
            label.LabelFontSize = 11;
            label.LabelOffsetX = 6;
            label.LabelOffsetY = -6;
            label.LabelFontName = PlotFile.Font;
        }
        LogTicks(plot.Axes.Bottom, completed.Select(X), axis == SweepObjectives.Latency ? v => v.ToString("G3", CultureInfo.InvariantCulture) + " µs" : Bytes);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = y => y.ToString("0.0", CultureInfo.InvariantCulture) };
        plot.XLabel(axis == SweepObjectives.Latency ? "Single-prediction latency on this machine (log scale)" : "Model file size (log scale)");
        plot.YLabel("Validation accuracy (%)");
        plot.Title($"Sweep: {completed.Count} completed of {result.Trials.Count} trials; the front has {front.Count}");
        plot.ShowLegend(Alignment.LowerRight);
        PlotFile.Save(plot, path);
    }

    /// <summary>Writes each trial's validation accuracy after every epoch: stopped trials grey, completed ones coloured, the front's thicker.</summary>
    public static void SaveLearningCurves(SweepResult result, string path)
    {
        ArgumentNullException.ThrowIfNull(result);
        var plot = PlotFile.New();
        var palette = new ScottPlot.Palettes.Category10();
        int colour = 0;
        foreach (var trial in result.Trials.OrderBy(t => t.Status == SweepTrialStatus.Completed))
        {
            if (trial.ValidationCurve.Count == 0) continue;
            var curve = plot.Add.Scatter(Enumerable.Range(1, trial.ValidationCurve.Count).Select(e => (double)e).ToArray(), trial.ValidationCurve.Select(a => a * 100).ToArray());
            curve.MarkerSize = 0;
            if (trial.Status == SweepTrialStatus.Completed)
            {
                curve.Color = palette.GetColor(colour++);
                curve.LineWidth = result.ParetoFront.Contains(trial) ? 2.5f : 1.2f;
                curve.LegendText = $"#{trial.Index} {Short(trial.Settings)}";
            }
            else
            {
                curve.Color = Colors.Gray.WithAlpha(0.5);
                curve.LineWidth = 1;
            }
        }
        plot.XLabel(result.Trials.Any(t => t.Settings.Method == SweepMethod.LotteryTicket) ? "Epoch (a lottery ticket's points are its pruning levels)" : "Epoch");
        plot.YLabel("Validation accuracy (%)");
        plot.Title("Learning curves: completed trials in colour (the front's thicker), stopped ones grey");
        plot.ShowLegend(Edge.Right);
        PlotFile.Save(plot, path, 1100, 560);
    }

    /// <summary>"GMP 90% ×1.5": a trial's settings in a few characters.</summary>
    internal static string Short(TrialSettings s)
    {
        var c = CultureInfo.InvariantCulture;
        string what = s.Method switch
        {
            SweepMethod.Dense => "dense",
            SweepMethod.NMFromScratch => $"N:M {s.Pattern}",
            SweepMethod.GradualMagnitude => "GMP " + (s.Sparsity!.Value * 100).ToString("0.#", c) + "%",
            _ => $"{s.Method} " + (s.Sparsity!.Value * 100).ToString("0.#", c) + "%",
        };
        return s.Width != 1 ? what + " ×" + s.Width.ToString("0.##", c) : what;
    }

    private static string Bytes(double b) =>
        b >= 1e6 ? (b / 1e6).ToString("G3", CultureInfo.InvariantCulture) + " MB" : (b / 1e3).ToString("G3", CultureInfo.InvariantCulture) + " kB";

    /// <summary>Ticks at 1, 2 and 5 × 10^k over the log10 range of <paramref name="values"/>, labelled with the values.</summary>
    internal static void LogTicks(IAxis axis, IEnumerable<double> values, Func<double, string> label)
    {
        double low = values.Min(), high = values.Max();
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int k = (int)Math.Floor(Math.Log10(low)) - 1; k <= (int)Math.Ceiling(Math.Log10(high)) + 1; k++)
            foreach (double m in new[] { 1.0, 2, 5 })
            {
                double v = m * Math.Pow(10, k);
                if (v >= low / 1.5 && v <= high * 1.5) ticks.AddMajor(Math.Log10(v), label(v));
            }
        axis.TickGenerator = ticks;
    }
}
