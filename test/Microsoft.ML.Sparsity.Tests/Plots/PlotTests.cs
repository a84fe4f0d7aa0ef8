using System.Xml.Linq;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Plots;
using Microsoft.ML.Sparsity.Sweeps;
using Microsoft.ML.Sparsity.Tests.Masks;
using SkiaSharp;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Plots;

/// <summary>The plots (ScottPlot) and the sweep's HTML report, rendered by headless Chromium.</summary>
[Trait("Tier", "NativeOnly")]
public sealed class PlotTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("plots").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static readonly Lazy<SweepResult> Sweep = new(() =>
    {
        var ml = new MLContext(seed: 1);
        var split = ml.Data.TrainTestSplit(MaskedTrainingTests.SyntheticData(768), 0.25, seed: 1);
        return ml.Sparsity().CreateSweep(new SparsitySweepOptions
        {
            SearchSpace = new SweepSearchSpace { Methods = [SweepMethod.Dense, SweepMethod.GradualMagnitude, SweepMethod.Random], Sparsities = [0.5, 0.9], Epochs = [4] },
            Layers = [Layers.Dense(64), Layers.ReLU(), Layers.Dense(32), Layers.ReLU()],
            FirstRungEpochs = 1,
            MaxTrials = 8,
        }).Run(split.TrainSet, split.TestSet);
    });

    [Fact]
    public void TheHeatMapShadesEachChannelAndOutlinesTheSelected()
    {
        string path = Path.Combine(_folder, "heat.svg");
        FrequencyPlots.SaveHeatMap([.. Enumerable.Range(0, 48).Select(c => c / 47.0)], [3, 17, 40], 4, path);
        string svg = File.ReadAllText(path);
        XDocument.Parse(svg);
        Assert.Equal(3, svg.Split("stroke=\"#D62728\"").Length - 1);          // the selected channels, outlined in red
        Assert.Contains("fill=\"#08306B\"", svg);                              // channel 47, always on: dark blue
        Assert.Contains(">\n\t\t\t\t85\n", svg.Replace("\r", ""));             // channel 40: on 40/47 = 85%
        Assert.Equal(48, svg.Split("font-size=\"10\"").Length - 1);            // one percentage per cell
        Assert.Throws<ArgumentException>(() => FrequencyPlots.SaveHeatMap(new double[47], [], 4, path));
        Assert.Throws<ArgumentException>(() => FrequencyPlots.SaveHeatMap(new double[48], [48], 4, path));
    }

    [Fact]
    public void SweepPlotsAndModelPlotsArePngsOfTheirSize()
    {
        var result = Sweep.Value;
        string pareto = Path.Combine(_folder, "pareto.png"), curves = Path.Combine(_folder, "curves.png"), layers = Path.Combine(_folder, "layers.png"), training = Path.Combine(_folder, "training.png");
        SweepPlots.SavePareto(result, pareto, SweepObjectives.Bytes);
        SweepPlots.SaveLearningCurves(result, curves);
        var model = result.Best(SweepGoal.HighestAccuracy).GetModel();
        ModelPlots.SaveLayerSparsity(model.GetSparsityReport(), layers);
        ModelPlots.SaveTrainingCurves(model, training);
        foreach (var (file, width, height) in new[] { (pareto, 900, 520), (curves, 1100, 560), (layers, 900, 520), (training, 900, 520) })
        {
            using var bitmap = SKBitmap.Decode(file);
            Assert.Equal((width, height), (bitmap.Width, bitmap.Height));
        }
        Assert.Throws<ArgumentException>(() => SweepPlots.SavePareto(result, pareto, SweepObjectives.Accuracy));
        Assert.Throws<ArgumentException>(() => SweepPlots.SavePareto(result, Path.Combine(_folder, "pareto.jpg")));
    }

    [Fact]
    public void TheSweepReportRendersInAHeadlessBrowser()
    {
        var result = Sweep.Value;
        string page = SweepReport.Write(result, _folder, "A <small> sweep", result.Trials.Where(t => t.Status == SweepTrialStatus.Completed).ToDictionary(t => t.Index, _ => 0.5));
        string html = File.ReadAllText(page);
        Assert.Contains("<title>A &lt;small&gt; sweep</title>", html);
        Assert.Equal(result.Trials.Count + 1, html.Split("<tr").Length - 1);
        Assert.Equal(result.ParetoFront.Count, html.Split("<tr class=\"front\">").Length - 1);
        foreach (string image in new[] { "pareto-latency.png", "pareto-bytes.png", "learning-curves.png", "best-layers.png" })
        {
            Assert.Contains($"<img src=\"{image}\"", html);
            Assert.True(File.Exists(Path.Combine(_folder, image)), image);
        }

        // Chromium (build/setup.sh installs Debian's) draws the page; the screenshot shows the plots: the front's pure red.
        Assert.True(File.Exists("/usr/bin/chromium"), "Chromium is missing: run build/setup.sh, which installs Debian's chromium.");
        string shot = Path.Combine(_folder, "shot.png");
        var chromium = ChildProcesses.Run("/usr/bin/chromium",
            ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", $"--screenshot={shot}", "--window-size=1280,1800", new Uri(page).AbsoluteUri], timeoutMilliseconds: 120_000);
        Assert.True(File.Exists(shot), $"no screenshot (exit {chromium.Exit}): {chromium.Error}");
        using var bitmap = SKBitmap.Decode(shot);
        Assert.Equal((1280, 1800), (bitmap.Width, bitmap.Height));
        int red = 0, ink = 0;
        for (int y = 0; y < bitmap.Height; y += 2)
        for (int x = 0; x < bitmap.Width; x += 2)
        {
            var pixel = bitmap.GetPixel(x, y);
            if (pixel.Red > 230 && pixel.Green < 40 && pixel.Blue < 40) red++;
            if (pixel.Red + pixel.Green + pixel.Blue < 3 * 128) ink++;
        }
        Assert.True(red > 50, $"{red} red pixels: the Pareto plots did not render");
        Assert.True(ink > 2000, $"{ink} dark pixels: the page has almost no text or lines");
    }
}
