using Microsoft.ML.Sparsity.Data;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Data;

public sealed class TrainTestSplitTests
{
    private sealed class Row
    {
        public float[] Features { get; set; } = [];
        public float Label { get; set; }
    }

    // Row i has features [i, -i] and label i, so rows can be traced through shuffles.
    private static Dataset Numbered(SparsityContext context, int count) =>
        context.Data.LoadFromEnumerable(Enumerable.Range(0, count).Select(i => new Row { Features = [i, -i], Label = i }));

    [Fact]
    public void Splits_into_disjoint_sets_of_the_requested_sizes()
    {
        using var context = new SparsityContext(seed: 3);
        Dataset data = Numbered(context, 100);

        TrainTestData split = context.Data.TrainTestSplit(data, testFraction: 0.2, seed: 42);

        Assert.Equal(80, split.TrainSet.Count);
        Assert.Equal(20, split.TestSet.Count);
        var all = split.TrainSet.GetLabels().Concat(split.TestSet.GetLabels()).Order();
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (float)i), all);
        for (int i = 0; i < split.TestSet.Count; i++)
            Assert.Equal(-split.TestSet.GetLabel(i), split.TestSet.GetFeatures(i)[1]);
        Assert.NotEqual(Enumerable.Range(80, 20).Select(i => (float)i), split.TestSet.GetLabels());
    }

    [Fact]
    public void Same_seed_gives_the_same_split_and_different_seeds_differ()
    {
        using var context = new SparsityContext(seed: 3);
        Dataset data = Numbered(context, 50);
        var a = context.Data.TrainTestSplit(data, 0.3, seed: 7);
        var b = context.Data.TrainTestSplit(data, 0.3, seed: 7);
        var c = context.Data.TrainTestSplit(data, 0.3, seed: 8);
        Assert.Equal(a.TestSet.GetLabels(), b.TestSet.GetLabels());
        Assert.Equal(a.TrainSet.GetLabels(), b.TrainSet.GetLabels());
        Assert.NotEqual(a.TestSet.GetLabels(), c.TestSet.GetLabels());
    }

    [Fact]
    public void Without_a_seed_a_seeded_context_is_reproducible()
    {
        float[] TestLabels()
        {
            using var context = new SparsityContext(seed: 11);
            return context.Data.TrainTestSplit(Numbered(context, 40)).TestSet.GetLabels();
        }
        Assert.Equal(4, TestLabels().Length);
        Assert.Equal(TestLabels(), TestLabels());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.5)]
    [InlineData(double.NaN)]
    [InlineData(0.01)] // rounds to 0 test rows out of 10
    [InlineData(0.99)] // rounds to 0 training rows out of 10
    public void Bad_test_fractions_are_rejected(double fraction)
    {
        using var context = new SparsityContext(seed: 3);
        Dataset data = Numbered(context, 10);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => context.Data.TrainTestSplit(data, fraction, seed: 1));
        Assert.Equal("testFraction", e.ParamName);
    }

    [Fact]
    public void ShuffleRows_permutes_rows_deterministically()
    {
        using var context = new SparsityContext(seed: 3);
        Dataset data = Numbered(context, 30);
        Dataset a = context.Data.ShuffleRows(data, seed: 5);
        Dataset b = context.Data.ShuffleRows(data, seed: 5);
        Assert.Equal(a.GetLabels(), b.GetLabels());
        Assert.Equal(data.GetLabels(), a.GetLabels().Order());
        Assert.NotEqual(data.GetLabels(), a.GetLabels());
        for (int i = 0; i < a.Count; i++)
            Assert.Equal(a.GetLabel(i), a.GetFeatures(i)[0]);
    }
}
