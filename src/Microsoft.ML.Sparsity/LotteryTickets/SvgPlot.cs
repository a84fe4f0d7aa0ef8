using System.Globalization;
using System.Security;
using System.Text;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>
/// A small SVG line plot: a log-scale x axis running from its largest value on the left to its smallest (weights
/// remaining shrink level by level), a linear y axis, one coloured line with error bars per series and a legend.
/// </summary>
internal static class SvgPlot
{
    public sealed record Point(double X, double Y, double YLow, double YHigh);

    public sealed record Series(string Name, IReadOnlyList<Point> Points);

    private const int Width = 760, Height = 460, Left = 70, Right = 200, Top = 40, Bottom = 60;
    private static readonly string[] Colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
    private static readonly double[] XTicks = [100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1];

    public static string Render(string title, string xLabel, string yLabel, IReadOnlyList<Series> series)
    {
        var points = series.SelectMany(s => s.Points).ToList();
        if (points.Count == 0 || points.Any(p => !(p.X > 0) || !double.IsFinite(p.Y)))
            throw new ArgumentException("A plot needs points with positive x and finite y.", nameof(series));
        double xMax = points.Max(p => p.X), xMin = Math.Min(points.Min(p => p.X), xMax / 2);
        double yMin = Math.Floor(points.Min(p => p.YLow)), yMax = Math.Ceiling(points.Max(p => p.YHigh));
        if (yMax - yMin < 1) yMax = yMin + 1;
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double Px(double x) => Left + (Math.Log(xMax) - Math.Log(x)) / (Math.Log(xMax) - Math.Log(xMin)) * plotW;
        double Py(double y) => Top + (yMax - y) / (yMax - yMin) * plotH;

        var svg = new StringBuilder();
        svg.Append(F($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">\n"));
        svg.Append(F($"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n"));
        svg.Append(F($"<text x=\"{Left + plotW / 2:F1}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{Escape(title)}</text>\n"));
        double yStep = yMax - yMin > 10 ? 2 : yMax - yMin > 4 ? 1 : 0.5;
        for (double y = yMin; y <= yMax + 1e-9; y += yStep)
        {
            svg.Append(F($"<line x1=\"{Left}\" y1=\"{Py(y):F1}\" x2=\"{Left + plotW:F1}\" y2=\"{Py(y):F1}\" stroke=\"#e0e0e0\"/>\n"));
            svg.Append(F($"<text x=\"{Left - 6}\" y=\"{Py(y) + 4:F1}\" text-anchor=\"end\">{y:0.#}</text>\n"));
        }
        foreach (double x in XTicks.Where(x => x <= xMax * 1.0001 && x >= xMin * 0.9999))
        {
            svg.Append(F($"<line x1=\"{Px(x):F1}\" y1=\"{Top}\" x2=\"{Px(x):F1}\" y2=\"{Top + plotH:F1}\" stroke=\"#e0e0e0\"/>\n"));
            svg.Append(F($"<text x=\"{Px(x):F1}\" y=\"{Top + plotH + 16:F1}\" text-anchor=\"middle\">{x:0.#}</text>\n"));
        }
        svg.Append(F($"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW:F1}\" height=\"{plotH:F1}\" fill=\"none\" stroke=\"black\"/>\n"));
        svg.Append(F($"<text x=\"{Left + plotW / 2:F1}\" y=\"{Height - 18}\" text-anchor=\"middle\">{Escape(xLabel)}</text>\n"));
        svg.Append(F($"<text transform=\"translate(18 {Top + plotH / 2:F1}) rotate(-90)\" text-anchor=\"middle\">{Escape(yLabel)}</text>\n"));
        for (int s = 0; s < series.Count; s++)
        {
            string colour = Colours[s % Colours.Length];
            var ordered = series[s].Points.OrderByDescending(p => p.X).ToList();
            svg.Append(F($"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{string.Join(" ", ordered.Select(p => F($"{Px(p.X):F1},{Py(p.Y):F1}")))}\"/>\n"));
            foreach (var p in ordered)
            {
                if (p.YHigh > p.YLow)
                    svg.Append(F($"<line x1=\"{Px(p.X):F1}\" y1=\"{Py(p.YLow):F1}\" x2=\"{Px(p.X):F1}\" y2=\"{Py(p.YHigh):F1}\" stroke=\"{colour}\"/>\n"));
                svg.Append(F($"<circle cx=\"{Px(p.X):F1}\" cy=\"{Py(p.Y):F1}\" r=\"3\" fill=\"{colour}\"/>\n"));
            }
            double ly = Top + 10 + s * 20;
            svg.Append(F($"<line x1=\"{Left + plotW + 12:F1}\" y1=\"{ly:F1}\" x2=\"{Left + plotW + 36:F1}\" y2=\"{ly:F1}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n"));
            svg.Append(F($"<text x=\"{Left + plotW + 42:F1}\" y=\"{ly + 4:F1}\">{Escape(series[s].Name)}</text>\n"));
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static string Escape(string text) => SecurityElement.Escape(text) ?? "";

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
