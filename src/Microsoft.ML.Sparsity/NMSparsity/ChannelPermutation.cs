using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.NMSparsity;

/// <summary>What permuting one layer's input channels did.</summary>
/// <param name="Layer">The permuted layer.</param>
/// <param name="Producer">The dense or convolution layer whose output channels were permuted with them.</param>
/// <param name="Permutation">The original channel now at each position.</param>
/// <param name="KeptBefore">The Σ|w| of the layer's weight that N:M pruning keeps, before the permutation.</param>
/// <param name="KeptAfter">The same, after.</param>
/// <param name="Total">The Σ|w| of the layer's weight.</param>
internal sealed record ChannelPermutationResult(string Layer, string Producer, int[] Permutation, double KeptBefore, double KeptAfter, double Total);

/// <summary>
/// Permutes a dense or convolution layer's input channels, together with the output channels of the layer that
/// produces them, so that N:M pruning keeps more magnitude while the network computes the same function (Pool &amp;
/// Yu, "Channel Permutations for N:M Sparsity", NeurIPS 2021).
/// </summary>
/// <remarks>
/// Besides the layer's weight (its columns, at every kernel or flattened spatial position), the producer's weight
/// rows (dense [out, in]; convolution: the out axis of [out, kh, kw, in]) and bias are permuted, and so are the
/// batch-norm layers in between (γ, β, running mean and variance). Masks move with the values. Activations, pooling,
/// global average pooling, dropout and flatten act on each channel alone and hold nothing to permute. Optimiser
/// state is not permuted: permute a trained network before pruning it, then fine-tune with a fresh optimiser.
/// </remarks>
internal static class ChannelPermutation
{
    /// <summary>Searches and applies the input-channel permutation of prunable layer <paramref name="layerIndex"/> that keeps the most N:M magnitude.</summary>
    /// <param name="network">The network, changed in place.</param>
    /// <param name="layerIndex">The layer's position among the network's dense and convolution layers (0 = first).</param>
    /// <param name="n">Weights kept per group.</param>
    /// <param name="m">The group size; the permuted channel count must be a multiple of it.</param>
    /// <param name="maxMoves">The search's cap on accepted moves.</param>
    public static ChannelPermutationResult Permute(SequentialNetwork network, int layerIndex, int n, int m,
        int maxMoves = ChannelPermutationSearch.DefaultMaxMoves)
    {
        ChannelPermutationSearch.ValidatePattern(n, m);
        var layer = PrunableAt(network, layerIndex);
        var link = Link.Of(network, layer);
        if (link.Channels % m != 0)
            throw new ArgumentException(
                $"Layer '{layer.Name}': permuting its input channels for {n}:{m} sparsity needs their count ({link.Channels}, the outputs of '{link.Producer.Name}') to be a multiple of {m}.",
                nameof(m));
        var weight = layer.Weight.Value;
        double before = ChannelPermutationSearch.KeptMagnitude(weight, n, m);
        var permutation = ChannelPermutationSearch.Find(weight, link.Channels, n, m, maxMoves);
        link.Apply(layer, permutation);
        return new ChannelPermutationResult(layer.Name, link.Producer.Name, permutation, before,
            ChannelPermutationSearch.KeptMagnitude(weight, n, m), TensorPrimitives.SumOfMagnitudes(weight));
    }

    /// <summary>
    /// Permutes every prunable layer but the first whose permuted channel count is a multiple of <paramref name="m"/>;
    /// returns what each permutation did, in network order.
    /// </summary>
    public static IReadOnlyList<ChannelPermutationResult> PermuteAll(SequentialNetwork network, int n, int m,
        int maxMoves = ChannelPermutationSearch.DefaultMaxMoves)
    {
        ChannelPermutationSearch.ValidatePattern(n, m);
        var layers = PrunableLayer.From(network);
        var results = new List<ChannelPermutationResult>();
        for (int i = 1; i < layers.Count; i++)
            if (Link.Of(network, layers[i]).Channels % m == 0) results.Add(Permute(network, i, n, m, maxMoves));
        return results;
    }

    /// <summary>Applies a given permutation (<c>permutation[j]</c> = the original channel placed at position j) to prunable layer <paramref name="layerIndex"/>'s input channels.</summary>
    public static void Apply(SequentialNetwork network, int layerIndex, int[] permutation)
    {
        var layer = PrunableAt(network, layerIndex);
        var link = Link.Of(network, layer);
        if (permutation.Length != link.Channels)
            throw new ArgumentException(
                $"Layer '{layer.Name}': the permutation has {permutation.Length} entries; the layer has {link.Channels} input channels (the outputs of '{link.Producer.Name}').",
                nameof(permutation));
        var seen = new bool[permutation.Length];
        foreach (int p in permutation)
        {
            if (p < 0 || p >= seen.Length || seen[p])
                throw new ArgumentException($"Layer '{layer.Name}': the permutation is not a permutation of 0..{seen.Length - 1} (entry {p}).", nameof(permutation));
            seen[p] = true;
        }
        link.Apply(layer, permutation);
    }

    private static PrunableLayer PrunableAt(SequentialNetwork network, int layerIndex)
    {
        var layers = PrunableLayer.From(network);
        if (layerIndex < 0 || layerIndex >= layers.Count)
            throw new ArgumentOutOfRangeException(nameof(layerIndex), layerIndex, $"The network has {layers.Count} dense and convolution layers.");
        return layers[layerIndex];
    }

    /// <summary>Runs of <c>permutation.Length</c> values (the channel fastest): position j of each run takes the run's value at <c>permutation[j]</c>.</summary>
    private static void PermuteRuns(float[] values, int[] permutation)
    {
        var old = (float[])values.Clone();
        int c = permutation.Length;
        for (int start = 0; start < values.Length; start += c)
        for (int j = 0; j < c; j++)
            values[start + j] = old[start + permutation[j]];
    }

    /// <summary><c>permutation.Length</c> equal blocks (the channel slowest): block j takes the old block <c>permutation[j]</c>.</summary>
    private static void PermuteBlocks(float[] values, int[] permutation)
    {
        var old = (float[])values.Clone();
        int block = values.Length / permutation.Length;
        for (int j = 0; j < permutation.Length; j++)
            old.AsSpan(permutation[j] * block, block).CopyTo(values.AsSpan(j * block, block));
    }

    private static void PermuteRuns(Parameter parameter, int[] permutation)
    {
        PermuteRuns(parameter.Value, permutation);
        if (parameter.Mask is float[] mask) PermuteRuns(mask, permutation);
    }

    private static void PermuteBlocks(Parameter parameter, int[] permutation)
    {
        PermuteBlocks(parameter.Value, permutation);
        if (parameter.Mask is float[] mask) PermuteBlocks(mask, permutation);
    }

    /// <summary>The layer that produces a prunable layer's input channels, and the batch-norm layers in between.</summary>
    private sealed record Link(Layer Producer, Parameter Weight, Parameter? Bias, int Channels, List<BatchNormLayer> Norms)
    {
        public static Link Of(SequentialNetwork network, PrunableLayer layer)
        {
            var norms = new List<BatchNormLayer>();
            for (int i = IndexOf(network, layer.Layer) - 1; i >= 0; i--)
            {
                switch (network.Layers[i])
                {
                    case DenseLayer d: return new Link(d, d.Weight, d.Bias, d.Outputs, norms);
                    case Conv2dLayer c: return new Link(c, c.Weight, c.Bias, c.OutChannels, norms);
                    case BatchNormLayer b: norms.Add(b); break;
                    case ActivationLayer or Pool2dLayer or GlobalAveragePoolLayer or DropoutLayer or FlattenLayer: break;
                    case var other:
                        throw new ArgumentException(
                            $"Layer '{layer.Name}': its input channels cannot be permuted: layer '{other.Name}' ({other.GetType().Name}) between it and the previous dense or convolution layer is not known to act on each channel alone.",
                            "layerIndex");
                }
            }
            throw new ArgumentException(
                $"Layer '{layer.Name}': its input channels cannot be permuted: no dense or convolution layer before it produces them (the network's input cannot be permuted).",
                "layerIndex");
        }

        public void Apply(PrunableLayer layer, int[] permutation)
        {
            PermuteRuns(layer.Weight, permutation);
            PermuteBlocks(Weight, permutation);
            if (Bias is not null) PermuteBlocks(Bias, permutation);
            foreach (var norm in Norms)
            {
                PermuteRuns(norm.Gamma, permutation);
                PermuteRuns(norm.Beta, permutation);
                PermuteRuns(norm.RunningMean, permutation);
                PermuteRuns(norm.RunningVariance, permutation);
            }
        }

        private static int IndexOf(SequentialNetwork network, Layer layer)
        {
            for (int i = 0; ; i++)
                if (ReferenceEquals(network.Layers[i], layer)) return i;
        }
    }
}
