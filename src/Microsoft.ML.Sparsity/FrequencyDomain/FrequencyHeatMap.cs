using System.Globalization;
using System.Text;

namespace Microsoft.ML.Sparsity.FrequencyDomain;

/// <summary>An SVG heat map of per-channel selection frequencies: one B×B grid per component, u down, v across.</summary>
internal static class FrequencyHeatMap
{
    private const int Cell = 44, Gap = 36, Margin = 24, Title = 28;
    private static readonly string[] ComponentNames = ["Y", "Cb", "Cr"];

    public static string ToSvg(IReadOnlyList<double> frequencies, IReadOnlyList<int> selected, int b, int components)
    {
        var chosen = new HashSet<int>(selected);
        int grid = b * Cell;
        int width = 2 * Margin + components * grid + (components - 1) * Gap, height = 2 * Margin + Title + grid + 20;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
        for (int k = 0; k < components; k++)
        {
            int left = Margin + k * (grid + Gap), top = Margin + Title;
            svg.Append(CultureInfo.InvariantCulture,
                $"<text x=\"{left + grid / 2}\" y=\"{Margin + 16}\" text-anchor=\"middle\" font-size=\"16\">{ComponentNames[k]} (u down, v across)</text>\n");
            for (int u = 0; u < b; u++)
            for (int v = 0; v < b; v++)
            {
                int channel = k * b * b + u * b + v;
                double f = Math.Clamp(frequencies[channel], 0, 1);
                // White (never on) to dark blue (always on).
                int r = (int)Math.Round(255 - 247 * f), g = (int)Math.Round(255 - 207 * f), bl = (int)Math.Round(255 - 148 * f);
                int x = left + v * Cell, y = top + u * Cell;
                string stroke = chosen.Contains(channel) ? "stroke=\"#d62728\" stroke-width=\"3\"" : "stroke=\"#999\" stroke-width=\"0.5\"";
                svg.Append(CultureInfo.InvariantCulture,
                    $"<rect x=\"{x}\" y=\"{y}\" width=\"{Cell}\" height=\"{Cell}\" fill=\"rgb({r},{g},{bl})\" {stroke}><title>channel {channel} (u {u}, v {v}): on {f:P1}</title></rect>\n");
                svg.Append(CultureInfo.InvariantCulture,
                    $"<text x=\"{x + Cell / 2}\" y=\"{y + Cell / 2 + 4}\" text-anchor=\"middle\" font-size=\"11\" fill=\"{(f > 0.55 ? "white" : "black")}\">{f * 100:F0}</text>\n");
            }
        }
        svg.Append(CultureInfo.InvariantCulture,
            $"<text x=\"{Margin}\" y=\"{height - Margin / 2}\" font-size=\"12\">% of training examples with the channel switched on; red outline: selected</text>\n");
        svg.Append("</svg>\n");
        return svg.ToString();
    }
}
