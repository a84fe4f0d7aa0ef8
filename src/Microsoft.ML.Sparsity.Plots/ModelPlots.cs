using System.Globalization;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Models;
using ScottPlot;

namespace Microsoft.ML.Sparsity.Plots;

/// <summary>Pictures of one model: its training curves and its per-layer sparsity.</summary>
public static class ModelPlots
{
    /// <summary>
    /// Writes the training loss (left axis) and, when training had validation data, the validation accuracy (right axis)
    /// after each epoch of <see cref="NeuralNetworkModel.TrainingHistory"/>, with the sparsity when a method pruned.
    /// </summary>
    /// <exception cref="ArgumentException">The model has no training history (e.g. it was pruned, not trained).</exception>
    public static void SaveTrainingCurves(NeuralNetworkModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        var history = model.TrainingHistory;
        if (history.Count == 0) throw new ArgumentException("The model has no training history to plot.", nameof(model));
        double[] epochs = [.. history.Select(p => (double)p.Epoch)];
        var plot = PlotFile.New();
        var loss = plot.Add.Scatter(epochs, [.. history.Select(p => p.TrainingLoss)]);
        loss.LegendText = "training loss (left)";
        if (history.All(p => p.ValidationAccuracy is not null))
        {
            var accuracy = plot.Add.Scatter(epochs, [.. history.Select(p => p.ValidationAccuracy!.Value * 100)]);
            accuracy.LegendText = "validation accuracy, % (right)";
            accuracy.Axes.YAxis = plot.Axes.Right;
        }
        if (history.All(p => p.Sparsity is not null))
        {
            var sparsity = plot.Add.Scatter(epochs, [.. history.Select(p => p.Sparsity!.Value * 100)]);
            sparsity.LegendText = "sparsity, % (right)";
            sparsity.LinePattern = LinePattern.Dashed;
            sparsity.Axes.YAxis = plot.Axes.Right;
        }
        plot.XLabel("Epoch");
        plot.Axes.Left.Label.Text = "Training loss";
        plot.Axes.Right.Label.Text = "%";
        plot.Title("Training");
        plot.ShowLegend(Alignment.MiddleRight);
        PlotFile.Save(plot, path);
    }

    /// <summary>Writes one bar per pruned layer: its sparsity, labelled with the weights it keeps of its total.</summary>
    public static void SaveLayerSparsity(SparsityReport report, string path, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Layers.Count == 0) throw new ArgumentException("The report has no layer.", nameof(report));
        var plot = PlotFile.New();
        var bars = report.Layers.Select((l, i) => new Bar
        {
            Position = i,
            Value = l.Sparsity * 100,
            FillColor = new ScottPlot.Palettes.Category10().GetColor(0),
            Label = string.Create(CultureInfo.InvariantCulture, $"{l.NonZeros:N0} of {l.Count:N0}"),
        }).ToList();
        var plottable = plot.Add.Bars(bars);
        plottable.ValueLabelStyle.FontName = PlotFile.Font;
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, report.Layers.Count).Select(i => (double)i)], [.. report.Layers.Select(l => l.Name)]);
        plot.Axes.SetLimitsY(0, 110);
        plot.YLabel("Sparsity (% of the layer's weights that are zero)");
        plot.Title(title ?? string.Create(CultureInfo.InvariantCulture, $"Per-layer sparsity: {report.Sparsity * 100:0.0}% overall, {report.NonZeros:N0} of {report.Count:N0} weights kept"));
        PlotFile.Save(plot, path);
    }
}
