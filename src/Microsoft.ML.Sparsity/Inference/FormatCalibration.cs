using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// <see cref="WeightFormat.Auto"/>: picks a layer's single-example and batched formats by timing the candidates on
/// its weight, on this machine, once per process for each weight <see cref="Signature"/>.
/// </summary>
/// <remarks>
/// <para>
/// Why measure. The fastest format depends on the CPU far more than a fixed table can follow: on Zen 5 with AVX-512
/// sliced ELLPACK served LeNet at 90% sparsity 5× faster than the dense GEMV, while on an AVX2-only EPYC CSR at the
/// same sparsity ran 0.53× dense (issue 15). The kernels themselves decide which tier they run, so timing them here
/// sees exactly what prediction will run.
/// </para>
/// <para>
/// How. For batch 1 and for a batch of <see cref="BatchedRows"/> rows: each candidate is run twice to warm it and
/// size its timed block (enough runs for <see cref="BlockSeconds"/>); then <see cref="Rounds"/> rounds time one block
/// per candidate, in an order that rotates every round so drift on a busy machine spreads over all of them; the lowest
/// median time per run wins. About a millisecond per candidate at batch 1 and a few at batch 64 on LeNet's layers.
/// </para>
/// <para>
/// When it cannot measure, the caller falls back to <see cref="FixedFormatRule"/> with the reason: a timer coarser than
/// a microsecond (<see cref="Stopwatch.Frequency"/>), a timed block that read zero ticks, or a clock that went
/// backwards. Thread-safe: concurrent calls for one signature may both measure; one result is kept.
/// </para>
/// </remarks>
internal sealed class FormatCalibration
{
    /// <summary>The batch the batched formats are timed at: the prediction engine's largest chunk.</summary>
    public const int BatchedRows = 64;

    /// <summary>Timed rounds per batch size; the median of this many blocks.</summary>
    public const int Rounds = 5;

    /// <summary>The shortest timed block: far above a 1 µs timer's resolution, short enough to keep a model's calibration within milliseconds.</summary>
    public const double BlockSeconds = 50e-6;

    /// <summary>The most runs in one block (tiny layers run in tens of nanoseconds).</summary>
    private const int MaxRuns = 4096;

    /// <summary>Times <paramref name="runs"/> calls of <paramref name="matrix"/>'s multiply at <paramref name="batch"/> rows; returns the ticks elapsed.</summary>
    internal delegate long BlockTimer(IWeightMatrix matrix, WorkerPool pool, float[] x, int batch, float[] y, int runs);

    private readonly ConcurrentDictionary<Signature, Outcome> _cache = new();
    private readonly long _ticksPerSecond;
    private readonly BlockTimer _time;

    /// <param name="ticksPerSecond">The timer's frequency.</param>
    /// <param name="time">The timer (tests inject one to make the choice deterministic).</param>
    internal FormatCalibration(long ticksPerSecond, BlockTimer time)
    {
        _ticksPerSecond = ticksPerSecond;
        _time = time;
    }

    /// <summary>The process's calibration, timed with <see cref="Stopwatch"/>.</summary>
    public static FormatCalibration Shared { get; } = new(Stopwatch.Frequency, TimeBlock);

    /// <summary>What identifies a weight for the cache: its shape, density (in 1/32 steps), N:M pattern ((0, 0): none), and whether it is a convolution.</summary>
    public readonly record struct Signature(int Rows, int Cols, int DensityStep, int N, int M, bool Convolution)
    {
        public static Signature Of(int rows, int cols, double density, int n, int m, bool convolution) =>
            new(rows, cols, (int)Math.Round(density * 32), n, m, convolution);
    }

    /// <summary>The formats measured fastest, or why the measurement failed (<see cref="Failure"/> not null; the formats are then meaningless).</summary>
    public sealed record Outcome(WeightFormat Single, WeightFormat Batched, string? Failure);

    /// <summary>
    /// The fastest of <paramref name="candidates"/> (every format the layer can take, built on its weight) at batch 1
    /// and at <see cref="BatchedRows"/>, from the cache when a weight of the same signature was measured before.
    /// A convolution's single-example format is its batched one (its rows are pixels): batch 1 is not timed.
    /// </summary>
    /// <param name="signature">The weight's signature.</param>
    /// <param name="candidates">Builds the candidates (called only when the signature is not cached).</param>
    /// <param name="pool">The threads prediction runs on.</param>
    public Outcome Choose(Signature signature, Func<IReadOnlyList<(WeightFormat Format, IWeightMatrix Matrix)>> candidates, WorkerPool pool) =>
        _cache.GetOrAdd(signature, s => Measure(s, candidates(), pool));

    private Outcome Measure(Signature signature, IReadOnlyList<(WeightFormat Format, IWeightMatrix Matrix)> candidates, WorkerPool pool)
    {
        if (_ticksPerSecond < 1_000_000)
            return new(default, default, $"the timer ticks every {1e6 / _ticksPerSecond:0.###} µs, too coarse to time a layer");
        (WeightFormat batched, string? failure) = Fastest(candidates, pool, BatchedRows);
        if (failure is not null || signature.Convolution)
            return new(batched, batched, failure);
        (WeightFormat single, failure) = Fastest(candidates, pool, 1);
        return new(single, batched, failure);
    }

    /// <summary>The candidate with the lowest median time per run at <paramref name="batch"/> rows, or why it cannot tell.</summary>
    private (WeightFormat Format, string? Failure) Fastest(IReadOnlyList<(WeightFormat Format, IWeightMatrix Matrix)> candidates, WorkerPool pool, int batch)
    {
        IWeightMatrix first = candidates[0].Matrix;
        var x = new float[batch * first.Cols];
        var y = new float[batch * first.Rows];
        for (int i = 0; i < x.Length; i++)
            x[i] = (i * 7919 % 2003) / 1000f - 1f; // any finite values: the kernels' speed does not depend on them

        // Warm each candidate and size its block from a second run.
        long minBlockTicks = (long)Math.Ceiling(BlockSeconds * _ticksPerSecond);
        var runs = new int[candidates.Count];
        for (int c = 0; c < candidates.Count; c++)
        {
            _time(candidates[c].Matrix, pool, x, batch, y, 1);
            long once = _time(candidates[c].Matrix, pool, x, batch, y, 1);
            runs[c] = (int)Math.Clamp(minBlockTicks / Math.Max(once, 1), 1, MaxRuns);
        }

        var perRun = new double[candidates.Count][];
        for (int c = 0; c < candidates.Count; c++)
            perRun[c] = new double[Rounds];
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < candidates.Count; i++)
            {
                int c = (i + round) % candidates.Count;
                long ticks = _time(candidates[c].Matrix, pool, x, batch, y, runs[c]);
                if (ticks < 0)
                    return (default, "the timer went backwards");
                if (ticks == 0)
                    return (default, $"a timed block of {runs[c]} {candidates[c].Format} multiplies at batch {batch} read zero ticks");
                perRun[c][round] = (double)ticks / runs[c];
            }
        }

        int best = 0;
        double[] medians = [.. perRun.Select(Median)];
        for (int c = 1; c < candidates.Count; c++)
        {
            if (medians[c] < medians[best])
                best = c;
        }

        return (candidates[best].Format, null);
    }

    private static double Median(double[] values)
    {
        double[] sorted = [.. values.Order()];
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static long TimeBlock(IWeightMatrix matrix, WorkerPool pool, float[] x, int batch, float[] y, int runs)
    {
        long start = Stopwatch.GetTimestamp();
        for (int r = 0; r < runs; r++)
            matrix.MultiplyTransposed(pool, x, batch, y);
        return Stopwatch.GetTimestamp() - start;
    }
}
