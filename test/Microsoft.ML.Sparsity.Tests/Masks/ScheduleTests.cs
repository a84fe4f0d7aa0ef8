using Microsoft.ML.Sparsity.Pruning;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Masks;

public class ScheduleTests
{
    [Theory]
    [InlineData(0, 1000, 100, 3.0, 0.0, 0.9)]
    [InlineData(200, 1700, 100, 3.0, 0.0, 0.95)]
    [InlineData(50, 1000, 37, 2.0, 0.2, 0.8)]
    public void GradualScheduleMatchesZhuAndGuptasFormulaAtEveryStep(long begin, long end, int frequency, double exponent, double initial, double final)
    {
        var schedule = PruningSchedule.Gradual(begin, end, frequency, exponent, initial);
        for (long t = 0; t <= end + 300; t++)
        {
            bool expectedEvent = t >= begin && t <= end && ((t - begin) % frequency == 0 || t == end);
            Assert.Equal(expectedEvent, schedule.IsPruningStep(t));
            if (t < begin) continue;
            double progress = Math.Min(1.0, (t - begin) / (double)(end - begin));
            double expected = final + (initial - final) * Math.Pow(1 - progress, exponent);
            Assert.Equal(expected, schedule.SparsityAt(t, final), 12);
        }
        Assert.Equal(final, schedule.SparsityAt(end, final), 12);
        Assert.Equal(end, schedule.LastPruningStep);
    }

    [Fact]
    public void GradualOverTrainingPlacesTheScheduleByFractionsOfTheRun()
    {
        var resolved = PruningSchedule.GradualOverTraining(0.1, 0.6, 100).Resolve(10_000);
        Assert.True(resolved.IsPruningStep(1000));
        Assert.True(resolved.IsPruningStep(6000));
        Assert.False(resolved.IsPruningStep(6100));
        Assert.Equal(0.9 * (1 - Math.Pow(0.5, 3)), resolved.SparsityAt(3500, 0.9), 12);
    }

    [Fact]
    public void OneShotPrunesOnceToTheTarget()
    {
        var schedule = PruningSchedule.OneShot(500);
        Assert.False(schedule.IsPruningStep(499));
        Assert.True(schedule.IsPruningStep(500));
        Assert.False(schedule.IsPruningStep(501));
        Assert.Equal(0, schedule.SparsityAt(499, 0.9));
        Assert.Equal(0.9, schedule.SparsityAt(500, 0.9));
        Assert.True(PruningSchedule.AtInitialization().IsPruningStep(0));
    }

    [Fact]
    public void BadScheduleArgumentsAreRejectedByName()
    {
        Assert.Equal("endStep", Assert.Throws<ArgumentOutOfRangeException>(() => PruningSchedule.Gradual(100, 100)).ParamName);
        Assert.Equal("frequency", Assert.Throws<ArgumentOutOfRangeException>(() => PruningSchedule.Gradual(0, 100, 0)).ParamName);
        Assert.Equal("initialSparsity", Assert.Throws<ArgumentOutOfRangeException>(() => PruningSchedule.Gradual(0, 100, 10, 3, 1.0)).ParamName);
        Assert.Equal("step", Assert.Throws<ArgumentOutOfRangeException>(() => PruningSchedule.OneShot(-1)).ParamName);
        Assert.Equal("endFraction", Assert.Throws<ArgumentOutOfRangeException>(() => PruningSchedule.GradualOverTraining(0.5, 0.4)).ParamName);
    }
}
