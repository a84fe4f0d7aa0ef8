using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.ChannelPruning;

/// <summary><see cref="PruningOptions.FlopsReduction"/>: channel pruning to a share of the multiply-adds.</summary>
public sealed class FlopsReductionTests
{
    // ChannelMlp with k of 20 channels gone from each hidden layer (r = 1 − k/20 kept): 200r + 400r² + 100r multiply-adds.
    // Half of 700 needs r ≤ 0.633, so k = 8 (324 ≤ 350; k = 7 gives 364).
    private static PruningOptions Options(double reduction)
    {
        var options = WholeChannels();
        options.FlopsReduction = reduction;
        return options;
    }

    [Fact]
    public void Every_pruned_layer_loses_the_smallest_uniform_share_of_channels_that_removes_the_multiply_adds()
    {
        var network = ChannelMlp(seed: 3);
        var layers = PrunableLayer.From(network);
        var norms = layers.Select(FilterL1Norms).ToArray();
        PruneNow(network, Options(0.5));
        for (int l = 0; l < 2; l++)
            Assert.All(AssertSmallestL1Pruned(layers[l], norms[l], 8), c => Assert.Equal(0f, layers[l].Bias!.Value[c]));
        Assert.Null(layers[2].Weight.Mask);
    }

    [Fact]
    public void A_reduction_that_would_take_a_whole_layer_names_the_option_and_the_most_that_can_go()
    {
        // One channel left in each hidden layer: 10 + 1 + 5 = 16 of 700, so at most 97.7% can go.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(ChannelMlp(seed: 3), Options(0.99)));
        Assert.Equal(nameof(PruningOptions.FlopsReduction), e.ParamName);
        Assert.Contains("97.7", e.Message);
        Assert.Contains("'dense0', 'dense1'", e.Message);   // the explored layers
    }

    [Fact]
    public void A_reduction_needs_the_biases_pruned_too()
    {
        // Without PruneBiases a pruned channel still outputs its bias, and before a padded convolution it cannot go.
        var options = Options(0.5);
        options.PruneBiases = false;
        Assert.Equal(nameof(PruningOptions.PruneBiases), Assert.Throws<ArgumentException>(() => PruneNow(ChannelMlp(1), options)).ParamName);
    }

    [Fact]
    public void A_channel_sparsity_that_would_empty_a_layer_names_it_and_a_global_threshold_keeps_one_channel()
    {
        // 20 channels at 0.98: round(19.6) = 20, every channel.
        var uniform = WholeChannels();
        uniform.TargetSparsity = 0.98;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(ChannelMlp(1), uniform));
        Assert.Equal(nameof(PruningOptions.TargetSparsity), e.ParamName);
        Assert.Contains("'dense0'", e.Message);
        var overridden = WholeChannels();
        overridden.TargetSparsity = 0.5;
        overridden.LayerSparsity["dense1"] = 0.99;
        e = Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(ChannelMlp(1), overridden));
        Assert.Equal(nameof(PruningOptions.LayerSparsity), e.ParamName);
        Assert.Contains("'dense1'", e.Message);
        // Two layers of 3 under ER at 0.75: dense0 at 0.778 rounds to 2 of 3 alone, but ER matches the total, round(4.5) = 5
        // channels of 6, and the largest remainder gives dense0 all 3.
        var three = WholeChannels();
        three.TargetSparsity = 0.75;
        three.Allocation = LayerAllocation.ErdosRenyi;
        e = Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(Build([10], 1, Layers.Dense(3), Layers.ReLU(), Layers.Dense(3), Layers.ReLU(), Layers.Dense(5)), three));
        Assert.Equal(nameof(PruningOptions.TargetSparsity), e.ParamName);
        Assert.Contains("'dense0'", e.Message);

        // One global threshold over both hidden layers' 40 channels: 0.98 takes 39 of them by score, but each layer keeps its best.
        var network = ChannelMlp(seed: 3);
        var layers = PrunableLayer.From(network);
        var global = WholeChannels();
        global.TargetSparsity = 0.98;
        global.Allocation = LayerAllocation.Global;
        PruneNow(network, global);
        for (int l = 0; l < 2; l++)
        {
            int kept = Enumerable.Range(0, 20).Count(c => layers[l].Weight.Mask![c * layers[l].Columns] != 0);
            Assert.Equal(1, kept);
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void A_reduction_outside_0_1_is_refused(double reduction) =>
        Assert.Equal(nameof(PruningOptions.FlopsReduction), Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(ChannelMlp(1), Options(reduction))).ParamName);

    [Fact]
    public void A_reduction_needs_whole_channels_and_the_uniform_allocation()
    {
        var unstructured = Options(0.5);
        unstructured.Pattern = SparsityPattern.Unstructured;
        unstructured.PruneBiases = false;
        var erk = Options(0.5);
        erk.Allocation = LayerAllocation.ErdosRenyiKernel;
        foreach (var options in new[] { unstructured, erk })
            Assert.Equal(nameof(PruningOptions.FlopsReduction), Assert.Throws<ArgumentException>(() => PruneNow(ChannelMlp(1), options)).ParamName);
    }
}
