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
        var norms = layers.Select(l => Enumerable.Range(0, l.OutChannels)
            .Select(c => Enumerable.Range(0, l.Columns).Sum(i => Math.Abs((double)l.Weight.Value[c * l.Columns + i]))).ToArray()).ToArray();
        PruneNow(network, new PruningOptions { TargetSparsity = 0.5, Pattern = SparsityPattern.OutputChannels });
        for (int l = 0; l < layers.Count; l++)
        {
            var layer = layers[l];
            var pruned = Enumerable.Range(0, layer.OutChannels).Where(c => layer.Weight.Mask![c * layer.Columns] == 0).ToArray();
            var kept = Enumerable.Range(0, layer.OutChannels).Except(pruned).ToArray();
            Assert.Equal((int)Math.Round(0.5 * layer.OutChannels, MidpointRounding.AwayFromZero), pruned.Length);
            Assert.True(pruned.Max(c => norms[l][c]) < kept.Min(c => norms[l][c]), $"layer '{layer.Name}': a pruned filter has a larger L1 norm than a kept one.");
        }
    }
}
