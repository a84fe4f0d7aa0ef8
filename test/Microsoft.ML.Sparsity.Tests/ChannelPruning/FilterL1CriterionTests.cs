using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.ChannelPruning;

/// <summary>Magnitude with the output-channel pattern is filter L1-norm pruning.</summary>
public sealed class FilterL1CriterionTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Magnitude_prunes_the_channels_of_smallest_filter_L1_norm_in_every_layer(bool convolutions)
    {
        var network = convolutions ? SmallConv(seed: 6) : LeNet(seed: 6);
        var layers = PrunableLayer.From(network);
        var norms = layers.Select(FilterL1Norms).ToArray();
        PruneNow(network, new PruningOptions { TargetSparsity = 0.5, Pattern = SparsityPattern.OutputChannels });
        for (int l = 0; l < layers.Count; l++)
            AssertSmallestL1Pruned(layers[l], norms[l], (int)Math.Round(0.5 * layers[l].OutChannels, MidpointRounding.AwayFromZero));
    }
}
