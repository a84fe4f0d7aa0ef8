using System.Globalization;
using System.Text;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Masks;

/// <summary>The sparsity of one layer's weight.</summary>
public sealed class LayerSparsity
{
    internal LayerSparsity(string name, IReadOnlyList<int> shape, string pattern, long count, long nonZeros, long denseMultiplyAdds)
    {
        Name = name;
        Shape = shape;
        Pattern = pattern;
        Count = count;
        NonZeros = nonZeros;
        DenseMultiplyAdds = denseMultiplyAdds;
        SparseMultiplyAdds = count == 0 ? 0 : denseMultiplyAdds / count * nonZeros;
    }

    /// <summary>The layer's name.</summary>
    public string Name { get; }

    /// <summary>The weight's shape ([out, in] or [out, kh, kw, in]).</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The pattern of the mask (e.g. "unstructured", "2:4"), or why the layer is dense (e.g. "dense: excluded").</summary>
    public string Pattern { get; }

    /// <summary>The number of weights.</summary>
    public long Count { get; }

    /// <summary>The number of non-zero weights.</summary>
    public long NonZeros { get; }

    /// <summary>NonZeros / Count.</summary>
    public double Density => Count == 0 ? 1 : (double)NonZeros / Count;

    /// <summary>1 − <see cref="Density"/>.</summary>
    public double Sparsity => 1 - Density;

    /// <summary>Multiply-adds per example of the dense layer.</summary>
    public long DenseMultiplyAdds { get; }

    /// <summary>Multiply-adds per example counting only non-zero weights.</summary>
    public long SparseMultiplyAdds { get; }
}

/// <summary>Per-layer and total sparsity of a model's weights (biases and normalisation parameters are not counted).</summary>
public sealed class SparsityReport
{
    internal SparsityReport(IReadOnlyList<LayerSparsity> layers) => Layers = layers;

    /// <summary>The dense and convolution layers, in network order.</summary>
    public IReadOnlyList<LayerSparsity> Layers { get; }

    /// <summary>All weights.</summary>
    public long Count => Layers.Sum(l => l.Count);

    /// <summary>All non-zero weights.</summary>
    public long NonZeros => Layers.Sum(l => l.NonZeros);

    /// <summary>The fraction of all weights that are zero.</summary>
    public double Sparsity => Count == 0 ? 0 : 1 - (double)NonZeros / Count;

    /// <summary>Dense multiply-adds per example over all layers.</summary>
    public long DenseMultiplyAdds => Layers.Sum(l => l.DenseMultiplyAdds);

    /// <summary>Multiply-adds per example counting only non-zero weights.</summary>
    public long SparseMultiplyAdds => Layers.Sum(l => l.SparseMultiplyAdds);

    internal static SparsityReport For(SequentialNetwork network) =>
        new(PrunableLayer.From(network).Select(l => new LayerSparsity(l.Name, l.Weight.Shape, Describe(l), l.Count, CountNonZeros(l.Weight.Value), l.Layer.MultiplyAdds)).ToArray());

    internal static double PrunableSparsity(IReadOnlyList<PrunableLayer> layers)
    {
        long count = layers.Sum(l => (long)l.Count);
        return count == 0 ? 0 : 1 - (double)layers.Sum(l => CountNonZeros(l.Weight.Value)) / count;
    }

    private static string Describe(PrunableLayer l) => l.Weight.SparsityNote ?? (l.Weight.Mask is null ? "dense" : "masked");

    private static long CountNonZeros(float[] values)
    {
        long count = 0;
        foreach (float v in values) if (v != 0) count++;   // +0 and −0 both count as zero
        return count;
    }

    /// <summary>A fixed-width table: one row per layer and a total row.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"layer",-10} {"shape",-18} {"pattern",-22} {"density",8} {"non-zeros",12} {"dense MACs",12} {"sparse MACs",12}");
        foreach (var l in Layers)
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{l.Name,-10} {Engine.Shape.Format(l.Shape),-18} {Truncate(l.Pattern, 22),-22} {l.Density,8:P2} {l.NonZeros,12:N0} {l.DenseMultiplyAdds,12:N0} {l.SparseMultiplyAdds,12:N0}");
        sb.Append(CultureInfo.InvariantCulture,
            $"{"total",-10} {"",-18} {"",-22} {1 - Sparsity,8:P2} {NonZeros,12:N0} {DenseMultiplyAdds,12:N0} {SparseMultiplyAdds,12:N0}");
        return sb.ToString();
    }

    private static string Truncate(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
