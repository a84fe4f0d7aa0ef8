using FsCheck;
using FsCheck.Fluent;
using Microsoft.ML.Sparsity.Masks;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Masks;

public class NMSelectionTests
{
    /// <summary>The reference: sort each group by (score descending, position ascending) and keep the first N.</summary>
    private static float[] Reference(float[] scores, bool absolute, int n, int m)
    {
        var mask = new float[scores.Length];
        for (int g = 0; g < scores.Length; g += m)
            foreach (int i in Enumerable.Range(0, m).OrderByDescending(i => absolute ? Math.Abs(scores[g + i]) : scores[g + i]).ThenBy(i => i).Take(n))
                mask[g + i] = 1;
        return mask;
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
            NMSelection.TopN(c.values, c.absolute, c.n, c.m, mask);
            return mask.SequenceEqual(Reference(c.values, c.absolute, c.n, c.m));
        }).QuickCheckThrowOnFailure();
    }
}
