namespace Microsoft.ML.Sparsity.Engine;

internal static unsafe partial class Gemm
{
    /// <summary>
    /// One tier's register tile (MR x NR of C per micro-kernel call) and cache blocks: a kc x NR panel of packed B
    /// stays in L1 while the MR x kc panels of A stream past it, the mc x kc block of A stays in L2, and the kc x nc
    /// block of B lives in L2/L3. Mc is a multiple of MR and Nc of NR.
    /// </summary>
    /// <remarks>
    /// AVX-512: 8 x 32 (16 zmm accumulators), kc 256 (a 32 KiB B panel in a 48 KiB L1), mc 256 (256 KiB of A in a
    /// 1 MiB L2). AVX2: 6 x 16 (12 of the 16 ymm registers accumulate, two hold B, one the broadcast A), kc 256
    /// (a 16 KiB B panel, half of a 32 KiB L1 as on Zen 2/3 and Intel client parts) and mc 144 (144 KiB of A, under
    /// half of a 512 KiB L2). Vector128: 6 x 8 in 12 of the 16 xmm registers (NEON has 32, but the same tile keeps
    /// one kernel for SSE and NEON). Scalar: 4 x 4.
    /// </remarks>
    internal readonly record struct Blocking(int MR, int NR, int KcMax, int Mc, int Nc)
    {
        internal static Blocking? TuneAvx2;
        public static Blocking For(VectorIsa isa) => isa == VectorIsa.Avx2 && TuneAvx2 is Blocking t ? t : isa switch
        {
            VectorIsa.Avx512 => new(8, 32, 256, 256, 2048),
            VectorIsa.Avx2 => new(6, 16, 256, 144, 2048),
            VectorIsa.Vector128 => new(6, 8, 256, 144, 2048),
            _ => new(4, 4, 256, 128, 2048),
        };

        /// <summary>
        /// The reduction slice for a depth of k: even slices (k = 784 gives 4 x 196 rather than 256 + 256 + 256 + 16).
        /// It depends on k and the tier only, so the summation order (and the result) does not depend on threads.
        /// </summary>
        public int Kc(int k)
        {
            int slices = (k + KcMax - 1) / KcMax;
            return (k + slices - 1) / slices;
        }
    }

    /// <summary>
    /// op(B) (k x n) packed once into the micro-kernel's panel order for one tier, for a weight multiplied many times:
    /// the kc-deep slices one after the other, each the NR-wide column panels of <see cref="PackB"/> over the whole
    /// width (so a slice is kb x RoundUp(n, NR) floats and a panel starting at column j sits at j * kb in it).
    /// </summary>
    internal sealed class PackedMatrix
    {
        private readonly AlignedArray<float> _panels;

        /// <summary>Packs op(B): B is k x n, or n x k when <paramref name="transB"/> (a weight W[out, in] is B = W, transB).</summary>
        public PackedMatrix(VectorIsa isa, bool transB, int k, int n, ReadOnlySpan<float> b, int ldb)
        {
            CheckIsa(isa);
            ArgumentOutOfRangeException.ThrowIfNegative(k);
            ArgumentOutOfRangeException.ThrowIfNegative(n);
            CheckMatrix(b.Length, transB ? n : k, transB ? k : n, ldb, nameof(b), nameof(ldb));
            (Isa, K, N) = (isa, k, n);
            var blocking = Blocking.For(isa);
            int nPadded = RoundUp(n, blocking.NR), kc = blocking.Kc(k);
            _panels = new AlignedArray<float>(checked(nPadded * k));
            fixed (float* pb = b)
            {
                for (int pc = 0; pc < k; pc += kc)
                    PackB(blocking.NR, transB, pb, ldb, pc, Math.Min(kc, k - pc), 0, n, _panels.Pointer + (nint)pc * nPadded);
            }
        }

        /// <summary>The tier whose micro-kernel the panels are laid out for.</summary>
        public VectorIsa Isa { get; }

        /// <summary>Rows of op(B) (the reduction depth).</summary>
        public int K { get; }

        /// <summary>Columns of op(B) (columns of C).</summary>
        public int N { get; }

        /// <summary>Floats held, padding included.</summary>
        public long Length => _panels.Length;

        internal float* Pointer => _panels.Pointer;
    }
}
