using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// A criterion that scores a layer's output channels as wholes (batch-norm |γ|, column subset selection) rather than
/// its single weights, so it only goes with <see cref="SparsityPattern.OutputChannels"/>.
/// </summary>
internal abstract class ChannelCriterion : ImportanceCriterion
{
    /// <summary>True when a channel's score depends on how many channels the layer keeps, so the kept count must be known per layer.</summary>
    internal virtual bool NeedsKeptCount => false;

    /// <summary>Throws when the criterion cannot score <paramref name="layer"/> (called once, before any pruning).</summary>
    internal virtual void Check(PrunableLayer layer) { }

    /// <summary>Writes one score per output channel of <paramref name="layer"/>; the lowest are pruned first.</summary>
    /// <param name="layer">The layer.</param>
    /// <param name="kept">How many channels the layer keeps after this event; null when a global threshold decides.</param>
    /// <param name="scores">Receives the scores, one per output channel.</param>
    internal abstract void ScoreChannels(PrunableLayer layer, int? kept, Span<float> scores);

    internal sealed override void Score(PrunableLayer layer, long step, int trainingSeed, ReadOnlySpan<float> taylorSums, Span<float> scores) =>
        throw new InvalidOperationException($"The {this} criterion scores whole output channels; use it with SparsityPattern.OutputChannels.");
}
