using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

// Packing: copies a block of op(A) or op(B) into the panel order the micro-kernel reads, applying transposes and
// zero-padding the last panel to a full mr rows / nr columns.
internal static unsafe partial class Gemm
{
    /// <summary>
    /// Packs op(A)[i0 .. i0+mb, p0 .. p0+kb] as mr-row panels: panel r holds, for each p, the mr values
    /// op(A)[i0 + r*MR + 0 .. MR-1, p0 + p] contiguously (panel stride mr * kb).
    /// </summary>
    private static void PackA(int mr, bool transA, float* a, int lda, int i0, int mb, int p0, int kb, float* dst)
    {
        for (int ir = 0; ir < mb; ir += mr, dst += mr * kb)
        {
            int rows = Math.Min(mr, mb - ir);
            if (transA)
            {
                // A is stored k x m: each p is a contiguous run of the panel's rows.
                float* src = a + (nint)p0 * lda + i0 + ir;
                CopyRuns(src, lda, kb, rows, dst, mr);
            }
            else
            {
                // A is stored m x k: transpose the rows x kb block.
                float* src = a + (nint)(i0 + ir) * lda + p0;
                Transpose(src, lda, rows, kb, dst, mr);
            }
        }
    }

    /// <summary>
    /// Packs op(B)[p0 .. p0+kb, j0 .. j0+nb] as nr-column panels: panel j holds, for each p, the nr values
    /// op(B)[p0 + p, j0 + j*NR + 0 .. NR-1] contiguously (panel stride nr * kb).
    /// </summary>
    private static void PackB(int nr, bool transB, float* b, int ldb, int p0, int kb, int j0, int nb, float* dst)
    {
        for (int jr = 0; jr < nb; jr += nr, dst += nr * kb)
        {
            int cols = Math.Min(nr, nb - jr);
            if (transB)
            {
                // B is stored n x k: transpose the cols x kb block.
                float* src = b + (nint)(j0 + jr) * ldb + p0;
                Transpose(src, ldb, cols, kb, dst, nr);
            }
            else
            {
                // B is stored k x n: each p is a contiguous run of the panel's columns.
                float* src = b + (nint)p0 * ldb + j0 + jr;
                CopyRuns(src, ldb, kb, cols, dst, nr);
            }
        }
    }

    /// <summary>dst[p * width + w] = src[p * ld + w] for w &lt; len, 0 for len &lt;= w &lt; width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CopyRuns(float* src, int ld, int kb, int len, float* dst, int width)
    {
        int wide = Vector256.IsHardwareAccelerated ? len / 8 * 8 : 0;
        int narrow = Vector128.IsHardwareAccelerated ? len / 4 * 4 : 0;
        for (int p = 0; p < kb; p++, src += ld, dst += width)
        {
            int w = 0;
            for (; w < wide; w += 8)
                Vector256.Store(Vector256.Load(src + w), dst + w);
            for (; w < narrow; w += 4)
                Vector128.Store(Vector128.Load(src + w), dst + w);
            for (; w < len; w++)
                dst[w] = src[w];
            for (; w < width; w++)
                dst[w] = 0f;
        }
    }

    /// <summary>
    /// dst[p * width + r] = src[r * ld + p] for r &lt; rows, 0 for rows &lt;= r &lt; width (p &lt; kb): a rows x kb
    /// block becomes kb runs of width values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose(float* src, int ld, int rows, int kb, float* dst, int width)
    {
        int p = 0;
        if (rows == width && Avx.IsSupported)
        {
            if (width % 8 == 0)
            {
                // 8 x 8 register transposes for the full-width part.
                for (; p + 8 <= kb; p += 8)
                {
                    for (int r = 0; r < width; r += 8)
                        Transpose8x8(src + (nint)r * ld + p, ld, 8, dst + p * width + r, width);
                }
            }
            else if (width is >= 4 and < 8)
            {
                // A 6-row panel (AVX2's MR) as an 8 x 8 transpose with two zero rows: each of the 8 runs is stored
                // 8 wide, its last 8 - width values spilling into the next run, which the next store overwrites;
                // the loop stops while the last run's spill is still inside this panel.
                for (; (p + 7) * width + 8 <= kb * width; p += 8)
                    Transpose8x8(src + p, ld, width, dst + p * width, width);
            }
        }

        for (; p < kb; p++)
        {
            float* d = dst + p * width;
            int r = 0;
            for (; r < rows; r++)
                d[r] = src[(nint)r * ld + p];
            for (; r < width; r++)
                d[r] = 0f;
        }
    }

    /// <summary>
    /// Writes the transpose of the rows x 8 block at <paramref name="src"/> (row stride ld, rows 4 to 8; missing rows
    /// read as zero) to dst as 8 runs of 8 values, dstStride apart. The sparse formats' batched kernels use it too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* src, int ld, int rows, float* dst, int dstStride)
    {
        Vector256<float> r0 = Avx.LoadVector256(src);
        Vector256<float> r1 = Avx.LoadVector256(src + ld);
        Vector256<float> r2 = Avx.LoadVector256(src + 2 * (nint)ld);
        Vector256<float> r3 = Avx.LoadVector256(src + 3 * (nint)ld);
        Vector256<float> r4 = rows > 4 ? Avx.LoadVector256(src + 4 * (nint)ld) : default;
        Vector256<float> r5 = rows > 5 ? Avx.LoadVector256(src + 5 * (nint)ld) : default;
        Vector256<float> r6 = rows > 6 ? Avx.LoadVector256(src + 6 * (nint)ld) : default;
        Vector256<float> r7 = rows > 7 ? Avx.LoadVector256(src + 7 * (nint)ld) : default;

        // Interleave pairs of rows: t0 = [a00 a10 a01 a11 | a04 a14 a05 a15], ...
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);

        // Gather quads: s0 = [a00 a10 a20 a30 | a04 a14 a24 a34], ...
        Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44), s5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> s6 = Avx.Shuffle(t5, t7, 0x44), s7 = Avx.Shuffle(t5, t7, 0xEE);

        // Join 128-bit halves: column c of the block.
        Avx.Store(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(s3, s7, 0x31));
    }
}
