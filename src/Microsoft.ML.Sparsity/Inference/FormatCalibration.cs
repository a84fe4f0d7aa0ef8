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
/// How. For batch 1, and for batches of <see cref="SmallBatchRows"/> and <see cref="BatchedRows"/> rows (a
/// convolution: <see cref="BatchedRows"/> only): each candidate is run once to warm it and once
/// more to size its timed block (enough runs for <see cref="BlockSeconds"/>; one <see cref="SlowFactor"/> times slower
/// than the fastest leaves); then <see cref="Rounds"/> rounds time one block
/// per candidate, in an order that rotates every round so drift on a busy machine spreads over all of them; each
/// candidate's best block counts. The lowest time per run wins at batch 1; for batches, the lowest sum of the times
/// at the two sizes. The best block rather than the median: on a busy machine
/// being descheduled, or waiting for a descheduled worker, only ever adds time, and it hits the formats that use the
/// pool's threads (the dense GEMM and GEMV) far more than the single-threaded sparse kernels; with the median, LeNet's
/// fully dense first layer came out faster in sliced ELLPACK at a load average of 34 on 2 cores, and predicted 2.8×
/// slower for it. A layer with one candidate is not timed.
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

    /// <summary>
    /// The smaller batch a dense layer's batched formats are also timed at: one format serves every chunk of 1 to
    /// <see cref="BatchedRows"/> rows, and a batch of 16 on two threads is two chunks of 8 (NeuralNetworkModel.Score).
    /// Timed at 64 rows alone, CSR (in blocks of 32 rows) took LeNet's 50% first layer with AVX-512 off and scored batches
    /// of 16 at 0.30–0.34× the dense model's speed. The batched format is the one that scores a chunk of each size in
    /// the least time: the large chunks of a long <c>Transform</c> weigh in proportion to their work, and a far slower
    /// small chunk still costs. (Weighing the two sizes' ratios alike, as a product of the times does, served LeNet's
    /// 90% first layer from sliced ELLPACK: batches of 16 at 1.41× the dense model but of 256 at 1.36× instead of 2.45×.)
    /// </summary>
    public const int SmallBatchRows = 8;

    /// <summary>Timed rounds per batch size: each candidate's best of this many blocks counts.</summary>
    public const int Rounds = 7;

    /// <summary>The shortest timed block: far above a 1 µs timer's resolution, short enough to keep a model's calibration within milliseconds.</summary>
    public const double BlockSeconds = 50e-6;

    /// <summary>A candidate whose run takes more than this many times the fastest one's is not timed further.</summary>
    private const long SlowFactor = 8;

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
    /// The fastest of <paramref name="candidates"/> (every format the layer can take, built on its weight) at batch 1,
    /// and for batches the one whose times at <see cref="SmallBatchRows"/> and <see cref="BatchedRows"/> rows add up least,
    /// from the cache when a weight of the same signature was measured before. A convolution's single-example format is
    /// its batched one (its rows are pixels), timed at <see cref="BatchedRows"/> only.
    /// </summary>
    /// <param name="signature">The weight's signature.</param>
    /// <param name="candidates">Builds the candidates (called only when the signature is not cached).</param>
    /// <param name="pool">The threads prediction runs on.</param>
    public Outcome Choose(Signature signature, Func<IReadOnlyList<(WeightFormat Format, IWeightMatrix Matrix)>> candidates, WorkerPool pool) =>
        _cache.GetOrAdd(signature, s => Measure(s, candidates(), pool));

    private Outcome Measure(Signature signature, IReadOnlyList<(WeightFormat Format, IWeightMatrix Matrix)> candidates, WorkerPool pool)
    {
        if (candidates.Count == 1)
            return new(candidates[0].Format, candidates[0].Format, null);
        if (_ticksPerSecond < 1_000_000)
            return new(default, default, $"the timer ticks every {1e6 / _ticksPerSecond:0.###} µs, too coarse to time a layer");
        // Batches are scored in chunks of at most BatchedRows, each chunk on one thread (NeuralNetworkModel.Score), so a dense
        // layer's batched formats are timed on one thread; timed on the pool, sliced ELLPACK's rows split over both threads
        // won at 64 rows and LeNet at 90% then scored batches 2.3× slower than with CSR. A convolution's rows are pixels: its
        // one format serves single examples too, which split their pixel rows over the pool.
        if (signature.Convolution)
        {
            (double[] times, string? convolutionFailure) = Times(candidates, pool, BatchedRows);
            WeightFormat format = convolutionFailure is null ? candidates[Least(times)].Format : default;
            return new(format, format, convolutionFailure);
        }

        (double[] small, string? failure) = Times(candidates, WorkerPool.Inline, SmallBatchRows);
        if (failure is not null)
            return new(default, default, failure);
        (double[] large, failure) = Times(candidates, WorkerPool.Inline, BatchedRows);
        if (failure is not null)
            return new(default, default, failure);
        WeightFormat batched = candidates[Least([.. small.Select((t, c) => t + large[c])])].Format;
        (double[] single, failure) = Times(candidates, pool, 1);
        return failure is null ? new(candidates[Least(single)].Format, batched, null) : new(default, default, failure);
    }

    /// <summary>The index of the least value (the first of equal ones: candidates come in a fixed order, dense first).</summary>
    private static int Least(double[] values) => Array.IndexOf(values, values.Min());

    /// <summary>
    /// Each candidate's time per run (its best block) at <paramref name="batch"/> rows, +∞ for one that left as far slower
    /// than the fastest; or why it cannot tell.
    /// </summary>
    private (double[] Times, string? Failure) Times(IReadOnlyList<(WeightFormat Format, IWeightMatrix Matrix)> candidates, WorkerPool pool, int batch)
    {
        IWeightMatrix first = candidates[0].Matrix;
        var x = new float[batch * first.Cols];
        var y = new float[batch * first.Rows];
        for (int i = 0; i < x.Length; i++)
            x[i] = (i * 7919 % 2003) / 1000f - 1f; // any finite values: the kernels' speed does not depend on them

        // An untimed run warms each candidate (its first call may be hundreds of times slower: code and data cold, the
        // pool's threads asleep), a timed one sizes its block. A candidate far slower than the fastest so far (a scalar
        // fallback: 2:4 N:M ran 0.01× dense with AVX-512 off) leaves there, and so does one that falls that far behind
        // in the rounds: a slow candidate costs a few runs, not a block per round (it made LeNet 2:4's calibration take
        // 2.8 s). A fast candidate's run is short, so a preemption rarely lands in it and drops it by mistake.
        long minBlockTicks = (long)Math.Ceiling(BlockSeconds * _ticksPerSecond);
        var timed = new List<(int Candidate, int Runs)>();
        long fastest = long.MaxValue;
        for (int c = 0; c < candidates.Count; c++)
        {
            _time(candidates[c].Matrix, pool, x, batch, y, 1);
            long once = _time(candidates[c].Matrix, pool, x, batch, y, 1);
            if (Unreadable(once, c, 1) is string failure)
                return ([], failure);
            if (once / SlowFactor > fastest)
                continue;
            fastest = Math.Min(fastest, once);
            timed.Add((c, (int)Math.Clamp(minBlockTicks / once, 1, MaxRuns)));
        }

        var best = new double[timed.Count];
        Array.Fill(best, double.MaxValue);
        var dropped = new bool[timed.Count];
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < timed.Count; i++)
            {
                int t = (i + round) % timed.Count;
                if (dropped[t])
                    continue;
                (int c, int runs) = timed[t];
                long ticks = _time(candidates[c].Matrix, pool, x, batch, y, runs);
                if (Unreadable(ticks, c, runs) is string failure)
                    return ([], failure);
                best[t] = Math.Min(best[t], (double)ticks / runs);
            }

            double leader = best.Min();
            for (int t = 0; t < timed.Count; t++)
                dropped[t] |= best[t] > SlowFactor * leader;
        }

        var times = new double[candidates.Count];
        Array.Fill(times, double.PositiveInfinity);
        for (int t = 0; t < timed.Count; t++)
            times[timed[t].Candidate] = dropped[t] ? double.PositiveInfinity : best[t];
        return (times, null);

        string? Unreadable(long ticks, int c, int runs) =>
            ticks < 0 ? "the timer went backwards"
            : ticks == 0 ? $"a timed block of {runs} {candidates[c].Format} multiplies at batch {batch} read zero ticks"
            : null;
    }

    private static long TimeBlock(IWeightMatrix matrix, WorkerPool pool, float[] x, int batch, float[] y, int runs)
    {
        long start = Stopwatch.GetTimestamp();
        for (int r = 0; r < runs; r++)
            matrix.MultiplyTransposed(pool, x, batch, y);
        return Stopwatch.GetTimestamp() - start;
    }
}
