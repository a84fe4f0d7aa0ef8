using System.Diagnostics;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>
/// Single-prediction latency of several models on this machine, comparable with each other: all warmed up together
/// (the JIT's optimised code arrives after about a second of steady calls), then timed in alternating rounds (forward,
/// then backward order), each one's latency the median of its rounds' means. The sweep measures its completed trials
/// with it, the command-line tool's <c>bench</c> the weight formats.
/// </summary>
internal static class LatencyMeasurement
{
    public const int Rounds = 9;
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1.5);

    /// <summary>Measures the completed trials' models on <paramref name="example"/>, about 5 ms per model a round, and sets their latency.</summary>
    public static void Measure(IReadOnlyList<SweepTrial> trials, float[] example, CancellationToken cancellation)
    {
        if (trials.Count == 0) return;
        var predictions = trials.Select(t =>
        {
            var model = t.GetModel();
            var session = model.CreateSession();
            var scores = new float[model.ClassCount];
            return (Action)(() => session.Predict(example, scores));
        }).ToArray();
        double[] microseconds = Medians(predictions, TimeSpan.FromMilliseconds(5 * Rounds * predictions.Length), cancellation);
        for (int i = 0; i < trials.Count; i++) trials[i].LatencyMicroseconds = microseconds[i];
    }

    /// <summary>
    /// Each prediction's median time in microseconds: a 1.5 s warm-up of them all, then <see cref="Rounds"/> rounds that
    /// together take about <paramref name="timing"/>, each prediction a block of calls per round.
    /// </summary>
    /// <param name="predictions">One call each: a single prediction.</param>
    /// <param name="timing">The time the rounds take in all.</param>
    /// <param name="cancellation">Checked between rounds.</param>
    /// <param name="roundDone">Told after each round (rounds done so far), e.g. for a progress bar.</param>
    public static double[] Medians(IReadOnlyList<Action> predictions, TimeSpan timing, CancellationToken cancellation, Action<int>? roundDone = null)
    {
        int n = predictions.Count;
        var perCall = new double[n];
        long start = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(start) < WarmUp)
        {
            cancellation.ThrowIfCancellationRequested();
            for (int i = 0; i < n; i++) perCall[i] = Seconds(predictions[i], 20) / 20;
        }
        double block = timing.TotalSeconds / Rounds / n;
        int[] calls = [.. perCall.Select(t => Math.Clamp((int)(block / Math.Max(t, 1e-9)), 10, 10_000_000))];
        var rounds = predictions.Select(_ => new double[Rounds]).ToArray();
        for (int r = 0; r < Rounds; r++)
        {
            cancellation.ThrowIfCancellationRequested();
            for (int k = 0; k < n; k++)
            {
                int i = r % 2 == 0 ? k : n - 1 - k;
                rounds[i][r] = Seconds(predictions[i], calls[i]) / calls[i] * 1e6;
            }
            roundDone?.Invoke(r + 1);
        }
        return [.. rounds.Select(times => times.Order().ElementAt(Rounds / 2))];
    }

    /// <summary>Seconds <paramref name="calls"/> calls of <paramref name="prediction"/> take.</summary>
    private static double Seconds(Action prediction, int calls)
    {
        long begin = Stopwatch.GetTimestamp();
        for (int c = 0; c < calls; c++) prediction();
        return Stopwatch.GetElapsedTime(begin).TotalSeconds;
    }
}
