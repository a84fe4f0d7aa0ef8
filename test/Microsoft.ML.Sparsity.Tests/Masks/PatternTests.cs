using FsCheck;
using FsCheck.Fluent;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Masks;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.Masks;

public class PatternTests
{
    [Fact]
    public void NMMasksKeepExactlyNOfEveryMInputsForRandomShapes()
    {
        var cases =
            from m in Gen.Elements(2, 4, 8)
            from n in Gen.Choose(1, m - 1)
            from groups in Gen.Choose(1, 5)
            from outputs in Gen.Choose(1, 9)
            from kernel in Gen.Elements(1, 3)
            from seed in Gen.Choose(0, 1000)
            select (n, m, groups, outputs, kernel, seed);
        Prop.ForAll(cases.ToArbitrary(), c =>
        {
            int inChannels = c.groups * c.m;
            var network = c.kernel == 1
                ? Build([inChannels], c.seed, Layers.Dense(c.outputs))
                : Build([5, 5, inChannels], c.seed, Layers.Conv2d(c.outputs, c.kernel));
            var layer = PrunableLayer.From(network)[0];
            var original = (float[])layer.Weight.Value.Clone();
            PruneNow(network, new PruningOptions { Pattern = SparsityPattern.NM(c.n, c.m) });
            var w = layer.Weight.Value;
            // Groups are M consecutive values of the fastest (input-channel) axis: [out, in] or [out, kh, kw, in].
            for (int g = 0; g < w.Length / c.m; g++)
            {
                int kept = 0;
                float smallestKept = float.MaxValue, largestPruned = 0;
                for (int i = 0; i < c.m; i++)
                {
                    int at = g * c.m + i;
                    if (w[at] != 0) { kept++; smallestKept = Math.Min(smallestKept, Math.Abs(original[at])); }
                    else largestPruned = Math.Max(largestPruned, Math.Abs(original[at]));
                }
                // Exactly N kept, and they are the N largest magnitudes of the group.
                if (kept != c.n || smallestKept < largestPruned) return false;
            }
            return true;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void NMKeepsTheLargestMagnitudesWithTiesToTheEarlierPosition()
    {
        var network = Build([8], 1, Layers.Dense(1, useBias: false));
        var w = PrunableLayer.From(network)[0].Weight.Value;
        float[] values = [0.1f, -0.9f, 0.5f, 0.2f, 0.3f, 0.3f, -0.3f, 0.0f];
        values.CopyTo(w, 0);
        PruneNow(network, new PruningOptions { Pattern = SparsityPattern.NM(2, 4) });
        Assert.Equal([0f, -0.9f, 0.5f, 0f, 0.3f, 0.3f, 0f, 0f], w);
    }

    [Fact]
    public void BlockPatternPrunesWholeBlocksByMeanMagnitude()
    {
        var network = Build([4], 1, Layers.Dense(4, useBias: false));
        var w = PrunableLayer.From(network)[0].Weight.Value;
        // 4×4 matrix, 2×2 blocks with mean magnitudes 1, 4, 2, 3 (row-major block order).
        float[] values = [1, 1, 4, 4, 1, 1, 4, 4, 2, 2, 3, 3, 2, 2, 3, 3];
        values.CopyTo(w, 0);
        PruneNow(network, new PruningOptions { Pattern = SparsityPattern.Block(2, 2), TargetSparsity = 0.5 });
        Assert.Equal([0f, 0, 4, 4, 0, 0, 4, 4, 0, 0, 3, 3, 0, 0, 3, 3], w);
    }

    [Fact]
    public void OutputChannelPatternRemovesWholeFiltersAndOptionallyTheirBiases()
    {
        var network = SmallConv();
        var conv = PrunableLayer.From(network)[1];
        conv.Bias!.Value.AsSpan().Fill(0.5f);
        PruneNow(network, new PruningOptions { Pattern = SparsityPattern.OutputChannels, TargetSparsity = 0.25, PruneBiases = true, ExcludedLayers = { "0", "-1" } });
        int removed = 0;
        for (int f = 0; f < conv.Rows; f++)
        {
            var row = conv.Weight.Value.AsSpan(f * conv.Columns, conv.Columns);
            bool allZero = !row.ContainsAnyExcept(0f);
            if (allZero) { removed++; Assert.Equal(0f, conv.Bias.Value[f]); }
            else Assert.Equal(0.5f, conv.Bias.Value[f]);
        }
        Assert.Equal(4, removed);   // 25% of 16 filters
        Assert.Null(PrunableLayer.From(network)[0].Weight.Mask);
    }

    [Theory]
    [InlineData(0, 2)]
    [InlineData(2, 2)]
    [InlineData(3, 2)]
    [InlineData(-1, 4)]
    public void NMRejectsNOutsideZeroToM(int n, int m) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => SparsityPattern.NM(n, m));

    [Theory]
    [InlineData(1, 8)]
    [InlineData(2, 4)]
    [InlineData(3, 8)]
    public void AnNMPatternPrunesLayersItsGroupSizeDoesNotDivideWithRaggedLastGroups(int n, int m)
    {
        // dense1 has 300 inputs, the convolution 6 input channels at each of its 9 kernel positions: neither is a
        // multiple of 8, 6 is not of 4. Each run keeps N per full group and ⌈N·r/M⌉ of its ragged last group of r.
        foreach (var (network, layer, run) in new[]
        {
            (Build([784], 1, Layers.Dense(300), Layers.ReLU(), Layers.Dense(10)), 1, 300),
            (Build([6, 6, 6], 1, Layers.Conv2d(5, 3), Layers.Flatten(), Layers.Dense(4)), 0, 6),
        })
        {
            var plan = PruneNow(network, new PruningOptions { Pattern = SparsityPattern.NM(n, m) });
            var pruned = PrunableLayer.From(network)[layer];
            var mask = pruned.Weight.Mask!;
            int r = run % m, keptPerRun = run / m * n + (n * r + m - 1) / m;
            for (int start = 0; start < mask.Length; start += run)
            {
                for (int g = 0; g + m <= run; g += m)
                    Assert.Equal(n, (int)mask.AsSpan(start + g, m).ToArray().Sum());
                Assert.Equal((n * r + m - 1) / m, (int)mask.AsSpan(start + run - r, r).ToArray().Sum());
            }
            Assert.Equal(mask.Length / run * keptPerRun, pruned.Weight.Value.Count(w => w != 0));
            Assert.Equal(1 - (double)keptPerRun / run, plan.FinalSparsity[layer], 12);
            Assert.Equal(1 - (double)keptPerRun / run, SparsityReport.For(network).Layers[layer].Sparsity, 6);
        }
    }

    [Fact]
    public void TheMisfitFallbackLeavesTheLayerDenseAndReportsItAsBeforeRaggedGroups()
    {
        var network = Build([784], 1, Layers.Dense(300), Layers.ReLU(), Layers.Dense(10));
        PruneNow(network, new PruningOptions { Pattern = SparsityPattern.NM(4, 8), LeaveMisfitLayersDense = true });
        var report = SparsityReport.For(network);
        Assert.Equal(0.5, report.Layers[0].Sparsity, 6);
        Assert.Equal(0, report.Layers[1].Sparsity);
        Assert.StartsWith("dense: 4:8 sparsity needs", report.Layers[1].Pattern, StringComparison.Ordinal);
    }

    [Fact]
    public void ABlockLargerThanTheLayerIsRejectedWithTheLayerName()
    {
        var network = Build([6], 1, Layers.Dense(4));
        var e = Assert.Throws<ArgumentException>(() => PruneNow(network, new PruningOptions { Pattern = SparsityPattern.Block(8, 8) }));
        Assert.Contains("'dense0'", e.Message, StringComparison.Ordinal);
        Assert.Contains("8×8", e.Message, StringComparison.Ordinal);
    }
}
