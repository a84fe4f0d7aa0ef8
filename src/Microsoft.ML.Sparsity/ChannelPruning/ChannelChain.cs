using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// What one output channel of a prunable layer reaches: the batch norm that scales it (if any) and the next prunable
/// layer, whose weight columns j with j mod <see cref="Channels"/> = c read channel c. That rule holds across every
/// layer a channel can pass through here: activations, dropout, batch norm and pooling keep the channel axis last;
/// a flatten of a channels-last [h, w, c] image puts channel c at every c-th column; a global average pool gives one
/// column per channel; a convolution's weight row is [kh, kw, in], input channel fastest.
/// </summary>
internal sealed record ChannelChain(PrunableLayer Layer, BatchNormLayer? BatchNorm, PrunableLayer Next)
{
    public int Channels => Layer.OutChannels;

    /// <summary>The chain of every prunable layer but the last, in order.</summary>
    /// <exception cref="ArgumentException">A layer between two prunable layers mixes channels in a way the rule above does not cover.</exception>
    public static List<ChannelChain> From(IReadOnlyList<PrunableLayer> prunable, string option)
    {
        var chains = new List<ChannelChain>();
        for (int p = 0; p + 1 < prunable.Count; p++)
        {
            foreach (var between in prunable[p].Following.TakeWhile(l => !ReferenceEquals(l, prunable[p + 1].Layer)))
            {
                switch (between)
                {
                    case BatchNormLayer bn when bn.Channels != prunable[p].OutChannels:
                        throw new ArgumentException(
                            $"Batch norm '{bn.Name}' after '{prunable[p].Name}' normalises {bn.Channels} features (after a flatten), not the layer's " +
                            $"{prunable[p].OutChannels} channels, so a channel's γ and β are not one entry each. Put the batch norm before the flatten.", option);
                    case BatchNormLayer or ActivationLayer or DropoutLayer or Pool2dLayer or FlattenLayer or GlobalAveragePoolLayer: break;
                    default:
                        throw new ArgumentException(
                            $"Layer '{between.Name}' between '{prunable[p].Name}' and '{prunable[p + 1].Name}' is a {between.GetType().Name}, " +
                            "which channel pruning cannot follow (expected batch norm, activation, dropout, pooling or flatten).", option);
                }
            }
            chains.Add(new ChannelChain(prunable[p], BatchNormOf(prunable[p]), prunable[p + 1]));
        }
        return chains;
    }

    /// <summary>
    /// The batch norm that normalises <paramref name="layer"/>'s channels: the first one after it, through activations,
    /// dropout and pooling, before a flatten or the next dense or convolution layer; null when there is none.
    /// </summary>
    public static BatchNormLayer? BatchNormOf(PrunableLayer layer)
    {
        foreach (var next in layer.Following)
        {
            switch (next)
            {
                case BatchNormLayer bn when bn.Channels == layer.OutChannels: return bn;
                case ActivationLayer or DropoutLayer or Pool2dLayer: continue;
                default: return null;
            }
        }
        return null;
    }
}
