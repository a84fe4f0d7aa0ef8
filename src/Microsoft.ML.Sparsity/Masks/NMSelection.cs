using System.Runtime.Intrinsics;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Masks;

/// <summary>
/// The N:M top-N selection, fast enough to run at every training step (SR-STE recomputes masks from the dense weights
/// at every forward pass). Element i of a group is kept when fewer than N elements of its group beat it, where j beats
/// i if score_j &gt; score_i, or score_j = score_i and j comes first: exactly N kept per group (⌈N·r/M⌉ in a ragged last
/// group of r), ties to the earlier position.
/// </summary>
internal static class NMSelection
{
    /// <summary>
    /// Writes 1 (kept) or 0 into <paramref name="mask"/> for each element. The scores are runs of
    /// <paramref name="run"/> elements (a layer's group axis: a dense layer's inputs, a convolution's input channels at one
    /// kernel position); each run is cut into groups of M from its start, and when M does not divide the run its last group
    /// is ragged: r = run mod M elements of which <see cref="KeptInGroup"/>(n, m, r) = ⌈N·r/M⌉ are kept.
    /// </summary>
    /// <param name="scores">The scores; with <paramref name="absolute"/>, their magnitudes are compared.</param>
    /// <param name="absolute">Compare |score| (for weights).</param>
    /// <param name="n">Kept per full group.</param>
    /// <param name="m">The group size.</param>
    /// <param name="mask">Receives the mask.</param>
    /// <param name="run">The run length, which divides the span (the span's length for a single run).</param>
    public static void TopN(ReadOnlySpan<float> scores, bool absolute, int n, int m, Span<float> mask, int run) =>
        TopN(scores, absolute, n, m, mask, run, VectorIsas.Best);

    /// <summary>As the other overload, with the fast paths of tier <paramref name="isa"/> (the tests run each; the masks are identical).</summary>
    public static void TopN(ReadOnlySpan<float> scores, bool absolute, int n, int m, Span<float> mask, int run, VectorIsa isa)
    {
        if (scores.Length == 0) return;
        if (run <= 0 || scores.Length % run != 0)
            throw new ArgumentException($"The run length {run} does not divide the {scores.Length} scores.", nameof(run));
        int full = run / m * m;
        if (full == run)
        {
            FullGroups(scores, absolute, n, m, mask, isa);
            return;
        }
        for (int start = 0; start < scores.Length; start += run)
        {
            FullGroups(scores.Slice(start, full), absolute, n, m, mask.Slice(start, full), isa);
            SelectInGroup(scores.Slice(start + full, run - full), absolute, KeptInGroup(n, m, run - full), mask.Slice(start + full, run - full));
        }
    }

    /// <summary>Kept of a group of <paramref name="size"/> ≤ M elements: ⌈N·size/M⌉ (N for a full group).</summary>
    public static int KeptInGroup(int n, int m, int size) => (n * size + m - 1) / m;

    /// <summary>Kept of <paramref name="length"/> elements in runs of <paramref name="run"/>, as <see cref="TopN(ReadOnlySpan{float}, bool, int, int, Span{float}, int)"/> keeps them.</summary>
    public static long KeptCount(long length, int run, int n, int m)
    {
        if (length == 0) return 0;
        return length / run * ((long)run / m * n + KeptInGroup(n, m, run % m));
    }

    /// <summary>Groups of M from the start of the span, whose length is a multiple of M.</summary>
    private static void FullGroups(ReadOnlySpan<float> scores, bool absolute, int n, int m, Span<float> mask, VectorIsa isa)
    {
        int start = 0;
        if (m == 4 && isa >= VectorIsa.Vector128) start = TopNOf4(scores, absolute, n, mask);
        else if (m == 8 && isa >= VectorIsa.Avx2 && Vector256.IsHardwareAccelerated) start = TopNOf8(scores, absolute, n, mask);
        else if (m == 8 && isa >= VectorIsa.Vector128) start = TopNOf8InHalves(scores, absolute, n, mask);
        for (int g = start; g < scores.Length; g += m)
            SelectInGroup(scores.Slice(g, m), absolute, n, mask.Slice(g, m));
    }

    /// <summary>Keeps the <paramref name="keep"/> best of one group: the elements fewer than <paramref name="keep"/> others beat.</summary>
    private static void SelectInGroup(ReadOnlySpan<float> group, bool absolute, int keep, Span<float> mask)
    {
        for (int i = 0; i < group.Length; i++)
        {
            float si = Score(group[i], absolute);
            int beaten = 0;
            for (int j = 0; j < group.Length; j++)
            {
                float sj = Score(group[j], absolute);
                if (sj > si || (sj == si && j < i)) beaten++;
            }
            mask[i] = beaten < keep ? 1f : 0f;
        }
    }

    private static float Score(float value, bool absolute) => absolute ? MathF.Abs(value) : value;

    /// <summary>M = 4: one group per Vector128; the other three members come from lane rotations. Returns the elements done.</summary>
    private static int TopNOf4(ReadOnlySpan<float> scores, bool absolute, int n, Span<float> mask)
    {
        var limit = Vector128.Create((float)n);
        var one = Vector128.Create(1f);
        // Rotation r brings element (i + r) mod 4 to lane i; it precedes lane i exactly when i + r ≥ 4.
        var earlier1 = Vector128.Create(0, 0, 0, -1).AsSingle();
        var earlier2 = Vector128.Create(0, 0, -1, -1).AsSingle();
        var earlier3 = Vector128.Create(0, -1, -1, -1).AsSingle();
        int done = scores.Length / 4 * 4;
        for (int g = 0; g < done; g += 4)
        {
            var v = Vector128.Create(scores.Slice(g, 4));
            if (absolute) v = Vector128.Abs(v);
            var beaten = Beats(Vector128.Shuffle(v, Vector128.Create(1, 2, 3, 0)), v, earlier1, one)
                       + Beats(Vector128.Shuffle(v, Vector128.Create(2, 3, 0, 1)), v, earlier2, one)
                       + Beats(Vector128.Shuffle(v, Vector128.Create(3, 0, 1, 2)), v, earlier3, one);
            (Vector128.LessThan(beaten, limit) & one).CopyTo(mask.Slice(g, 4));
        }
        return done;
    }

    /// <summary>M = 8: one group per Vector256, as <see cref="TopNOf4"/>. Returns the elements done.</summary>
    private static int TopNOf8(ReadOnlySpan<float> scores, bool absolute, int n, Span<float> mask)
    {
        var limit = Vector256.Create((float)n);
        var one = Vector256.Create(1f);
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        Span<Vector256<int>> rotation = stackalloc Vector256<int>[7];
        Span<Vector256<float>> earlier = stackalloc Vector256<float>[7];
        for (int r = 1; r < 8; r++)
        {
            rotation[r - 1] = (lane + Vector256.Create(r)) & Vector256.Create(7);
            earlier[r - 1] = Vector256.GreaterThanOrEqual(lane, Vector256.Create(8 - r)).AsSingle();
        }
        int done = scores.Length / 8 * 8;
        for (int g = 0; g < done; g += 8)
        {
            var v = Vector256.Create(scores.Slice(g, 8));
            if (absolute) v = Vector256.Abs(v);
            var beaten = Vector256<float>.Zero;
            for (int r = 0; r < 7; r++)
            {
                var other = Vector256.Shuffle(v, rotation[r]);
                beaten += (Vector256.GreaterThan(other, v) | (Vector256.Equals(other, v) & earlier[r])) & one;
            }
            (Vector256.LessThan(beaten, limit) & one).CopyTo(mask.Slice(g, 8));
        }
        return done;
    }

    /// <summary>
    /// M = 8 with 128-bit vectors (ARM64's NEON, x86 without AVX2): a group's low and high halves, each rotation of the
    /// eight built from constant in-register shuffles of the two (<see cref="Window1"/> to <see cref="Window3"/>), the
    /// ties broken as <see cref="TopNOf8"/> does. The counts are exact small integers: the same mask.
    /// </summary>
    private static int TopNOf8InHalves(ReadOnlySpan<float> scores, bool absolute, int n, Span<float> mask)
    {
        var limit = Vector128.Create((float)n);
        var one = Vector128.Create(1f);
        // Rotation r brings element (i + r) mod 8 to lane i; it precedes lane i exactly when i + r ≥ 8.
        var none = Vector128<float>.Zero;
        var last1 = Vector128.Create(0, 0, 0, -1).AsSingle();
        var last2 = Vector128.Create(0, 0, -1, -1).AsSingle();
        var last3 = Vector128.Create(0, -1, -1, -1).AsSingle();
        var all = Vector128.Create(-1).AsSingle();
        int done = scores.Length / 8 * 8;
        for (int g = 0; g < done; g += 8)
        {
            var lo = Vector128.Create(scores.Slice(g, 4));
            var hi = Vector128.Create(scores.Slice(g + 4, 4));
            if (absolute) (lo, hi) = (Vector128.Abs(lo), Vector128.Abs(hi));
            var beatenLo = Beats(Window1(lo, hi), lo, none, one) + Beats(Window2(lo, hi), lo, none, one) + Beats(Window3(lo, hi), lo, none, one)
                         + Beats(hi, lo, none, one)
                         + Beats(Window1(hi, lo), lo, last1, one) + Beats(Window2(hi, lo), lo, last2, one) + Beats(Window3(hi, lo), lo, last3, one);
            var beatenHi = Beats(Window1(hi, lo), hi, last1, one) + Beats(Window2(hi, lo), hi, last2, one) + Beats(Window3(hi, lo), hi, last3, one)
                         + Beats(lo, hi, all, one)
                         + Beats(Window1(lo, hi), hi, all, one) + Beats(Window2(lo, hi), hi, all, one) + Beats(Window3(lo, hi), hi, all, one);
            (Vector128.LessThan(beatenLo, limit) & one).CopyTo(mask.Slice(g, 4));
            (Vector128.LessThan(beatenHi, limit) & one).CopyTo(mask.Slice(g + 4, 4));
        }
        return done;
    }

    /// <summary>Lanes 1..4 of the eight (a, b): a[1], a[2], a[3], b[0].</summary>
    private static Vector128<float> Window1(Vector128<float> a, Vector128<float> b) =>
        Vector128.ConditionalSelect(Vector128.Create(-1, -1, -1, 0).AsSingle(), Vector128.Shuffle(a, Vector128.Create(1, 2, 3, 0)), Vector128.Shuffle(b, Vector128.Create(1, 2, 3, 0)));

    /// <summary>Lanes 2..5 of the eight (a, b): a[2], a[3], b[0], b[1].</summary>
    private static Vector128<float> Window2(Vector128<float> a, Vector128<float> b) =>
        Vector128.ConditionalSelect(Vector128.Create(-1, -1, 0, 0).AsSingle(), Vector128.Shuffle(a, Vector128.Create(2, 3, 0, 1)), Vector128.Shuffle(b, Vector128.Create(2, 3, 0, 1)));

    /// <summary>Lanes 3..6 of the eight (a, b): a[3], b[0], b[1], b[2].</summary>
    private static Vector128<float> Window3(Vector128<float> a, Vector128<float> b) =>
        Vector128.ConditionalSelect(Vector128.Create(-1, 0, 0, 0).AsSingle(), Vector128.Shuffle(a, Vector128.Create(3, 0, 1, 2)), Vector128.Shuffle(b, Vector128.Create(3, 0, 1, 2)));

    /// <summary>1 in the lanes where <paramref name="other"/> beats <paramref name="v"/>, else 0.</summary>
    private static Vector128<float> Beats(Vector128<float> other, Vector128<float> v, Vector128<float> earlier, Vector128<float> one) =>
        (Vector128.GreaterThan(other, v) | (Vector128.Equals(other, v) & earlier)) & one;
}
