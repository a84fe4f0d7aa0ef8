using System.Text;
using ScottPlot;

namespace Microsoft.ML.Sparsity.Plots;

/// <summary>Writes a plot as PNG or SVG (by the file's extension), atomically, with the one font the plots name.</summary>
internal static class PlotFile
{
    /// <summary>The font every plot names: SkiaSharp on Linux silently draws no text at all without it (Debian's fonts-dejavu-core).</summary>
    public const string Font = "DejaVu Sans";

    /// <summary>A new plot in <see cref="Font"/>.</summary>
    /// <exception cref="InvalidOperationException">The font is not installed; the message says which package has it.</exception>
    public static Plot New()
    {
        if (Fonts.GetTypeface(Font, false, false).FamilyName != Font)
            throw new InvalidOperationException($"The plots' font {Font} is not installed (SkiaSharp looks in /usr/share/fonts): install Debian's fonts-dejavu-core.");
        var plot = new Plot();
        plot.Font.Set(Font);
        return plot;
    }

    /// <summary>Saves <paramref name="plot"/> to <paramref name="path"/> (.png or .svg) atomically (the package's writer).</summary>
    /// <exception cref="ArgumentException">The extension is neither .png nor .svg.</exception>
    public static void Save(Plot plot, string path, int width = 900, int height = 520)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string extension = Path.GetExtension(path).ToLowerInvariant();
        byte[] bytes = extension switch
        {
            ".png" => plot.GetImageBytes(width, height, ImageFormat.Png),
            ".svg" => Encoding.UTF8.GetBytes(plot.GetSvgXml(width, height)),
            _ => throw new ArgumentException($"'{path}': a plot is written as .png or .svg.", nameof(path)),
        };
        Serialization.AtomicFile.Write(path, stream => stream.Write(bytes));
    }
}
