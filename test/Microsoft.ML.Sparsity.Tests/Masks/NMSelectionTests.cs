using FsCheck;
using FsCheck.Fluent;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Masks;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Masks;

public class NMSelectionTests
{
    /// <summary>The reference: sort each group by (score descending, position ascending) and keep the first N.</summary>
    /// <remarks>Runs of <paramref name="run"/> (0: one run) are cut into groups from their start; a ragged last group of r keeps ⌈N·r/M⌉.</remarks>
    private static float[] Reference(float[] scores, bool absolute, int n, int m, int run = 0)
    {
        var mask = new float[scores.Length];
        if (run == 0) run = scores.Length;
        for (int start = 0; start < scores.Length; start += run)
        for (int g = start; g < start + run; g += m)
        {
            int size = Math.Min(m, start + run - g), keep = (int)Math.Ceiling((double)n * size / m);
            foreach (int i in Enumerable.Range(0, size).OrderByDescending(i => absolute ? Math.Abs(scores[g + i]) : scores[g + i]).ThenBy(i => i).Take(keep))
                mask[g + i] = 1;
        }
        return mask;
    }

    public static TheoryData<int> Tiers() => [.. VectorIsas.Available.Select(isa => (int)isa)];

    [Theory]
    [MemberData(nameof(Tiers))]
    public void RaggedRunsMatchSortingOnEveryTierIncludingTies(int tier)
    {
        var cases =
            from m in Gen.Elements(2, 3, 4, 8)
            from n in Gen.Choose(1, m - 1)
            from run in Gen.Choose(1, 5 * m)
            from runs in Gen.Choose(1, 9)
            from values in Gen.ArrayOf(Gen.Elements(-2f, -1f, -0.5f, 0f, 0.5f, 1f, 2f, 3f), run * runs)
            from absolute in Gen.Elements(true, false)
            select (n, m, run, values, absolute);
        Prop.ForAll(cases.ToArbitrary(), c =>
        {
            var mask = new float[c.values.Length];
            NMSelection.TopN(c.values, c.absolute, c.n, c.m, mask, c.run, (VectorIsa)tier);
            return mask.SequenceEqual(Reference(c.values, c.absolute, c.n, c.m, c.run));
        }).QuickCheckThrowOnFailure();
    }

    /// <summary>Dense layers (one run of C) and 3×3 convolutions (9 runs of C per filter) with C mod M = 1 .. M − 1.</summary>
    [Theory]
    [MemberData(nameof(Tiers))]
    public void EveryFullGroupKeepsNAndEveryRaggedTailKeepsCeilingOfNrOverM(int tier)
    {
        var random = new Random(tier);
        foreach ((int n, int m) in new[] { (1, 4), (2, 4), (3, 4), (1, 8), (2, 8), (4, 8), (1, 2) })
        for (int r = 1; r < m; r++)
        foreach ((int rows, int runsPerRow) in new[] { (5, 1), (3, 9) })
        {
            int c = 4 * m + r, length = rows * runsPerRow * c;
            float[] scores = Enumerable.Range(0, length).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
            var mask = new float[length];
            NMSelection.TopN(scores, absolute: true, n, m, mask, c, (VectorIsa)tier);
            for (int start = 0; start < length; start += c)
            {
                for (int g = 0; g < 4 * m; g += m)
                    Assert.Equal(n, mask.AsSpan(start + g, m).ToArray().Sum());
                Assert.Equal((n * r + m - 1) / m, (int)mask.AsSpan(start + 4 * m, r).ToArray().Sum());
            }
            Assert.Equal(NMSelection.KeptCount(length, c, n, m), (long)mask.Sum());
        }
    }

    [Fact]
    public void RunLengthMustDivideTheScores()
    {
        var error = Assert.Throws<ArgumentException>(() => NMSelection.TopN(new float[10], true, 2, 4, new float[10], 3));
        Assert.Equal("run", error.ParamName);
    }

    [Fact]
    public void TopNMatchesSortingForEveryGroupSizeIncludingTies()
    {
        var cases =
            from m in Gen.Elements(2, 3, 4, 8)
            from n in Gen.Choose(1, m - 1)
            from groups in Gen.Choose(1, 40)
            from values in Gen.ArrayOf(Gen.Elements(-2f, -1f, -0.5f, 0f, 0.5f, 1f, 2f, 3f), groups * m)
            from absolute in Gen.Elements(true, false)
            select (n, m, values, absolute);
        Prop.ForAll(cases.ToArbitrary(), c =>
        {
            var mask = new float[c.values.Length];
            NMSelection.TopN(c.values, c.absolute, c.n, c.m, mask, c.values.Length);
            return mask.SequenceEqual(Reference(c.values, c.absolute, c.n, c.m));
        }).QuickCheckThrowOnFailure();
    }
}
