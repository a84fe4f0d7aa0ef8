using System.Diagnostics;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>
/// Single-prediction latency of several models on this machine, comparable with each other: all warmed up together
/// (the JIT's optimised code arrives after about a second of steady calls), then timed in alternating rounds (forward,
/// then backward order), each model's latency the median of its rounds' means.
/// </summary>
internal static class LatencyMeasurement
{
    private const int Rounds = 9;
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1.5), Block = TimeSpan.FromMilliseconds(5);

    public static void Measure(IReadOnlyList<SweepTrial> trials, float[] example, CancellationToken cancellation)
    {
        if (trials.Count == 0) return;
        var models = trials.Select(t => t.GetModel()).ToArray();
        var sessions = models.Select(m => m.CreateSession()).ToArray();
        var scores = models.Select(m => new float[m.ClassCount]).ToArray();
        var calls = new int[sessions.Length];
        long start = Stopwatch.GetTimestamp();
        var perCall = new double[sessions.Length];
        while (Stopwatch.GetElapsedTime(start) < WarmUp)
        {
            cancellation.ThrowIfCancellationRequested();
            for (int i = 0; i < sessions.Length; i++) perCall[i] = Time(sessions[i], example, scores[i], 20) / 20;
        }
        // Each round's block of calls takes about 5 ms per model.
        for (int i = 0; i < sessions.Length; i++) calls[i] = Math.Clamp((int)(Block.TotalSeconds * Stopwatch.Frequency / Math.Max(perCall[i], 1)), 10, 100_000);
        var rounds = sessions.Select(_ => new double[Rounds]).ToArray();
        for (int r = 0; r < Rounds; r++)
        {
            cancellation.ThrowIfCancellationRequested();
            for (int k = 0; k < sessions.Length; k++)
            {
                int i = r % 2 == 0 ? k : sessions.Length - 1 - k;
                rounds[i][r] = Time(sessions[i], example, scores[i], calls[i]) / calls[i];
            }
        }
        for (int i = 0; i < trials.Count; i++)
        {
            Array.Sort(rounds[i]);
            trials[i].LatencyMicroseconds = rounds[i][Rounds / 2] * 1e6 / Stopwatch.Frequency;
        }
    }

    /// <summary>Ticks <paramref name="calls"/> predictions take.</summary>
    private static double Time(Inference.InferenceSession session, float[] example, float[] scores, int calls)
    {
        long begin = Stopwatch.GetTimestamp();
        for (int c = 0; c < calls; c++) session.Predict(example, scores);
        return Stopwatch.GetTimestamp() - begin;
    }
}
