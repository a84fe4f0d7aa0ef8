using System.Globalization;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>Fractions as percentages, "89.31%", whatever the culture: for sweep results, their report and the command-line tool.</summary>
internal static class Percentages
{
    /// <summary>The fraction × 100 in <paramref name="format"/> with a "%"; empty for null or NaN.</summary>
    public static string Format(double? fraction, string format = "0.00") =>
        fraction is { } f && !double.IsNaN(f) ? (f * 100).ToString(format, CultureInfo.InvariantCulture) + "%" : "";
}
