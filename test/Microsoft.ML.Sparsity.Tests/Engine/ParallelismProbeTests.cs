using Microsoft.ML.Sparsity.Engine;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Engine;

public sealed class ParallelismProbeTests
{
    private const int W = ParallelismProbe.WindowCalls;

    /// <summary>
    /// Runs one window of calls, each costing what the way it runs costs now, and returns whether it ran alone. A window
    /// is <see cref="W"/> calls, or <see cref="ParallelismProbe.EarlyCalls"/> for a probe that loses by more than
    /// <see cref="ParallelismProbe.EarlyLossRatio"/>: the way changes only between windows.
    /// </summary>
    private static bool Window(ParallelismProbe probe, long together, long alone)
    {
        bool ranAlone = probe.Alone;
        int calls = 0;
        do
        {
            probe.Record(probe.Alone ? alone : together);
            calls++;
        }
        while (calls < W && probe.Alone == ranAlone);
        long cost = ranAlone ? alone : together, other = ranAlone ? together : alone;
        Assert.True(calls == W || (calls == ParallelismProbe.EarlyCalls && cost > ParallelismProbe.EarlyLossRatio * other),
            $"a window of {calls} calls at {cost} against {other}");
        return ranAlone;
    }

    /// <summary>Runs windows at these costs until one runs alone (<paramref name="afterWindow"/> after each window with the workers); fails after <paramref name="most"/> such windows.</summary>
    private static void RunUntilAlone(ParallelismProbe probe, long together, long alone, int most, Action? afterWindow = null)
    {
        int windows = 0;
        while (!Window(probe, together, alone))
        {
            afterWindow?.Invoke();
            Assert.InRange(++windows, 1, most);
        }
    }

    [Fact]
    public void OnAQuietMachineTheWorkersRunAndAloneIsProbedAfter1Then2Then4UpTo64Windows()
    {
        var probe = new ParallelismProbe();
        var ways = Enumerable.Range(0, 400).Select(_ => Window(probe, together: 100, alone: 180)).ToArray();
        // Together 1 window, alone 1 (probe), together 2, alone 1, together 4, ... together 64, alone 1, together 64, ...
        var expected = new List<bool>();
        for (int interval = 1; expected.Count < ways.Length; interval = Math.Min(2 * interval, ParallelismProbe.MaxProbeInterval))
        {
            expected.AddRange(Enumerable.Repeat(false, interval));
            expected.Add(true);
        }
        Assert.Equal(expected.Take(ways.Length), ways);
        Assert.Equal(ParallelismProbe.MaxProbeInterval, probe.ProbeInterval);
    }

    [Fact]
    public void AProbeThatPlainlyLosesEndsAfterAQuarterOfAWindow()
    {
        // Quiet: alone costs 1.8 times together, so each probe of alone ends after EarlyCalls calls.
        var probe = new ParallelismProbe();
        Assert.False(Window(probe, together: 100, alone: 180));
        Assert.True(probe.Alone);
        for (int i = 0; i < ParallelismProbe.EarlyCalls; i++)
            probe.Record(180);
        Assert.False(probe.Alone);
        // Alone at 1.4 times together is not plain enough: its probe runs the whole window (and loses it).
        while (!probe.Alone)
            probe.Record(100);
        for (int i = 0; i < W - 1; i++)
        {
            probe.Record(140);
            Assert.True(probe.Alone);
        }
        probe.Record(140);
        Assert.False(probe.Alone);
    }

    [Fact]
    public void CallsLongerThanAWindowsTimeAreAWindowEach()
    {
        // 10 ms calls: every call ends its window, so alone is probed after 1 call, then 2, 4, ... (not 64 calls).
        var probe = new ParallelismProbe();
        long together = 2 * ParallelismProbe.WindowTicks, alone = 4 * ParallelismProbe.WindowTicks;
        var ways = new List<bool>();
        for (int call = 0; call < 12; call++)
        {
            ways.Add(probe.Alone);
            probe.Record(probe.Alone ? alone : together);
        }
        Assert.Equal([false, true, false, false, true, false, false, false, false, true, false, false], ways);
    }

    [Fact]
    public void WorkersThatCostMoreThanTwiceAloneAreDroppedAtTheNextWindowWithoutWaitingForAProbe()
    {
        var probe = new ParallelismProbe();
        for (int i = 0; i < 300; i++) Window(probe, 100, 180);
        while (probe.Alone) Window(probe, 100, 180);
        Assert.False(Window(probe, together: 400, alone: 180)); // load arrives: this window ran together...
        Assert.True(probe.Alone);                                // ...and the next runs alone
        Assert.Equal(1, probe.ProbeInterval);
        // Alone keeps winning: together is probed after 1 window, then 2, 4, ...
        var ways = Enumerable.Range(0, 12).Select(_ => Window(probe, 400, 180)).ToArray();
        Assert.Equal([true, false, true, true, false, true, true, true, true, false, true, true], ways);
    }

    [Fact]
    public void ASmallerLossIsFoundAtTheNextProbeAndTheWinnerChangesBackWhenTheMachineQuietens()
    {
        var probe = new ParallelismProbe();
        for (int i = 0; i < 300; i++) Window(probe, 100, 180);
        // Together now costs 200 a call, alone 180: not twice, so no switch until alone is probed (within 65 windows).
        RunUntilAlone(probe, 200, 180, ParallelismProbe.MaxProbeInterval);
        Assert.True(probe.Alone);
        Assert.Equal(1, probe.ProbeInterval);
        // Quiet again: the next probe of the workers wins, and they run from then on.
        Assert.True(Window(probe, 100, 180));
        Assert.False(Window(probe, 100, 180)); // the probe
        Assert.False(probe.Alone);
        Assert.Equal(1, probe.ProbeInterval);
    }

    [Fact]
    public void WorkersThatSaveLessThanTheRequiredGainLoseToAlone()
    {
        var probe = new ParallelismProbe();
        for (int i = 0; i < 300; i++) Window(probe, 100, 180);
        // Together now saves 4% against alone (173 against 180): below the 5% required, so alone wins at the next probe.
        RunUntilAlone(probe, 173, 180, ParallelismProbe.MaxProbeInterval);
        Assert.True(probe.Alone);
        // Saving 6% (169 against 180) is enough: the next probe of the workers wins them back.
        Assert.True(Window(probe, 169, 180));
        Assert.False(Window(probe, 169, 180)); // the probe
        Assert.False(probe.Alone);
    }

    [Fact]
    public void TheOtherWayIsProbedAtLeastOnceASecondHoweverFewTheWindows()
    {
        long now = 0;
        var probe = new ParallelismProbe(() => now);
        // Quiet, 1 ms a window: the workers win and the probes of alone thin out to one in 64 windows.
        for (int i = 0; i < 300; i++)
        {
            Window(probe, 100, 180);
            now += System.Diagnostics.Stopwatch.Frequency / 1000;
        }
        Assert.Equal(ParallelismProbe.MaxProbeInterval, probe.ProbeInterval);
        // Alone becomes faster, but not twice: calls this rare take 0.6 s a window, so alone is probed after two windows
        // (1.2 s since the last probe), not after up to 64.
        RunUntilAlone(probe, 200, 180, 3, () => now += 6 * System.Diagnostics.Stopwatch.Frequency / 10);
        Assert.True(probe.Alone);
    }
}
