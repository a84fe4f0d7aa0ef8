using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

// Matrix-vector kernels for m == 1 (batch-1 inference) and n == 1. No packing: the matrix is read once, in
// storage order. Per output the summation order is fixed by its position (threads split at GemvChunk
// boundaries, which are multiples of the 4-row and 64- or 32-column groups), so results are thread-count independent.
internal static unsafe partial class Gemm
{
    /// <summary>Outputs per GEMV work chunk; a multiple of the row group (4) and the column group (64).</summary>
    private const int GemvChunk = 64;

    /// <summary>Below this many multiply-adds a GEMV runs on the calling thread only.</summary>
    private const long GemvParallelThreshold = 1L << 17;

    /// <summary>y[r * yStride] = alpha * dot(M[r, 0..k), x) + beta * y[r * yStride] for r in [r0, r1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotRows(VectorIsa isa, float* mat, int ld, int r0, int r1, float* x, int k, float alpha,
        float beta, float* y, int yStride)
    {
        int r = r0;
        if (isa >= VectorIsa.Vector128)
        {
            for (; r + 4 <= r1; r += 4)
            {
                float* m0 = mat + (nint)r * ld;
                float s0, s1, s2, s3;
                if (isa >= VectorIsa.Avx2)
                    Dot4(m0, m0 + ld, m0 + 2 * (nint)ld, m0 + 3 * (nint)ld, x, k, out s0, out s1, out s2, out s3);
                else
                    Dot4x128(m0, m0 + ld, m0 + 2 * (nint)ld, m0 + 3 * (nint)ld, x, k, out s0, out s1, out s2, out s3);
                Apply(y + (nint)r * yStride, s0, alpha, beta);
                Apply(y + (nint)(r + 1) * yStride, s1, alpha, beta);
                Apply(y + (nint)(r + 2) * yStride, s2, alpha, beta);
                Apply(y + (nint)(r + 3) * yStride, s3, alpha, beta);
            }
        }

        for (; r < r1; r++)
        {
            // Same order as one lane of Dot4 (Dot4x128): two interleaved accumulators, one more vector step, then
            // the scalar tail.
            float* row = mat + (nint)r * ld;
            int p = 0;
            float s = 0f;
            if (isa >= VectorIsa.Avx2)
            {
                Vector256<float> a0 = default, a1 = default;
                for (; p + 16 <= k; p += 16)
                {
                    a0 = Fma.MultiplyAdd(Vector256.Load(row + p), Vector256.Load(x + p), a0);
                    a1 = Fma.MultiplyAdd(Vector256.Load(row + p + 8), Vector256.Load(x + p + 8), a1);
                }

                if (p + 8 <= k)
                {
                    a0 = Fma.MultiplyAdd(Vector256.Load(row + p), Vector256.Load(x + p), a0);
                    p += 8;
                }

                s = Vector256.Sum(a0 + a1);
            }
            else if (isa == VectorIsa.Vector128)
            {
                Vector128<float> a0 = default, a1 = default;
                for (; p + 8 <= k; p += 8)
                {
                    a0 = MulAdd(Vector128.Load(row + p), Vector128.Load(x + p), a0);
                    a1 = MulAdd(Vector128.Load(row + p + 4), Vector128.Load(x + p + 4), a1);
                }

                if (p + 4 <= k)
                {
                    a0 = MulAdd(Vector128.Load(row + p), Vector128.Load(x + p), a0);
                    p += 4;
                }

                s = Vector128.Sum(a0 + a1);
            }

            for (; p < k; p++)
                s += row[p] * x[p];
            Apply(y + (nint)r * yStride, s, alpha, beta);
        }
    }

    /// <summary>Dot products of four rows with x (AVX2 + FMA); 8 independent accumulators hide the FMA latency.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(float* m0, float* m1, float* m2, float* m3, float* x, int k,
        out float s0, out float s1, out float s2, out float s3)
    {
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector256<float> a20 = default, a21 = default, a30 = default, a31 = default;
        int p = 0;
        for (; p + 16 <= k; p += 16)
        {
            Vector256<float> x0 = Vector256.Load(x + p), x1 = Vector256.Load(x + p + 8);
            a00 = Fma.MultiplyAdd(Vector256.Load(m0 + p), x0, a00);
            a01 = Fma.MultiplyAdd(Vector256.Load(m0 + p + 8), x1, a01);
            a10 = Fma.MultiplyAdd(Vector256.Load(m1 + p), x0, a10);
            a11 = Fma.MultiplyAdd(Vector256.Load(m1 + p + 8), x1, a11);
            a20 = Fma.MultiplyAdd(Vector256.Load(m2 + p), x0, a20);
            a21 = Fma.MultiplyAdd(Vector256.Load(m2 + p + 8), x1, a21);
            a30 = Fma.MultiplyAdd(Vector256.Load(m3 + p), x0, a30);
            a31 = Fma.MultiplyAdd(Vector256.Load(m3 + p + 8), x1, a31);
        }

        if (p + 8 <= k)
        {
            Vector256<float> x0 = Vector256.Load(x + p);
            a00 = Fma.MultiplyAdd(Vector256.Load(m0 + p), x0, a00);
            a10 = Fma.MultiplyAdd(Vector256.Load(m1 + p), x0, a10);
            a20 = Fma.MultiplyAdd(Vector256.Load(m2 + p), x0, a20);
            a30 = Fma.MultiplyAdd(Vector256.Load(m3 + p), x0, a30);
            p += 8;
        }

        s0 = Vector256.Sum(a00 + a01);
        s1 = Vector256.Sum(a10 + a11);
        s2 = Vector256.Sum(a20 + a21);
        s3 = Vector256.Sum(a30 + a31);
        Tail4(m0, m1, m2, m3, x, p, k, ref s0, ref s1, ref s2, ref s3);
    }

    /// <summary><see cref="Dot4"/> with Vector128 (SSE, NEON): the same 8 independent accumulators, half as wide.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x128(float* m0, float* m1, float* m2, float* m3, float* x, int k,
        out float s0, out float s1, out float s2, out float s3)
    {
        Vector128<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector128<float> a20 = default, a21 = default, a30 = default, a31 = default;
        int p = 0;
        for (; p + 8 <= k; p += 8)
        {
            Vector128<float> x0 = Vector128.Load(x + p), x1 = Vector128.Load(x + p + 4);
            a00 = MulAdd(Vector128.Load(m0 + p), x0, a00);
            a01 = MulAdd(Vector128.Load(m0 + p + 4), x1, a01);
            a10 = MulAdd(Vector128.Load(m1 + p), x0, a10);
            a11 = MulAdd(Vector128.Load(m1 + p + 4), x1, a11);
            a20 = MulAdd(Vector128.Load(m2 + p), x0, a20);
            a21 = MulAdd(Vector128.Load(m2 + p + 4), x1, a21);
            a30 = MulAdd(Vector128.Load(m3 + p), x0, a30);
            a31 = MulAdd(Vector128.Load(m3 + p + 4), x1, a31);
        }

        if (p + 4 <= k)
        {
            Vector128<float> x0 = Vector128.Load(x + p);
            a00 = MulAdd(Vector128.Load(m0 + p), x0, a00);
            a10 = MulAdd(Vector128.Load(m1 + p), x0, a10);
            a20 = MulAdd(Vector128.Load(m2 + p), x0, a20);
            a30 = MulAdd(Vector128.Load(m3 + p), x0, a30);
            p += 4;
        }

        s0 = Vector128.Sum(a00 + a01);
        s1 = Vector128.Sum(a10 + a11);
        s2 = Vector128.Sum(a20 + a21);
        s3 = Vector128.Sum(a30 + a31);
        Tail4(m0, m1, m2, m3, x, p, k, ref s0, ref s1, ref s2, ref s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tail4(float* m0, float* m1, float* m2, float* m3, float* x, int p, int k,
        ref float s0, ref float s1, ref float s2, ref float s3)
    {
        for (; p < k; p++)
        {
            float xp = x[p];
            s0 += m0[p] * xp;
            s1 += m1[p] * xp;
            s2 += m2[p] * xp;
            s3 += m3[p] * xp;
        }
    }

    /// <summary>
    /// y[j * yStride] = alpha * sum_p x[p] * M[p, j] + beta * y[j * yStride] for j in [j0, j1): column groups of 8
    /// vectors (64 columns with AVX2, 32 with Vector128) keep 8 independent accumulators (enough to cover the FMA
    /// latency) while the k rows stream past.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private static void AxpyRows(VectorIsa isa, float* mat, int ld, int j0, int j1, float* x, int k, float alpha,
        float beta, float* y, int yStride)
    {
        float* sums = stackalloc float[64];
        int j = j0;
        if (isa >= VectorIsa.Avx2)
        {
            for (; j + 64 <= j1; j += 64)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector256<float> a4 = default, a5 = default, a6 = default, a7 = default;
                float* col = mat + j;
                for (int p = 0; p < k; p++, col += ld)
                {
                    Vector256<float> xp = Vector256.Create(x[p]);
                    a0 = Fma.MultiplyAdd(xp, Vector256.Load(col), a0);
                    a1 = Fma.MultiplyAdd(xp, Vector256.Load(col + 8), a1);
                    a2 = Fma.MultiplyAdd(xp, Vector256.Load(col + 16), a2);
                    a3 = Fma.MultiplyAdd(xp, Vector256.Load(col + 24), a3);
                    a4 = Fma.MultiplyAdd(xp, Vector256.Load(col + 32), a4);
                    a5 = Fma.MultiplyAdd(xp, Vector256.Load(col + 40), a5);
                    a6 = Fma.MultiplyAdd(xp, Vector256.Load(col + 48), a6);
                    a7 = Fma.MultiplyAdd(xp, Vector256.Load(col + 56), a7);
                }

                Vector256.Store(a0, sums);
                Vector256.Store(a1, sums + 8);
                Vector256.Store(a2, sums + 16);
                Vector256.Store(a3, sums + 24);
                Vector256.Store(a4, sums + 32);
                Vector256.Store(a5, sums + 40);
                Vector256.Store(a6, sums + 48);
                Vector256.Store(a7, sums + 56);
                for (int q = 0; q < 64; q++)
                    Apply(y + (nint)(j + q) * yStride, sums[q], alpha, beta);
            }
        }
        else if (isa == VectorIsa.Vector128)
        {
            for (; j + 32 <= j1; j += 32)
            {
                Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector128<float> a4 = default, a5 = default, a6 = default, a7 = default;
                float* col = mat + j;
                for (int p = 0; p < k; p++, col += ld)
                {
                    Vector128<float> xp = Vector128.Create(x[p]);
                    a0 = MulAdd(xp, Vector128.Load(col), a0);
                    a1 = MulAdd(xp, Vector128.Load(col + 4), a1);
                    a2 = MulAdd(xp, Vector128.Load(col + 8), a2);
                    a3 = MulAdd(xp, Vector128.Load(col + 12), a3);
                    a4 = MulAdd(xp, Vector128.Load(col + 16), a4);
                    a5 = MulAdd(xp, Vector128.Load(col + 20), a5);
                    a6 = MulAdd(xp, Vector128.Load(col + 24), a6);
                    a7 = MulAdd(xp, Vector128.Load(col + 28), a7);
                }

                Vector128.Store(a0, sums);
                Vector128.Store(a1, sums + 4);
                Vector128.Store(a2, sums + 8);
                Vector128.Store(a3, sums + 12);
                Vector128.Store(a4, sums + 16);
                Vector128.Store(a5, sums + 20);
                Vector128.Store(a6, sums + 24);
                Vector128.Store(a7, sums + 28);
                for (int q = 0; q < 32; q++)
                    Apply(y + (nint)(j + q) * yStride, sums[q], alpha, beta);
            }
        }

        // Remaining columns (fewer than a group unless not vectorized): one pass over k with the partial sums in a
        // scratch row, so the vector-wide pieces form independent chains instead of one latency-bound accumulator.
        while (j < j1)
        {
            int rest = Math.Min(64, j1 - j);
            int vectorized = isa >= VectorIsa.Vector128 ? rest / 4 * 4 : 0;
            new Span<float>(sums, rest).Clear();
            float* col = mat + j;
            for (int p = 0; p < k; p++, col += ld)
            {
                float xp = x[p];
                int q = 0;
                for (; q < vectorized; q += 4)
                {
                    Vector128<float> sum = Vector128.Load(sums + q);
                    Vector128.Store(MulAdd(Vector128.Create(xp), Vector128.Load(col + q), sum), sums + q);
                }
                for (; q < rest; q++)
                    sums[q] += xp * col[q];
            }

            for (int q = 0; q < rest; q++)
                Apply(y + (nint)(j + q) * yStride, sums[q], alpha, beta);
            j += rest;
        }
    }

    /// <summary>Most outputs <see cref="MultiplyNarrow"/> takes: one 512-bit register of them.</summary>
    public const int NarrowLanes = 16;

    /// <summary>
    /// y[0, rows) = Σ_p x[p] · wt[p, 0..rows) for a weight of at most <see cref="NarrowLanes"/> outputs stored
    /// transposed with 16 lanes per input (<paramref name="wt"/> [k, 16], 64-byte aligned, lanes past
    /// <paramref name="rows"/> zero): a classifier's output layer at batch 1. All outputs sit in one register (two with
    /// AVX2, four with Vector128), so no output needs a horizontal sum, which with the scalar tails of its rows made
    /// <see cref="DotRows"/> take 54 ns for a 10×100 layer (AVX-512). Input p goes into partial sum p mod S, S = 8 with
    /// AVX-512, 4 with AVX2 (8 registers either way, enough to cover the FMA latency) and 2 with Vector128 and the
    /// scalar tier; the last k mod S inputs go into the first, and the partial sums are added pairwise.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    public static void MultiplyNarrow(VectorIsa isa, float* wt, float* x, int k, float* y, int rows)
    {
        float* sums = stackalloc float[NarrowLanes];
        int p = 0;
        if (isa == VectorIsa.Avx512)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (; p + 8 <= k; p += 8, wt += 8 * NarrowLanes)
            {
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p]), Vector512.Load(wt), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p + 1]), Vector512.Load(wt + 16), a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p + 2]), Vector512.Load(wt + 32), a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p + 3]), Vector512.Load(wt + 48), a3);
                a4 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p + 4]), Vector512.Load(wt + 64), a4);
                a5 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p + 5]), Vector512.Load(wt + 80), a5);
                a6 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p + 6]), Vector512.Load(wt + 96), a6);
                a7 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p + 7]), Vector512.Load(wt + 112), a7);
            }

            for (; p < k; p++, wt += NarrowLanes)
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[p]), Vector512.Load(wt), a0);
            Vector512.Store(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), sums);
        }
        else if (isa == VectorIsa.Avx2)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
            for (; p + 4 <= k; p += 4, wt += 4 * NarrowLanes)
            {
                Vector256<float> x0 = Vector256.Create(x[p]), x1 = Vector256.Create(x[p + 1]), x2 = Vector256.Create(x[p + 2]), x3 = Vector256.Create(x[p + 3]);
                a0 = Fma.MultiplyAdd(x0, Vector256.Load(wt), a0);
                b0 = Fma.MultiplyAdd(x0, Vector256.Load(wt + 8), b0);
                a1 = Fma.MultiplyAdd(x1, Vector256.Load(wt + 16), a1);
                b1 = Fma.MultiplyAdd(x1, Vector256.Load(wt + 24), b1);
                a2 = Fma.MultiplyAdd(x2, Vector256.Load(wt + 32), a2);
                b2 = Fma.MultiplyAdd(x2, Vector256.Load(wt + 40), b2);
                a3 = Fma.MultiplyAdd(x3, Vector256.Load(wt + 48), a3);
                b3 = Fma.MultiplyAdd(x3, Vector256.Load(wt + 56), b3);
            }

            for (; p < k; p++, wt += NarrowLanes)
            {
                Vector256<float> xp = Vector256.Create(x[p]);
                a0 = Fma.MultiplyAdd(xp, Vector256.Load(wt), a0);
                b0 = Fma.MultiplyAdd(xp, Vector256.Load(wt + 8), b0);
            }

            Vector256.Store((a0 + a1) + (a2 + a3), sums);
            Vector256.Store((b0 + b1) + (b2 + b3), sums + 8);
        }
        else if (isa == VectorIsa.Vector128)
        {
            // Four registers of 4 outputs, one after the other.
            for (int q = 0; q < NarrowLanes; q += 4)
            {
                Vector128<float> a0 = default, a1 = default;
                float* w = wt + q;
                for (p = 0; p + 2 <= k; p += 2, w += 2 * NarrowLanes)
                {
                    a0 = MulAdd(Vector128.Create(x[p]), Vector128.Load(w), a0);
                    a1 = MulAdd(Vector128.Create(x[p + 1]), Vector128.Load(w + NarrowLanes), a1);
                }

                if (p < k)
                    a0 = MulAdd(Vector128.Create(x[p]), Vector128.Load(w), a0);
                Vector128.Store(a0 + a1, sums + q);
            }
        }
        else
        {
            for (int r = 0; r < rows; r++)
            {
                float s0 = 0f, s1 = 0f;
                for (p = 0; p + 2 <= k; p += 2)
                {
                    s0 += x[p] * wt[(nint)p * NarrowLanes + r];
                    s1 += x[p + 1] * wt[(nint)(p + 1) * NarrowLanes + r];
                }

                if (p < k)
                    s0 += x[p] * wt[(nint)p * NarrowLanes + r];
                sums[r] = s0 + s1;
            }
        }

        new Span<float>(sums, rows).CopyTo(new Span<float>(y, rows));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Apply(float* y, float s, float alpha, float beta) =>
        *y = beta == 0f ? s * alpha : beta == 1f ? s * alpha + *y : s * alpha + *y * beta;
}
