using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

// Macro-kernel and register-blocked micro-kernels. A micro-kernel multiplies an MR x kc panel of packed A by a
// kc x NR panel of packed B and applies the result to an MR x NR tile of C:
//   beta == 0: C = alpha * acc;   beta == 1: C = fma(acc, alpha, C);   otherwise: C = fma(acc, alpha, beta * C).
internal static unsafe partial class Gemm
{
    /// <summary>
    /// Multiplies a packed mb x kb block of A by a packed kb x nb block of B into C (row stride ldc). NR panels of
    /// B are the outer loop so each stays in L1 while the MR panels of A stream from L2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private static void MacroKernel(VectorIsa isa, Blocking blocking, int kb, int mb, int nb, float* packA,
        float* packB, float* c, int ldc, float alpha, float beta)
    {
        int mr = blocking.MR, nr = blocking.NR;
        // Without FMA (SSE) the update multiplies and adds like the vector kernel; a software fused multiply-add
        // would be slow.
        bool fused = isa >= VectorIsa.Avx2;
        float* tile = stackalloc float[MaxTile];
        for (int jr = 0; jr < nb; jr += nr)
        {
            int cols = Math.Min(nr, nb - jr);
            float* b = packB + jr * kb;
            for (int ir = 0; ir < mb; ir += mr)
            {
                int rows = Math.Min(mr, mb - ir);
                float* a = packA + ir * kb;
                float* cTile = c + (nint)ir * ldc + jr;
                // A panel of few valid columns (n = 10, the 12 left of n = 300, the 4 left of n = 100) runs a narrower
                // kernel where the tier has one; the other lanes would only multiply padding.
                int width = KernelWidth(isa, mr, nr, cols);
                if (rows == mr && cols == width)
                {
                    MicroKernel(isa, mr, width, kb, a, b, cTile, ldc, alpha, beta);
                }
                else
                {
                    // Edge tile: compute the full (zero-padded) tile into scratch, then apply the valid part.
                    MicroKernel(isa, mr, width, kb, a, b, tile, width, 1f, 0f);
                    for (int i = 0; i < rows; i++)
                        ApplyEdgeRow(tile + i * width, cTile + (nint)i * ldc, cols, alpha, beta, fused);
                }
            }
        }
    }

    /// <summary>
    /// dst[0, cols) = alpha * src + beta * dst, as the micro-kernels' update computes it (fused when
    /// <paramref name="fused"/>), four columns at a time. One float at a time, this made each of 256×784×300's 61
    /// AVX2 edge tiles (of 817) cost about 1.4 full ones; vectorised, the product ran 1.026× faster (one thread).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ApplyEdgeRow(float* src, float* dst, int cols, float alpha, float beta, bool fused)
    {
        int j = 0;
        Vector128<float> va = Vector128.Create(alpha), vb = Vector128.Create(beta);
        for (; j + 4 <= cols; j += 4)
        {
            Vector128<float> s = Vector128.Load(src + j);
            Vector128<float> scaled = beta == 0f ? default : beta == 1f ? Vector128.Load(dst + j) : Vector128.Load(dst + j) * vb;
            Vector128.Store(beta == 0f ? s * va : fused ? Vector128.FusedMultiplyAdd(s, va, scaled) : s * va + scaled, dst + j);
        }

        for (; j < cols; j++)
        {
            float scaled = beta == 0f ? 0f : beta == 1f ? dst[j] : dst[j] * beta;
            dst[j] = beta == 0f ? src[j] * alpha
                : fused ? MathF.FusedMultiplyAdd(src[j], alpha, scaled) : src[j] * alpha + scaled;
        }
    }

    /// <summary>
    /// The columns of C the kernel for a panel with <paramref name="cols"/> valid columns computes: the tile's width, or
    /// a narrower kernel's (the AVX-512 tile's left half; the 4 x 24 AVX2 tile's left 16 or 8) when that holds them.
    /// </summary>
    private static int KernelWidth(VectorIsa isa, int mr, int nr, int cols) => isa switch
    {
        VectorIsa.Avx512 when cols <= nr / 2 => nr / 2,
        VectorIsa.Avx2 when mr == 4 && cols <= 8 => 8,
        VectorIsa.Avx2 when mr == 4 && cols <= 16 => 16,
        _ => nr,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MicroKernel(VectorIsa isa, int mr, int width, int kb, float* a, float* b, float* c, nint ldc,
        float alpha, float beta)
    {
        switch (isa)
        {
            case VectorIsa.Avx512 when width == 16:
                Kernel8x16Avx512(kb, a, b, c, ldc, alpha, beta);
                break;
            case VectorIsa.Avx512:
                Kernel8x32Avx512(kb, a, b, c, ldc, alpha, beta);
                break;
            case VectorIsa.Avx2 when mr == 4 && width == 8:
                Kernel4x8Avx2(kb, a, b, c, ldc, alpha, beta);
                break;
            case VectorIsa.Avx2 when mr == 4 && width == 16:
                Kernel4x16Avx2(kb, a, b, c, ldc, alpha, beta);
                break;
            case VectorIsa.Avx2 when mr == 4:
                Kernel4x24Avx2(kb, a, b, c, ldc, alpha, beta);
                break;
            case VectorIsa.Avx2:
                Kernel6x16Avx2(kb, a, b, c, ldc, alpha, beta);
                break;
            case VectorIsa.Vector128:
                Kernel6x8Vector128(kb, a, b, c, ldc, alpha, beta);
                break;
            default:
                Kernel4x4Scalar(kb, a, b, c, ldc, alpha, beta);
                break;
        }
    }

    /// <summary>
    /// 8 x 32 tile: 16 zmm accumulators; per k step 2 vector loads of B, 8 broadcasts of A and 16 FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32Avx512(int kb, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kb; p++, a += 8, b += 32)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16);
            Vector512<float> x = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(x, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(x, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(x, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(x, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(x, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(x, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]);
            c60 = Avx512F.FusedMultiplyAdd(x, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]);
            c70 = Avx512F.FusedMultiplyAdd(x, b0, c70);
            c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
        }

        int mode = beta == 0f ? 0 : beta == 1f ? 1 : 2;
        Vector512<float> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        Update512(c, c00, c01, va, vb, mode);
        Update512(c + ldc, c10, c11, va, vb, mode);
        Update512(c + 2 * ldc, c20, c21, va, vb, mode);
        Update512(c + 3 * ldc, c30, c31, va, vb, mode);
        Update512(c + 4 * ldc, c40, c41, va, vb, mode);
        Update512(c + 5 * ldc, c50, c51, va, vb, mode);
        Update512(c + 6 * ldc, c60, c61, va, vb, mode);
        Update512(c + 7 * ldc, c70, c71, va, vb, mode);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update512(float* c, Vector512<float> acc0, Vector512<float> acc1, Vector512<float> alpha,
        Vector512<float> beta, int mode)
    {
        Update512(c, acc0, alpha, beta, mode);
        Update512(c + 16, acc1, alpha, beta, mode);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update512(float* c, Vector512<float> acc, Vector512<float> alpha, Vector512<float> beta,
        int mode)
    {
        Vector512<float> result = mode == 0 ? acc * alpha
            : mode == 1 ? Avx512F.FusedMultiplyAdd(acc, alpha, Vector512.Load(c))
            : Avx512F.FusedMultiplyAdd(acc, alpha, Vector512.Load(c) * beta);
        Vector512.Store(result, c);
    }

    /// <summary>
    /// The left half of <see cref="Kernel8x32Avx512"/> (same packed panels, 8 x 16 of C) for narrow edge panels;
    /// per element it performs the same operations, so results match the full kernel bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x16Avx512(int kb, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        Vector512<float> c4 = default, c5 = default, c6 = default, c7 = default;
        for (int p = 0; p < kb; p++, a += 8, b += 32)
        {
            Vector512<float> b0 = Vector512.Load(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), b0, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), b0, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), b0, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[6]), b0, c6);
            c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[7]), b0, c7);
        }

        int mode = beta == 0f ? 0 : beta == 1f ? 1 : 2;
        Vector512<float> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        Update512(c, c0, va, vb, mode);
        Update512(c + ldc, c1, va, vb, mode);
        Update512(c + 2 * ldc, c2, va, vb, mode);
        Update512(c + 3 * ldc, c3, va, vb, mode);
        Update512(c + 4 * ldc, c4, va, vb, mode);
        Update512(c + 5 * ldc, c5, va, vb, mode);
        Update512(c + 6 * ldc, c6, va, vb, mode);
        Update512(c + 7 * ldc, c7, va, vb, mode);
    }

    /// <summary>
    /// 6 x 16 tile (OpenBLAS's Haswell sgemm tile, transposed): 12 ymm accumulators, two for B and one for the
    /// broadcast A fill the 16 registers; per k step 2 vector loads of B, 6 broadcasts from memory and 12 FMAs. The
    /// loop runs two k steps per iteration so its counter and pointer updates take less of the front end (a step is
    /// 20 instructions for the 6 cycles its FMAs need on two pipes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16Avx2(int kb, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector256<float> b0, b1, x;
        int p = 0;
        for (; p + 2 <= kb; p += 2, a += 12, b += 32)
        {
            b0 = Vector256.Load(b + 0);
            b1 = Vector256.Load(b + 8);
            x = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(x, b0, c00);
            c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(x, b0, c10);
            c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(x, b0, c20);
            c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(x, b0, c30);
            c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(x, b0, c40);
            c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(x, b0, c50);
            c51 = Fma.MultiplyAdd(x, b1, c51);
            b0 = Vector256.Load(b + 16);
            b1 = Vector256.Load(b + 24);
            x = Vector256.Create(a[6]);
            c00 = Fma.MultiplyAdd(x, b0, c00);
            c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[7]);
            c10 = Fma.MultiplyAdd(x, b0, c10);
            c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[8]);
            c20 = Fma.MultiplyAdd(x, b0, c20);
            c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[9]);
            c30 = Fma.MultiplyAdd(x, b0, c30);
            c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[10]);
            c40 = Fma.MultiplyAdd(x, b0, c40);
            c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[11]);
            c50 = Fma.MultiplyAdd(x, b0, c50);
            c51 = Fma.MultiplyAdd(x, b1, c51);
        }

        if (p < kb)
        {
            b0 = Vector256.Load(b + 0);
            b1 = Vector256.Load(b + 8);
            x = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(x, b0, c00);
            c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(x, b0, c10);
            c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(x, b0, c20);
            c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(x, b0, c30);
            c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(x, b0, c40);
            c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(x, b0, c50);
            c51 = Fma.MultiplyAdd(x, b1, c51);
        }

        int mode = beta == 0f ? 0 : beta == 1f ? 1 : 2;
        Vector256<float> va = Vector256.Create(alpha), vb = Vector256.Create(beta);
        Update256(c, c00, c01, va, vb, mode);
        Update256(c + ldc, c10, c11, va, vb, mode);
        Update256(c + 2 * ldc, c20, c21, va, vb, mode);
        Update256(c + 3 * ldc, c30, c31, va, vb, mode);
        Update256(c + 4 * ldc, c40, c41, va, vb, mode);
        Update256(c + 5 * ldc, c50, c51, va, vb, mode);
    }

    /// <summary>4 x 24 tile: 12 ymm accumulators; per k step 3 vector loads of B, 4 broadcasts and 12 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x24Avx2(int kb, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        for (int p = 0; p < kb; p++, a += 4, b += 24)
        {
            Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8), b2 = Vector256.Load(b + 16);
            Vector256<float> x = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(x, b0, c00);
            c01 = Fma.MultiplyAdd(x, b1, c01);
            c02 = Fma.MultiplyAdd(x, b2, c02);
            x = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(x, b0, c10);
            c11 = Fma.MultiplyAdd(x, b1, c11);
            c12 = Fma.MultiplyAdd(x, b2, c12);
            x = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(x, b0, c20);
            c21 = Fma.MultiplyAdd(x, b1, c21);
            c22 = Fma.MultiplyAdd(x, b2, c22);
            x = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(x, b0, c30);
            c31 = Fma.MultiplyAdd(x, b1, c31);
            c32 = Fma.MultiplyAdd(x, b2, c32);
        }

        int mode = beta == 0f ? 0 : beta == 1f ? 1 : 2;
        Vector256<float> va = Vector256.Create(alpha), vb = Vector256.Create(beta);
        Update256(c, c00, c01, va, vb, mode);
        Update256(c + 16, c02, va, vb, mode);
        Update256(c + ldc, c10, c11, va, vb, mode);
        Update256(c + ldc + 16, c12, va, vb, mode);
        Update256(c + 2 * ldc, c20, c21, va, vb, mode);
        Update256(c + 2 * ldc + 16, c22, va, vb, mode);
        Update256(c + 3 * ldc, c30, c31, va, vb, mode);
        Update256(c + 3 * ldc + 16, c32, va, vb, mode);
    }

    /// <summary>
    /// The left 16 columns of <see cref="Kernel4x24Avx2"/> (same packed panels) for narrow edge panels; per element
    /// the same operations, so results match the full kernel bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x16Avx2(int kb, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kb; p++, a += 4, b += 24)
        {
            Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8);
            Vector256<float> x = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(x, b0, c00);
            c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(x, b0, c10);
            c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(x, b0, c20);
            c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(x, b0, c30);
            c31 = Fma.MultiplyAdd(x, b1, c31);
        }

        int mode = beta == 0f ? 0 : beta == 1f ? 1 : 2;
        Vector256<float> va = Vector256.Create(alpha), vb = Vector256.Create(beta);
        Update256(c, c00, c01, va, vb, mode);
        Update256(c + ldc, c10, c11, va, vb, mode);
        Update256(c + 2 * ldc, c20, c21, va, vb, mode);
        Update256(c + 3 * ldc, c30, c31, va, vb, mode);
    }

    /// <summary>The left 8 columns of <see cref="Kernel4x24Avx2"/>, as <see cref="Kernel4x16Avx2"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x8Avx2(int kb, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int p = 0; p < kb; p++, a += 4, b += 24)
        {
            Vector256<float> b0 = Vector256.Load(b);
            c0 = Fma.MultiplyAdd(Vector256.Create(a[0]), b0, c0);
            c1 = Fma.MultiplyAdd(Vector256.Create(a[1]), b0, c1);
            c2 = Fma.MultiplyAdd(Vector256.Create(a[2]), b0, c2);
            c3 = Fma.MultiplyAdd(Vector256.Create(a[3]), b0, c3);
        }

        int mode = beta == 0f ? 0 : beta == 1f ? 1 : 2;
        Vector256<float> va = Vector256.Create(alpha), vb = Vector256.Create(beta);
        Update256(c, c0, va, vb, mode);
        Update256(c + ldc, c1, va, vb, mode);
        Update256(c + 2 * ldc, c2, va, vb, mode);
        Update256(c + 3 * ldc, c3, va, vb, mode);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update256(float* c, Vector256<float> acc0, Vector256<float> acc1, Vector256<float> alpha,
        Vector256<float> beta, int mode)
    {
        Update256(c, acc0, alpha, beta, mode);
        Update256(c + 8, acc1, alpha, beta, mode);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update256(float* c, Vector256<float> acc, Vector256<float> alpha, Vector256<float> beta,
        int mode)
    {
        Vector256<float> result = mode == 0 ? acc * alpha
            : mode == 1 ? Fma.MultiplyAdd(acc, alpha, Vector256.Load(c))
            : Fma.MultiplyAdd(acc, alpha, Vector256.Load(c) * beta);
        Vector256.Store(result, c);
    }

    /// <summary>
    /// 6 x 8 tile of Vector128 (SSE on x86, NEON on ARM64): 12 accumulators, two vectors of B and one broadcast
    /// fill 15 of the 16 xmm registers; per k step 2 loads of B, 6 broadcasts and 12 multiply-adds (fused on NEON
    /// and on x86 with FMA, a multiply and an add otherwise).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x8Vector128(int kb, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector128<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector128<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector128<float> c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kb; p++, a += 6, b += 8)
        {
            Vector128<float> b0 = Vector128.Load(b), b1 = Vector128.Load(b + 4);
            Vector128<float> x = Vector128.Create(a[0]);
            c00 = MulAdd(x, b0, c00);
            c01 = MulAdd(x, b1, c01);
            x = Vector128.Create(a[1]);
            c10 = MulAdd(x, b0, c10);
            c11 = MulAdd(x, b1, c11);
            x = Vector128.Create(a[2]);
            c20 = MulAdd(x, b0, c20);
            c21 = MulAdd(x, b1, c21);
            x = Vector128.Create(a[3]);
            c30 = MulAdd(x, b0, c30);
            c31 = MulAdd(x, b1, c31);
            x = Vector128.Create(a[4]);
            c40 = MulAdd(x, b0, c40);
            c41 = MulAdd(x, b1, c41);
            x = Vector128.Create(a[5]);
            c50 = MulAdd(x, b0, c50);
            c51 = MulAdd(x, b1, c51);
        }

        int mode = beta == 0f ? 0 : beta == 1f ? 1 : 2;
        Vector128<float> va = Vector128.Create(alpha), vb = Vector128.Create(beta);
        Update128(c, c00, c01, va, vb, mode);
        Update128(c + ldc, c10, c11, va, vb, mode);
        Update128(c + 2 * ldc, c20, c21, va, vb, mode);
        Update128(c + 3 * ldc, c30, c31, va, vb, mode);
        Update128(c + 4 * ldc, c40, c41, va, vb, mode);
        Update128(c + 5 * ldc, c50, c51, va, vb, mode);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update128(float* c, Vector128<float> acc0, Vector128<float> acc1, Vector128<float> alpha,
        Vector128<float> beta, int mode)
    {
        if (mode == 0)
        {
            Vector128.Store(acc0 * alpha, c);
            Vector128.Store(acc1 * alpha, c + 4);
        }
        else if (mode == 1)
        {
            Vector128.Store(MulAdd(acc0, alpha, Vector128.Load(c)), c);
            Vector128.Store(MulAdd(acc1, alpha, Vector128.Load(c + 4)), c + 4);
        }
        else
        {
            Vector128.Store(MulAdd(acc0, alpha, Vector128.Load(c) * beta), c);
            Vector128.Store(MulAdd(acc1, alpha, Vector128.Load(c + 4) * beta), c + 4);
        }
    }

    /// <summary>
    /// a * b + c in the Vector128 tier: fused where the CPU has it (NEON, x86 with FMA), a multiply and an add
    /// otherwise (SSE), never a software fused multiply-add.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);

    /// <summary>Portable 4 x 4 tile for runtimes that accelerate no vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private static void Kernel4x4Scalar(int kb, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        float* acc = stackalloc float[16];
        new Span<float>(acc, 16).Clear();
        for (int p = 0; p < kb; p++, a += 4, b += 4)
        {
            for (int i = 0; i < 4; i++)
            {
                float x = a[i];
                for (int j = 0; j < 4; j++)
                    acc[i * 4 + j] += x * b[j];
            }
        }

        for (int i = 0; i < 4; i++)
        {
            for (int j = 0; j < 4; j++)
            {
                float* dst = c + i * ldc + j;
                float v = acc[i * 4 + j];
                *dst = beta == 0f ? v * alpha : beta == 1f ? v * alpha + *dst : v * alpha + *dst * beta;
            }
        }
    }
}
