using Microsoft.ML.Sparsity.ChannelPruning;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.ChannelPruning;

/// <summary><see cref="PruningOptions.ChannelMultiple"/>: kept channel counts rounded up to a multiple.</summary>
public sealed class ChannelMultipleTests
{
    private static PruningOptions Options(int multiple)
    {
        var options = WholeChannels();
        options.TargetSparsity = 0.3;
        options.ChannelMultiple = multiple;
        return options;
    }

    [Theory]
    [InlineData(1, 6)]  // 30% of 20: 6 pruned, 14 kept
    [InlineData(8, 4)]  // 14 kept rounded up to 16
    [InlineData(5, 5)]  // 14 → 15
    [InlineData(7, 6)]  // 14 is already a multiple of 7
    public void Each_layer_keeps_its_count_rounded_up_to_the_multiple_and_prunes_the_smallest_filters(int multiple, int pruned)
    {
        var network = ChannelMlp(seed: 3);
        var layers = PrunableLayer.From(network);
        var norms = layers.Select(FilterL1Norms).ToArray();
        PruneNow(network, Options(multiple));
        for (int l = 0; l < 2; l++)
            AssertSmallestL1Pruned(layers[l], norms[l], pruned);
    }

    [Fact]
    public void A_layer_with_no_more_channels_than_the_multiple_keeps_them_all()
    {
        var network = ChannelMlp(seed: 3);
        PruneNow(network, Options(32));
        foreach (var layer in PrunableLayer.From(network).Take(2))
            Assert.True(layer.Weight.Mask is null || layer.Weight.Mask.All(m => m == 1f), $"layer '{layer.Name}' lost channels.");
    }

    [Fact]
    public void A_flops_reduction_raises_the_channel_fraction_until_the_rounded_counts_reach_it()
    {
        // Kept r = k/20 in both hidden layers costs 200r + 400r² + 100r. Half of 700 without rounding keeps 12 (324);
        // in multiples of 8 the choices are 16 (496 > 350) and 8 (184): 12 channels go from each layer, 73.7% in all.
        var network = ChannelMlp(seed: 3);
        var layers = PrunableLayer.From(network);
        var norms = layers.Select(FilterL1Norms).ToArray();
        var options = Options(8);
        options.FlopsReduction = 0.5;
        PruneNow(network, options);
        for (int l = 0; l < 2; l++)
            AssertSmallestL1Pruned(layers[l], norms[l], 12);

        var compact = CompactNetwork.Build(CompactPlan.For(network), Pool);
        Assert.Equal([8, 8, 5], PrunableLayer.From(compact).Select(l => l.OutChannels));
    }

    [Fact]
    public void A_flops_reduction_the_multiple_cannot_reach_names_the_option_and_the_most_that_can_go()
    {
        // 8 channels left in each hidden layer: 80 + 64 + 40 = 184 of 700, so at most 73.7% can go.
        var options = Options(8);
        options.FlopsReduction = 0.8;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(ChannelMlp(seed: 3), options));
        Assert.Equal(nameof(PruningOptions.FlopsReduction), e.ParamName);
        Assert.Contains("73.7", e.Message);
        Assert.Contains("ChannelMultiple", e.Message);
    }

    [Fact]
    public void Every_step_of_a_gradual_schedule_and_an_ERK_allocation_keep_multiples()
    {
        var gradual = Options(8);
        gradual.TargetSparsity = 0.7;
        gradual.Schedule = PruningSchedule.Gradual(0, 1000, 100);
        var erk = Options(8);
        erk.Allocation = LayerAllocation.ErdosRenyiKernel;
        erk.Schedule = PruningSchedule.Gradual(0, 1000, 100);
        foreach (var options in new[] { gradual, erk })
        {
            var plan = new PruningPlan(options, ChannelMlp(seed: 3), 7);
            var kept = new List<long>();
            for (long step = 0; step <= 1000; step += 100)
                kept.AddRange(plan.PrunedUnitsAt(step, options.Schedule).PerLayer.Take(2).Select(c => 20 - c!.Value));
            Assert.All(kept, k => Assert.True(k % 8 == 0 || k == 20, $"{k} channels kept"));
            Assert.Contains(kept, k => k < 20); // the rounding did not simply keep every channel
        }
    }

    [Fact]
    public void A_multiple_larger_than_any_count_keeps_every_channel_without_overflow() =>
        Assert.Equal(0, ChexAllocation.KeepMultiple(20, 6, int.MaxValue));

    [Fact]
    public void The_multiple_is_recorded_in_the_description() =>
        Assert.EndsWith(", channels kept in multiples of 16", Options(16).ToString());

    [Fact]
    public void A_multiple_below_1_or_without_whole_channels_or_with_a_global_threshold_is_refused()
    {
        Assert.Equal(nameof(PruningOptions.ChannelMultiple), Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(ChannelMlp(1), Options(0))).ParamName);
        var unstructured = Options(8);
        unstructured.Pattern = SparsityPattern.Unstructured;
        unstructured.PruneBiases = false;
        var global = Options(8);
        global.Allocation = LayerAllocation.Global;
        foreach (var options in new[] { unstructured, global })
            Assert.Equal(nameof(PruningOptions.ChannelMultiple), Assert.Throws<ArgumentException>(() => PruneNow(ChannelMlp(1), options)).ParamName);
    }
}
