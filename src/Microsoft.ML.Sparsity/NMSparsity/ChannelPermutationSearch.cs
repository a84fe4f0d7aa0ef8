using System.Runtime.Intrinsics;

namespace Microsoft.ML.Sparsity.NMSparsity;

/// <summary>
/// Finds a permutation of a weight's input channels that maximises the magnitude N:M pruning keeps (Pool &amp; Yu,
/// "Channel Permutations for N:M Sparsity", NeurIPS 2021). Channels are split into stripes of M consecutive positions
/// (the N:M groups); the search repeatedly takes the best-improving rearrangement of two stripes: first single channel
/// swaps between them, then, to escape the swaps' local optima, every way to split their 2M channels into two groups
/// (35 for M = 4; only for M ≤ <see cref="ExhaustiveMaxGroup"/>). Deterministic: no randomness, ties go to the first
/// stripe pair and the first split. The paper's other escape, accepting bounded regressions, is not used.
/// </summary>
/// <remarks>
/// The weight is read as consecutive runs of <c>channels</c> values, one run per (output, kernel position): a dense
/// weight [out, in], a convolution weight [out, kh, kw, in], or a dense weight after a channels-last flatten
/// [out, h·w·c]. One permutation applies to every run, so a stripe's value sums the top-N |w| of every run.
/// With G = channels / M stripes, R runs and S splits per stripe pair (M² swaps, then C(2M, M)/2), each phase
/// starts by scoring all G(G − 1)/2 stripe pairs, O(G² · S · R · M · N), and each accepted move rescores the 2G pairs
/// that involve the two changed stripes, O(G · S · R · M · N). Moves are accepted only when they gain more than 1e-9 of
/// the initially kept magnitude, so the kept magnitude rises with every move and the result never keeps less than
/// the identity.
/// </remarks>
internal static class ChannelPermutationSearch
{
    /// <summary>The default cap on accepted moves (over both phases).</summary>
    public const int DefaultMaxMoves = 10_000;

    /// <summary>
    /// The largest group size M for which the exhaustive two-stripe phase runs (35 splits for M = 4). For M = 8 its
    /// 6435 splits cost about 10× the swap phase and, on a 100×304 layer at 4:8, kept 0.007% more.
    /// </summary>
    public const int ExhaustiveMaxGroup = 4;

    private const double RelativeMinGain = 1e-9;

    /// <summary>
    /// Returns <c>p</c> with <c>p[j]</c> = the original channel placed at position j, chosen to maximise
    /// <see cref="KeptMagnitude"/> of the permuted weight.
    /// </summary>
    /// <param name="weight">Runs of <paramref name="channels"/> values, the channel fastest.</param>
    /// <param name="channels">The number of input channels permuted; a multiple of <paramref name="m"/>.</param>
    /// <param name="n">Weights kept per group.</param>
    /// <param name="m">The group size, at most 32.</param>
    /// <param name="maxMoves">The cap on accepted stripe rearrangements.</param>
    public static int[] Find(ReadOnlySpan<float> weight, int channels, int n, int m, int maxMoves = DefaultMaxMoves)
    {
        ValidatePattern(n, m);
        if (channels <= 0 || channels % m != 0)
            throw new ArgumentException($"The channel count ({channels}) must be a positive multiple of M = {m}.", nameof(channels));
        if (weight.Length % channels != 0)
            throw new ArgumentException($"The weight's length ({weight.Length}) is not a multiple of the channel count ({channels}).", nameof(weight));
        if (maxMoves < 0) throw new ArgumentOutOfRangeException(nameof(maxMoves), maxMoves, "Must not be negative.");

        var search = new StripeSearch(weight, channels, n, m);
        int moves = search.Run(SwapSplits(m), maxMoves);
        if (m <= ExhaustiveMaxGroup) search.Run(AllSplits(m), maxMoves - moves);
        return search.Permutation;
    }

    /// <summary>Throws unless 0 &lt; N &lt; M and 2 ≤ M ≤ 32.</summary>
    public static void ValidatePattern(int n, int m)
    {
        if (m < 2 || m > 32) throw new ArgumentOutOfRangeException(nameof(m), m, "Channel permutation needs a group size M in [2, 32].");
        if (n <= 0 || n >= m) throw new ArgumentOutOfRangeException(nameof(n), n, $"N must satisfy 0 < N < M = {m}.");
    }

    /// <summary>The magnitude N:M pruning keeps: the sum over every M consecutive values of the N largest |w|.</summary>
    public static double KeptMagnitude(ReadOnlySpan<float> weight, int n, int m)
    {
        Span<float> top = stackalloc float[n];
        double kept = 0;
        for (int start = 0; start + m <= weight.Length; start += m)
        {
            top.Clear();
            for (int i = 0; i < m; i++)
            {
                // |w| bubbles down the descending top-N list.
                float v = MathF.Abs(weight[start + i]);
                for (int k = 0; k < n; k++) (top[k], v) = (MathF.Max(top[k], v), MathF.Min(top[k], v));
            }
            foreach (float v in top) kept += v;
        }
        return kept;
    }

    // A split of two stripes' 2M positions (bits 0..M−1: the first stripe, M..2M−1: the second) is the bit set of
    // the positions that form the new first stripe; the others form the new second stripe.

    /// <summary>The M² single swaps: one channel of each stripe changes sides.</summary>
    private static ulong[] SwapSplits(int m)
    {
        ulong first = (1UL << m) - 1;
        var splits = new ulong[m * m];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++)
            splits[i * m + j] = first & ~(1UL << i) | 1UL << (m + j);
        return splits;
    }

    /// <summary>Every way to split 2M channels into two groups of M, each once (position 0 stays in the first group).</summary>
    private static ulong[] AllSplits(int m)
    {
        var splits = new List<ulong>();
        for (ulong s = 1; s < 1UL << (2 * m); s += 2)
            if (ulong.PopCount(s) == (ulong)m) splits.Add(s);
        return [.. splits];
    }

    private sealed class StripeSearch
    {
        private readonly float[] _abs;          // channel-major: |w| of channel c in run r at c·_runs + r
        private readonly int _runs, _n, _m, _stripes;
        private readonly double[] _stripeValue;
        private readonly double[] _pairGain;    // the best gain of stripe pair (s, t), s < t, at s·stripes + t
        private readonly int[] _pairSplit;      // and the split that achieves it (−1: none gains)
        private readonly double _minGain;
        private ulong[] _splits = [];

        public StripeSearch(ReadOnlySpan<float> weight, int channels, int n, int m)
        {
            (_n, _m) = (n, m);
            // Runs are padded with zeros to a multiple of 8: a zero adds nothing to a top-N sum.
            int runs = weight.Length / channels;
            _runs = (runs + Vector256<float>.Count - 1) / Vector256<float>.Count * Vector256<float>.Count;
            _stripes = channels / m;
            _abs = new float[_runs * channels];
            for (int r = 0; r < runs; r++)
            for (int c = 0; c < channels; c++)
                _abs[c * _runs + r] = MathF.Abs(weight[r * channels + c]);
            Permutation = Enumerable.Range(0, channels).ToArray();
            _stripeValue = new double[_stripes];
            for (int s = 0; s < _stripes; s++) _stripeValue[s] = Value(Permutation.AsSpan(s * m, m));
            _pairGain = new double[_stripes * _stripes];
            _pairSplit = new int[_stripes * _stripes];
            _minGain = RelativeMinGain * _stripeValue.Sum();
        }

        public int[] Permutation { get; }

        /// <summary>Takes the best-improving split of any stripe pair until none gains or <paramref name="maxMoves"/> are made; returns the moves made.</summary>
        public int Run(ulong[] splits, int maxMoves)
        {
            _splits = splits;
            for (int s = 0; s < _stripes; s++)
            for (int t = s + 1; t < _stripes; t++)
                Evaluate(s, t);
            int moves = 0;
            while (moves < maxMoves)
            {
                int best = -1;
                for (int s = 0; s < _stripes; s++)
                for (int t = s + 1; t < _stripes; t++)
                {
                    int pair = s * _stripes + t;
                    if (_pairGain[pair] > _minGain && (best < 0 || _pairGain[pair] > _pairGain[best])) best = pair;
                }
                if (best < 0) break;
                Apply(best / _stripes, best % _stripes, _splits[_pairSplit[best]]);
                moves++;
            }
            return moves;
        }

        private void Apply(int s, int t, ulong split)
        {
            Span<int> first = stackalloc int[_m], second = stackalloc int[_m];
            SplitChannels(s, t, split, first, second);
            first.CopyTo(Permutation.AsSpan(s * _m, _m));
            second.CopyTo(Permutation.AsSpan(t * _m, _m));
            _stripeValue[s] = Value(first);
            _stripeValue[t] = Value(second);
            for (int u = 0; u < _stripes; u++)
            {
                if (u != s && u != t) { Evaluate(Math.Min(u, s), Math.Max(u, s)); Evaluate(Math.Min(u, t), Math.Max(u, t)); }
            }
            Evaluate(s, t);
        }

        private void Evaluate(int s, int t)
        {
            Span<int> first = stackalloc int[_m], second = stackalloc int[_m];
            double current = _stripeValue[s] + _stripeValue[t], bestGain = 0;
            int bestSplit = -1;
            for (int i = 0; i < _splits.Length; i++)
            {
                SplitChannels(s, t, _splits[i], first, second);
                double gain = Value(first) + Value(second) - current;
                if (gain > bestGain) (bestGain, bestSplit) = (gain, i);
            }
            _pairGain[s * _stripes + t] = bestGain;
            _pairSplit[s * _stripes + t] = bestSplit;
        }

        private void SplitChannels(int s, int t, ulong split, Span<int> first, Span<int> second)
        {
            int a = 0, b = 0;
            for (int p = 0; p < 2 * _m; p++)
            {
                int channel = p < _m ? Permutation[s * _m + p] : Permutation[t * _m + p - _m];
                if ((split >> p & 1) != 0) first[a++] = channel;
                else second[b++] = channel;
            }
        }

        /// <summary>The magnitude kept when <paramref name="group"/> forms one N:M group: Σ over runs of the top-N |w|.</summary>
        /// <remarks>
        /// Eight runs at a time: each channel's |w| bubbles down a descending top-N list by max/min, so the list,
        /// and the value, do not depend on the order of the group's channels. Sums are in double, in a fixed order.
        /// </remarks>
        private double Value(ReadOnlySpan<int> group) => Vector256.IsHardwareAccelerated ? Value256(group) : ValueInHalves(group);

        private double Value256(ReadOnlySpan<int> group)
        {
            Span<Vector256<float>> top = stackalloc Vector256<float>[_n];
            var sum = Vector256<double>.Zero;
            for (int r = 0; r < _runs; r += Vector256<float>.Count)
            {
                top.Clear();
                foreach (int c in group)
                {
                    var v = Vector256.Create(_abs, c * _runs + r);
                    for (int k = 0; k < _n; k++)
                    {
                        var larger = Vector256.Max(top[k], v);
                        v = Vector256.Min(top[k], v);
                        top[k] = larger;
                    }
                }
                foreach (var t in top)
                {
                    var (low, high) = Vector256.Widen(t);
                    sum += low + high;
                }
            }
            return sum[0] + sum[1] + sum[2] + sum[3];
        }

        /// <summary>
        /// <see cref="Value256"/> with 128-bit vectors (ARM64's NEON, x86 without AVX2): the eight runs as two halves,
        /// summed in the same order (lane j of the wide sum is <c>sums[j / 2][j % 2]</c>), so the value is the same.
        /// </summary>
        private double ValueInHalves(ReadOnlySpan<int> group)
        {
            Span<Vector128<float>> low = stackalloc Vector128<float>[_n];
            Span<Vector128<float>> high = stackalloc Vector128<float>[_n];
            Vector128<double> sum01 = Vector128<double>.Zero, sum23 = Vector128<double>.Zero;
            for (int r = 0; r < _runs; r += 8)
            {
                low.Clear();
                high.Clear();
                foreach (int c in group)
                {
                    var v = Vector128.Create(_abs.AsSpan(c * _runs + r, 4));
                    var w = Vector128.Create(_abs.AsSpan(c * _runs + r + 4, 4));
                    for (int k = 0; k < _n; k++)
                    {
                        (low[k], v) = (Vector128.Max(low[k], v), Vector128.Min(low[k], v));
                        (high[k], w) = (Vector128.Max(high[k], w), Vector128.Min(high[k], w));
                    }
                }
                for (int k = 0; k < _n; k++)
                {
                    var (a0, a1) = Vector128.Widen(low[k]);
                    var (b0, b1) = Vector128.Widen(high[k]);
                    sum01 += a0 + b0;
                    sum23 += a1 + b1;
                }
            }
            return sum01[0] + sum01[1] + sum23[0] + sum23[1];
        }
    }
}
