using System.Globalization;
using Microsoft.ML.Sparsity.FrequencyDomain;
using ScottPlot;

namespace Microsoft.ML.Sparsity.Plots;

/// <summary>The frequency-domain transform's channel selection as a heat map.</summary>
public static class FrequencyPlots
{
    private static readonly string[] ComponentNames = ["Y", "Cb", "Cr"];

    /// <summary>
    /// Writes one B×B grid per colour component (u down, v across), cell (u, v) shaded from white (never on) to dark
    /// blue (always on) by how often the learned gate kept that channel, with the percentage written in it; the selected
    /// channels are outlined in red. PNG or SVG by the extension, written atomically.
    /// </summary>
    /// <exception cref="ArgumentException">The transform's channels were not chosen by the gate (it has no selection frequencies).</exception>
    public static void SaveHeatMap(FrequencyDomainTransformer transform, string path)
    {
        ArgumentNullException.ThrowIfNull(transform);
        var frequencies = transform.SelectionFrequencies
            ?? throw new ArgumentException("This transform's channels were not selected by the gate, so it has no selection frequencies to draw.", nameof(transform));
        SaveHeatMap(frequencies, transform.SelectedChannels, transform.BlockSize, path);
    }

    /// <summary>The heat map of per-channel <paramref name="frequencies"/> in [0, 1], channel index = component·B² + u·B + v, <paramref name="selected"/> outlined.</summary>
    /// <exception cref="ArgumentException">The frequencies are not whole B×B grids of one to three components, or a selected channel is out of range.</exception>
    public static void SaveHeatMap(IReadOnlyList<double> frequencies, IReadOnlyList<int> selected, int blockSize, string path)
    {
        ArgumentNullException.ThrowIfNull(frequencies);
        ArgumentNullException.ThrowIfNull(selected);
        int b = blockSize, grid = b * b;
        if (b < 1 || frequencies.Count == 0 || frequencies.Count % grid != 0 || frequencies.Count / grid > ComponentNames.Length)
            throw new ArgumentException($"{frequencies.Count} frequencies are not one to three {b}×{b} grids.", nameof(frequencies));
        if (selected.Any(c => c < 0 || c >= frequencies.Count))
            throw new ArgumentException($"A selected channel is outside 0 … {frequencies.Count - 1}.", nameof(selected));
        int components = frequencies.Count / grid;
        var chosen = selected.ToHashSet();
        var plot = PlotFile.New();
        for (int k = 0; k < components; k++)
        {
            double left = k * (b + 1.5);
            var name = plot.Add.Text($"{ComponentNames[k]} (u down, v across)", left + b / 2.0, 0.3);
            name.LabelAlignment = Alignment.LowerCenter;
            name.LabelFontSize = 14;
            name.LabelFontName = PlotFile.Font;
            for (int u = 0; u < b; u++)
            for (int v = 0; v < b; v++)
            {
                int channel = k * b * b + u * b + v;
                double f = Math.Clamp(frequencies[channel], 0, 1);
                var cell = plot.Add.Rectangle(left + v, left + v + 1, -u - 1, -u);
                cell.FillColor = new Color((byte)Math.Round(255 - 247 * f), (byte)Math.Round(255 - 207 * f), (byte)Math.Round(255 - 148 * f));
                bool outlined = chosen.Contains(channel);
                cell.LineColor = outlined ? Color.FromHex("#d62728") : Colors.Gray;
                cell.LineWidth = outlined ? 3 : 0.5f;
                var text = plot.Add.Text((f * 100).ToString("F0", CultureInfo.InvariantCulture), left + v + 0.5, -u - 0.5);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontSize = 10;
                text.LabelFontName = PlotFile.Font;
                text.LabelFontColor = f > 0.55 ? Colors.White : Colors.Black;
            }
        }
        plot.Axes.Frameless();
        plot.HideGrid();
        plot.Axes.SetLimits(-0.5, components * (b + 1.5) - 1, -b - 1, 1.2);
        plot.Axes.SquareUnits();
        plot.Title("% of examples with the channel on\n(red outline: selected)", 13);
        PlotFile.Save(plot, path, 380 * components + 40, 460);
    }
}
