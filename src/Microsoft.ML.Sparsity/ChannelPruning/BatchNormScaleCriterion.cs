using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// Network slimming's channel score (Liu et al., "Learning Efficient Convolutional Networks through Network Slimming",
/// 2017): |γ| of the batch-norm layer that normalises the channel. Batch norm divides out the channel's own scale, so
/// γ alone sets how much the channel passes on; a channel with γ near 0 contributes only its shift β.
/// </summary>
internal sealed class BatchNormScaleCriterion : ChannelCriterion
{
    internal override void Check(PrunableLayer layer) => FollowingBatchNorm(layer);

    internal override void ScoreChannels(PrunableLayer layer, int? kept, Span<float> scores) =>
        TensorPrimitives.Abs(FollowingBatchNorm(layer).Gamma.Value, scores);

    /// <summary>The batch norm that normalises <paramref name="layer"/>'s channels (<see cref="ChannelChain.BatchNormOf"/>); throws when there is none.</summary>
    internal static BatchNormLayer FollowingBatchNorm(PrunableLayer layer) =>
        ChannelChain.BatchNormOf(layer) ?? throw new ArgumentException(
            $"Layer '{layer.Name}' has no batch-norm layer after it (directly or through activations, dropout or pooling), so the batch-norm |γ| criterion cannot score " +
            "its channels. Add Layers.BatchNorm() after it, exclude it (PruningOptions.ExcludedLayers, e.g. \"-1\" for the output layer), or use another criterion.",
            nameof(Pruning.PruningOptions.Criterion));

    public override string ToString() => "batch-norm |γ|";
}
