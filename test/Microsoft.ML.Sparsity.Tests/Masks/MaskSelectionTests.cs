using Microsoft.ML.Sparsity.Masks;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Masks;

public class MaskSelectionTests
{
    /// <summary>The quickselect picks exactly what sorting by (score, position) and taking the first k picks, with or without the sampled threshold.</summary>
    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(1000, 1)]
    [InlineData(1000, 250)]
    [InlineData(1000, 999)]
    [InlineData(20000, 600)]
    [InlineData(240000, 7000)]   // a small share of many: the quickselect runs on the units under a sampled threshold
    [InlineData(240000, 29999)]
    public void SelectLowestTakesTheKSmallestScoresWithTiesToTheEarlierPosition(int n, int k)
    {
        var random = new Random(n + k);
        foreach (var kind in new[] { "distinct", "few values", "sorted", "reversed", "infinities" })
        {
            var scores = kind switch
            {
                "distinct" => Enumerable.Range(0, n).Select(_ => random.NextSingle()).ToArray(),
                "few values" => Enumerable.Range(0, n).Select(_ => (float)random.Next(3)).ToArray(),
                "sorted" => Enumerable.Range(0, n).Select(i => (float)i).ToArray(),
                "reversed" => Enumerable.Range(0, n).Select(i => (float)-i).ToArray(),
                _ => Enumerable.Range(0, n).Select(i => i % 2 == 0 ? float.PositiveInfinity : -MathF.Abs(random.NextSingle())).ToArray(),
            };
            var expected = Enumerable.Range(0, n).OrderBy(i => scores[i]).ThenBy(i => i).Take(k).ToHashSet();
            var selected = new bool[n];
            MaskSelection.SelectLowest(scores, k, selected);
            Assert.Equal(expected.Order(), Enumerable.Range(0, n).Where(i => selected[i]));
        }
    }
}
