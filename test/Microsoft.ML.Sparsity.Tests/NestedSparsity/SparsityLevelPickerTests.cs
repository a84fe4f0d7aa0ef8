using Microsoft.ML.Sparsity.Inference;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.NestedSparsity;

/// <summary>The level picker on a fake clock: latencies in made-up ticks, a load that rises and falls.</summary>
public sealed class SparsityLevelPickerTests
{
    // Warm-up latencies of five levels, densest first (the shape of LeNet's at batch 1: 8, 4, 3.5, 2.2, 2 µs).
    private static readonly double[] WarmUp = [80, 40, 35, 22, 20];

    /// <summary>A window of predictions at the picker's level, each taking that level's warm-up latency times <paramref name="load"/>.</summary>
    private static void Window(SparsityLevelPicker picker, double load)
    {
        for (int i = 0; i < SparsityLevelPicker.Window; i++)
            picker.Record((long)(WarmUp[picker.Level] * load), (long)WarmUp[picker.Level]);
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
        // Quiet again: 22 · 35/22 = 35 > 0.5·60 stays at level 3 (the headroom keeps the choice from flapping).
        Assert.Equal([1, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3], levels);
        // At half the load level 3's 11 · 35/22 = 17.5 < 30 → level 2; 17.5 · 40/35 = 20 < 30 → level 1; 20 · 80/40 = 40 ≥ 30 → stays.
        levels.Clear();
        foreach (double load in new[] { 0.5, 0.5, 0.5 })
        {
            Window(picker, load);
            levels.Add(picker.Level);
        }
        Assert.Equal([2, 1, 1], levels);
        Assert.True(picker.WithinBudget);
    }

    [Fact]
    public void FiveSlowPredictionsInAWindowDoNotMoveTheLevelButSixDo()
    {
        // The 99th percentile of a window of 500 is its sixth-slowest prediction.
        var picker = new SparsityLevelPicker(WarmUp, budget: 60);
        for (int i = 0; i < SparsityLevelPicker.Window; i++) picker.Record(i % 100 == 7 ? 1000 : 40, 40);
        Assert.Equal(1, picker.Level);
        Assert.True(picker.WithinBudget);
        for (int i = 0; i < SparsityLevelPicker.Window; i++) picker.Record(i % 80 == 7 ? 1000 : 40, 40);
        Assert.Equal(2, picker.Level);
        Assert.False(picker.WithinBudget);
    }

    [Fact]
    public void ASparserLevelThatIsSlowerIsSkipped()
    {
        // Level 2 measured slower than level 1 (its formats lost): overload at level 1 goes straight to level 3.
        var picker = new SparsityLevelPicker([80, 40, 45, 22], budget: 60);
        Assert.Equal(1, picker.Level);
        for (int i = 0; i < SparsityLevelPicker.Window; i++) picker.Record(90, 40);
        Assert.Equal(3, picker.Level);
    }

    [Fact]
    public void ServiceTimesFollowThePredictionsAndScaleTheLevelsNotUsedYet()
    {
        // Predictions at level 1 take 60 where warm-up measured 40 (1.5×): levels 2-4 are not used yet and scale with it.
        var picker = new SparsityLevelPicker(WarmUp, budget: 200);
        Assert.Equal(0, picker.Level);
        for (int i = 0; i < SparsityLevelPicker.Window; i++) picker.Record(300, 100); // over budget: level 0 takes 100, not 80
        Assert.Equal(1, picker.Level);
        Assert.Equal([100, 50, 43.75, 27.5, 25], picker.ServiceTimes);
        for (int i = 0; i < SparsityLevelPicker.Window; i++) picker.Record(90, 60);
        // Level 1's own median (60); 2-4 from level 1's factor 60/40; level 0 keeps what it took. 90 · 100/60 = 150 ≥ 100: stays.
        Assert.Equal([100, 60, 52.5, 33, 30], picker.ServiceTimes);
        Assert.Equal(1, picker.Level);
    }
}
