using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>CHEX's column subset selection as a pruning criterion: <see cref="ChannelPruning.ColumnSubsetSelection.Scores"/> of the layer's weight for its kept count.</summary>
internal sealed class ColumnSubsetSelectionCriterion : ChannelCriterion
{
    internal override bool NeedsKeptCount => true;

    internal override void ScoreChannels(PrunableLayer layer, int? kept, Span<float> scores) =>
        ChannelPruning.ColumnSubsetSelection.Scores(layer.Weight.Value, layer.OutChannels,
            kept ?? throw new InvalidOperationException("Column subset selection needs the number of channels each layer keeps; it cannot follow a global threshold."),
            scores);

    public override string ToString() => "column subset selection";
}
