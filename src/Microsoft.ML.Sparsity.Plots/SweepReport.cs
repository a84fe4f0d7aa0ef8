using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Plots;

/// <summary>A sweep as a web page: the Pareto plots, the learning curves, the best model's per-layer sparsity and every trial in a table.</summary>
public static class SweepReport
{
    /// <summary>The page <see cref="Write"/> writes in its folder.</summary>
    public const string PageName = "index.html";

    /// <summary>
    /// Writes <c>index.html</c> and its pictures (<c>pareto-latency.png</c>, <c>pareto-bytes.png</c> when measured,
    /// <c>learning-curves.png</c>, <c>best-layers.png</c>) into <paramref name="folder"/> (created if missing). The page
    /// needs nothing but a browser.
    /// </summary>
    /// <param name="result">The sweep.</param>
    /// <param name="folder">Where to write.</param>
    /// <param name="title">The page's title.</param>
    /// <param name="testAccuracy">Test accuracies of completed trials by index, shown beside the validation accuracy when given.</param>
    /// <returns>The page's path.</returns>
    public static string Write(SweepResult result, string folder, string title, IReadOnlyDictionary<int, double>? testAccuracy = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        var c = CultureInfo.InvariantCulture;
        var images = new List<(string File, string Caption)>();
        bool completed = result.Trials.Any(t => t.Status == SweepTrialStatus.Completed);
        if (completed && result.Objectives.HasFlag(SweepObjectives.Latency))
        {
            SweepPlots.SavePareto(result, Path.Combine(folder, "pareto-latency.png"), SweepObjectives.Latency);
            images.Add(("pareto-latency.png", "Validation accuracy against single-prediction latency"));
        }
        if (completed && result.Objectives.HasFlag(SweepObjectives.Bytes))
        {
            SweepPlots.SavePareto(result, Path.Combine(folder, "pareto-bytes.png"), SweepObjectives.Bytes);
            images.Add(("pareto-bytes.png", "Validation accuracy against model file size"));
        }
        SweepPlots.SaveLearningCurves(result, Path.Combine(folder, "learning-curves.png"));
        images.Add(("learning-curves.png", "Learning curves"));
        if (completed)
        {
            var best = result.Best(SweepGoal.HighestAccuracy);
            ModelPlots.SaveLayerSparsity(best.GetModel().GetSparsityReport(), Path.Combine(folder, "best-layers.png"), $"Trial {best.Index} (the most accurate): per-layer sparsity");
            images.Add(("best-layers.png", $"The most accurate trial, #{best.Index}: per-layer sparsity"));
        }

        static string E(object? text) => WebUtility.HtmlEncode(Convert.ToString(text, CultureInfo.InvariantCulture) ?? "");
        var html = new StringBuilder();
        html.Append(c, $"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>{E(title)}</title>
            <style>
            body {"{"} font-family: "DejaVu Sans", sans-serif; margin: 2em; color: #222; {"}"}
            table {"{"} border-collapse: collapse; font-size: 0.9em; {"}"}
            th, td {"{"} border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; {"}"}
            td.text {"{"} text-align: left; {"}"}
            tr.front {"{"} background: #fde8e8; font-weight: bold; {"}"}
            tr.stopped {"{"} color: #888; {"}"}
            tr.failed {"{"} color: #b00; {"}"}
            figure {"{"} display: inline-block; margin: 0 1em 1em 0; {"}"}
            img {"{"} max-width: 100%; border: 1px solid #eee; {"}"}
            </style>
            </head>
            <body>
            <h1>{E(title)}</h1>
            <p>{result.Trials.Count} trials: {result.Trials.Count(t => t.Status == SweepTrialStatus.Completed)} completed, {result.Trials.Count(t => t.Status == SweepTrialStatus.Stopped)} stopped early, {result.Trials.Count(t => t.Status == SweepTrialStatus.Failed)} failed. The Pareto front ({result.ParetoFront.Count} trials, highlighted) trades validation accuracy against {E(result.Objectives == SweepObjectives.Accuracy ? "nothing else" : result.Objectives.ToString().ToLowerInvariant().Replace(",", " and", StringComparison.Ordinal))}.</p>

            """);
        foreach (var (file, caption) in images)
            html.Append(c, $"<figure><img src=\"{E(file)}\" alt=\"{E(caption)}\"><figcaption>{E(caption)}</figcaption></figure>\n");
        html.Append("<h2>Trials</h2>\n<table>\n<tr><th>#</th><th>settings</th><th>status</th><th>epochs</th><th>validation</th>");
        if (testAccuracy is not null) html.Append("<th>test</th>");
        html.Append("<th>sparsity</th><th>latency (µs)</th><th>bytes</th><th>error</th></tr>\n");
        foreach (var t in result.Trials)
        {
            string row = result.ParetoFront.Contains(t) ? "front" : t.Status switch { SweepTrialStatus.Completed => "", SweepTrialStatus.Stopped => "stopped", _ => "failed" };
            html.Append(c, $"<tr class=\"{row}\"><td>{t.Index}</td><td class=\"text\">{E(t.Settings)}</td><td class=\"text\">{t.Status}</td><td>{t.ValidationCurve.Count}</td><td>{Sweeps.Percentages.Format(t.ValidationAccuracy)}</td>");
            if (testAccuracy is not null) html.Append(c, $"<td>{(testAccuracy.TryGetValue(t.Index, out double test) ? Sweeps.Percentages.Format(test) : "")}</td>");
            html.Append(c, $"<td>{(t.Sparsity is { } s ? Sweeps.Percentages.Format(s, "0.0") : "")}</td><td>{t.LatencyMicroseconds?.ToString("0.00", c)}</td><td>{t.Bytes?.ToString("N0", c)}</td><td class=\"text\">{E(t.Error)}</td></tr>\n");
        }
        html.Append("</table>\n</body>\n</html>\n");
        string page = Path.Combine(folder, PageName);
        Serialization.AtomicFile.Write(page, stream => stream.Write(new UTF8Encoding(false).GetBytes(html.ToString())));
        return page;
    }
}
