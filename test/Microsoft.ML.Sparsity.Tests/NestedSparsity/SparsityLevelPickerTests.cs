using Microsoft.ML.Sparsity.Inference;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.NestedSparsity;

/// <summary>The level picker on a fake clock: latencies in made-up ticks, a load that rises and falls.</summary>
public sealed class SparsityLevelPickerTests
{
    // Warm-up latencies of five levels, densest first (the shape of LeNet's at batch 1: 8, 4, 3.5, 2.2, 2 µs).
    private static readonly double[] WarmUp = [80, 40, 35, 22, 20];

    /// <summary>A window of predictions at the picker's level, each taking that level's warm-up latency times <paramref name="load"/>, one in a hundred <paramref name="spike"/> more.</summary>
    private static void Window(SparsityLevelPicker picker, double load, long spike = 0)
    {
        for (int i = 0; i < SparsityLevelPicker.Window; i++)
            picker.Record((long)(WarmUp[picker.Level] * load) + (i == 50 ? spike : 0));
    }

    [Theory]
    [InlineData(100, 0)]
    [InlineData(80, 0)]
    [InlineData(79, 1)]
    [InlineData(36, 2)]
    [InlineData(20, 4)]
    public void WarmUpStartsAtTheDensestLevelThatFits(double budget, int level)
    {
        var picker = new SparsityLevelPicker(WarmUp, budget);
        Assert.Equal(level, picker.Level);
        Assert.True(picker.WithinBudget);
    }

    [Fact]
    public void NoLevelFittingGivesTheSparsestAndSaysSo()
    {
        var picker = new SparsityLevelPicker(WarmUp, 19);
        Assert.Equal(4, picker.Level);
        Assert.False(picker.WithinBudget);
        Window(picker, 1);
        Assert.Equal(4, picker.Level);
        Assert.False(picker.WithinBudget);
    }

    [Fact]
    public void RisingLoadReroutesToSparserLevelsAndFallingLoadBack()
    {
        var picker = new SparsityLevelPicker(WarmUp, budget: 60);
        Assert.Equal(1, picker.Level); // 80 > 60 ≥ 40
        var levels = new List<int>();
        // Load 1 (quiet), then 2× (queueing doubles every latency), then 1 again.
        foreach (double load in new[] { 1.0, 1, 2, 2, 2, 2, 2, 1, 1, 1, 1 })
        {
            Window(picker, load);
            levels.Add(picker.Level);
        }
        // Quiet: 40 stays (80 · 40/40 = 80 is no denser fit). 2×: 80 > 60 → level 2 (70 > 60) → level 3 (44 fits) and stays.
        // Quiet again: 22 · 35/22 = 35 < 0.7·60 → level 2; 35 · 40/35 = 40 < 42 → level 1; 40 · 80/40 = 80 ≥ 42 → stays.
        Assert.Equal([1, 1, 2, 3, 3, 3, 3, 2, 1, 1, 1], levels);
        Assert.True(picker.WithinBudget);
    }

    [Fact]
    public void OneSlowPredictionInAWindowDoesNotMoveTheLevelButTwoDo()
    {
        var picker = new SparsityLevelPicker(WarmUp, budget: 60);
        Window(picker, 1, spike: 1000); // the 99th percentile of 100 is the second-slowest
        Assert.Equal(1, picker.Level);
        for (int i = 0; i < SparsityLevelPicker.Window; i++) picker.Record(i is 10 or 20 ? 1000 : 40);
        Assert.Equal(2, picker.Level);
        Assert.False(picker.WithinBudget);
    }

    [Fact]
    public void ASparserLevelThatIsSlowerIsSkipped()
    {
        // Level 2 measured slower than level 1 (its formats lost): overload at level 1 goes straight to level 3.
        var picker = new SparsityLevelPicker([80, 40, 45, 22], budget: 60);
        Assert.Equal(1, picker.Level);
        for (int i = 0; i < SparsityLevelPicker.Window; i++) picker.Record(90);
        Assert.Equal(3, picker.Level);
    }
}
