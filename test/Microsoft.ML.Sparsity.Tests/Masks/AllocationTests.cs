using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Masks;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.Masks;

public class AllocationTests
{
    [Theory]
    [InlineData(0.9)]
    [InlineData(0.5)]
    [InlineData(0.98)]
    [InlineData(0.123457)]
    public void AGlobalThresholdPrunesExactlyTheRequestedCount(double sparsity)
    {
        var network = LeNet();
        var layers = PrunableLayer.From(network);
        long total = layers.Sum(l => (long)l.Count);
        // Pre-existing exact zeros must not change the count.
        layers[0].Weight.Value.AsSpan(0, 500).Clear();
        PruneNow(network, new PruningOptions { TargetSparsity = sparsity, Allocation = LayerAllocation.Global });
        long expected = (long)Math.Round(sparsity * total, MidpointRounding.AwayFromZero);
        Assert.Equal(expected, layers.Sum(l => (long)l.Weight.Mask!.Count(m => m == 0)));
        Assert.Equal(expected, layers.Sum(l => Zeros(l.Weight.Value)));
    }

    [Fact]
    public void GlobalTiesAreBrokenByPositionInNetworkOrder()
    {
        var network = Build([3], 1, Layers.Dense(2, useBias: false), Layers.Dense(2, useBias: false));
        var layers = PrunableLayer.From(network);
        layers[0].Weight.Value.AsSpan().Fill(0.5f);   // 6 equal weights
        layers[1].Weight.Value.AsSpan().Fill(0.5f);   // 4 more, equal too
        PruneNow(network, new PruningOptions { TargetSparsity = 0.7, Allocation = LayerAllocation.Global });
        // 7 of 10 pruned: all of layer 0 (positions 0-5), then the first weight of layer 1.
        Assert.All(layers[0].Weight.Value, v => Assert.Equal(0f, v));
        Assert.Equal([0f, 0.5f, 0.5f, 0.5f], layers[1].Weight.Value);
    }

    [Fact]
    public void GlobalThresholdFollowsMagnitudeAcrossLayers()
    {
        var network = Build([2], 1, Layers.Dense(2, useBias: false), Layers.Dense(2, useBias: false));
        var layers = PrunableLayer.From(network);
        float[] a = [0.1f, -0.8f, 0.3f, 0.05f], b = [0.2f, 0.9f, -0.04f, 0.6f];
        a.CopyTo(layers[0].Weight.Value, 0);
        b.CopyTo(layers[1].Weight.Value, 0);
        PruneNow(network, new PruningOptions { TargetSparsity = 0.5, Allocation = LayerAllocation.Global });
        Assert.Equal([0f, -0.8f, 0.3f, 0f], layers[0].Weight.Value);
        Assert.Equal([0f, 0.9f, 0f, 0.6f], layers[1].Weight.Value);
    }

    [Theory]
    [InlineData(0.9)]
    [InlineData(0.8)]
    [InlineData(0.5)]
    public void ErkDensitiesGiveTheRequestedTotalExactly(double sparsity)
    {
        var network = SmallConv();
        var layers = PrunableLayer.From(network);
        long total = layers.Sum(l => (long)l.Count);
        PruneNow(network, new PruningOptions { TargetSparsity = sparsity, Allocation = LayerAllocation.ErdosRenyiKernel });
        Assert.Equal((long)Math.Round(sparsity * total, MidpointRounding.AwayFromZero), layers.Sum(l => Zeros(l.Weight.Value)));
    }

    [Fact]
    public void ErkFollowsRigLsFormulaAndCapsDenseLayers()
    {
        // LeNet at 90%: ERK raw scores (n_in + n_out + 1 + 1) / (n_in·n_out) for dense layers.
        var network = LeNet();
        var layers = PrunableLayer.From(network);
        var sparsity = LayerAllocation.ErdosRenyiKernel.Allocate(layers, 0.9, [double.NaN, double.NaN, double.NaN]);
        double[] raw = layers.Select(l => (double)(l.InChannels + l.OutChannels + 2) / (l.InChannels * l.OutChannels)).ToArray();
        // The output layer (100×10) would exceed density 1, so it is dense and ε is solved over the other two.
        Assert.Equal(0, sparsity[2]);
        double keptBudget = 0.1 * layers.Sum(l => (double)l.Count) - layers[2].Count;
        double epsilon = keptBudget / (raw[0] * layers[0].Count + raw[1] * layers[1].Count);
        Assert.Equal(1 - epsilon * raw[0], sparsity[0], 9);
        Assert.Equal(1 - epsilon * raw[1], sparsity[1], 9);
        // ER ignores the kernel terms: for dense layers it is (n_in + n_out) / (n_in·n_out).
        var er = LayerAllocation.ErdosRenyi.Allocate(layers, 0.9, [double.NaN, double.NaN, double.NaN]);
        Assert.True(er[0] > er[1]);
    }

    [Fact]
    public void UniformAllocationPrunesEveryLayerToTheTargetAndHonoursOverridesExclusionsAndHalfRate()
    {
        var network = LeNet();
        var layers = PrunableLayer.From(network);
        PruneNow(network, new PruningOptions
        {
            TargetSparsity = 0.8,
            LayerSparsity = { ["dense1"] = 0.5 },
            OutputLayerAtHalfRate = true,
        });
        Assert.Equal((long)Math.Round(0.8 * layers[0].Count), Zeros(layers[0].Weight.Value));
        Assert.Equal((long)Math.Round(0.5 * layers[1].Count), Zeros(layers[1].Weight.Value));
        Assert.Equal((long)Math.Round(0.4 * layers[2].Count), Zeros(layers[2].Weight.Value));

        var second = LeNet();
        PruneNow(second, new PruningOptions { TargetSparsity = 0.8, ExcludedLayers = { "0", "output" } });
        var report = SparsityReport.For(second);
        Assert.Equal("dense: excluded", report.Layers[0].Pattern);
        Assert.Equal("dense: excluded", report.Layers[2].Pattern);
        Assert.Equal(0.8, report.Layers[1].Sparsity, 6);
    }

    [Fact]
    public void BiasesAndNormalisationAreNeverPruned()
    {
        var network = Build([8, 8, 2], 3, Layers.Conv2d(4, 3), Layers.BatchNorm(), Layers.Flatten(), Layers.Dense(10));
        foreach (var p in network.Parameters.Where(p => p.Kind != ParameterKind.Weight)) p.Value.AsSpan().Fill(1e-6f);
        PruneNow(network, new PruningOptions { TargetSparsity = 0.95, Allocation = LayerAllocation.Global });
        Assert.All(network.Parameters.Where(p => p.Kind != ParameterKind.Weight), p =>
        {
            Assert.Null(p.Mask);
            Assert.All(p.Value, v => Assert.Equal(1e-6f, v));
        });
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void TargetSparsityOutsideZeroToOneIsRejected(double sparsity)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(LeNet(), new PruningOptions { TargetSparsity = sparsity }));
        Assert.Equal("TargetSparsity", e.ParamName);
    }

    [Fact]
    public void UnknownLayerNamesAndIndicesAreRejectedWithTheLayerList()
    {
        var e = Assert.Throws<ArgumentException>(() => PruneNow(LeNet(), new PruningOptions { LayerSparsity = { ["dense7"] = 0.5 } }));
        Assert.Contains("'dense7'", e.Message, StringComparison.Ordinal);
        Assert.Contains("'dense0', 'dense1', 'output'", e.Message, StringComparison.Ordinal);
        var i = Assert.Throws<ArgumentException>(() => PruneNow(LeNet(), new PruningOptions { ExcludedLayers = { "5" } }));
        Assert.Contains("index 5", i.Message, StringComparison.Ordinal);
        var o = Assert.Throws<ArgumentOutOfRangeException>(() => PruneNow(LeNet(), new PruningOptions { LayerSparsity = { ["dense1"] = 1.5 } }));
        Assert.Contains("'dense1'", o.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RandomCriterionIsSeededAndPrunesExactCounts()
    {
        var a = LeNet(seed: 5);
        var b = LeNet(seed: 5);
        PruneNow(a, new PruningOptions { TargetSparsity = 0.9, Criterion = ImportanceCriterion.Random(11) });
        PruneNow(b, new PruningOptions { TargetSparsity = 0.9, Criterion = ImportanceCriterion.Random(11) });
        var la = PrunableLayer.From(a);
        Assert.Equal(la.Select(l => l.Weight.Mask!), PrunableLayer.From(b).Select(l => l.Weight.Mask!));
        Assert.Equal(Math.Round(0.9 * la[0].Count), Zeros(la[0].Weight.Value));
        // Random ≠ magnitude: a fair share of the 10% largest weights is pruned.
        var c = LeNet(seed: 5);
        var original = (float[])PrunableLayer.From(c)[0].Weight.Value.Clone();
        PruneNow(c, new PruningOptions { TargetSparsity = 0.9, Criterion = ImportanceCriterion.Random(11) });
        float cutoff = original.Select(Math.Abs).OrderDescending().ElementAt(original.Length / 10);
        double prunedLarge = original.Where((v, i) => Math.Abs(v) > cutoff && PrunableLayer.From(c)[0].Weight.Value[i] == 0).Count() / (original.Length / 10.0);
        Assert.InRange(prunedLarge, 0.85, 0.95);
    }

    [Fact]
    public void CustomScorersAreCalledPerLayerAndMustGiveFiniteScores()
    {
        var network = LeNet();
        var seen = new List<string>();
        // Score = position: the first weights of every layer go first.
        PruneNow(network, new PruningOptions
        {
            TargetSparsity = 0.25,
            Criterion = ImportanceCriterion.Custom((name, shape, w, scores) => { seen.Add(name); for (int i = 0; i < scores.Length; i++) scores[i] = i; }),
        });
        Assert.Equal(["dense0", "dense1", "output"], seen);
        var first = PrunableLayer.From(network)[0].Weight.Value;
        Assert.All(first.Take(first.Length / 4), v => Assert.Equal(0f, v));
        Assert.DoesNotContain(0f, first.Skip(first.Length / 4));
        var e = Assert.Throws<InvalidOperationException>(() => PruneNow(LeNet(), new PruningOptions
        {
            Criterion = ImportanceCriterion.Custom((_, _, _, scores) => scores[3] = float.NaN),
        }));
        Assert.Contains("'dense0'", e.Message, StringComparison.Ordinal);
    }
}
