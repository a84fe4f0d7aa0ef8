namespace Microsoft.ML.Sparsity.Engine;

internal static unsafe partial class Gemm
{
    /// <summary>
    /// One micro-kernel's register tile (MR x NR of C per call) and cache blocks: a kc x NR panel of packed B stays in
    /// L1 while the MR x kc panels of A stream past it, the mc x kc block of A stays in L2, and the kc x nc block of B
    /// lives in L2/L3. Mc is a multiple of MR and Nc of NR.
    /// </summary>
    /// <remarks>
    /// <para>
    /// AVX-512: 8 x 32 (16 zmm accumulators), kc 256 (a 32 KiB B panel in a 48 KiB L1), mc 256 (256 KiB of A in a
    /// 1 MiB L2). Vector128: 6 x 8 in 12 of the 16 xmm registers (NEON has 32, but the same tile keeps one kernel
    /// for SSE and NEON). Scalar: 4 x 4.
    /// </para>
    /// <para>
    /// AVX2 has two tiles of 12 ymm accumulators. 6 x 16 (OpenBLAS's Haswell tile; 8 loads per 12 FMAs, a 16 KiB
    /// B panel at kc 256, half of a 32 KiB L1 as on Zen 2/3 and Intel client parts; mc 144: 144 KiB of A, under half
    /// of a 512 KiB L2) is the faster kernel: on 1024³ about 10% ahead of 4 x 24 (single thread, AVX-512 switched
    /// off on a Zen 5), level with OpenBLAS's Haswell kernel. But batches are powers of two (the models score
    /// chunks of at most 64 rows), which 6 rows tile badly: 8 rows run as 12, and 4 x 24 is 25% faster there and 15%
    /// at 16 rows. So up to <see cref="SmallM"/> rows, and for a packed weight, AVX2 uses 4 x 24 (7 loads per 12 FMAs,
    /// a 24 KiB B panel).
    /// </para>
    /// </remarks>
    internal readonly record struct Blocking(int MR, int NR, int KcMax, int Mc, int Nc)
    {
        /// <summary>Most rows of C for which AVX2 runs the 4 x 24 tile.</summary>
        public const int SmallM = 64;

        /// <summary>The blocking of <paramref name="isa"/> for a product with m rows.</summary>
        public static Blocking For(VectorIsa isa, int m) => isa switch
        {
            VectorIsa.Avx512 => new(8, 32, 256, 256, 2048),
            VectorIsa.Avx2 when m <= SmallM => new(4, 24, 256, 128, 2016),
            VectorIsa.Avx2 => new(6, 16, 256, 144, 2048),
            VectorIsa.Vector128 => new(6, 8, 256, 144, 2048),
            _ => new(4, 4, 256, 128, 2048),
        };

        /// <summary>
        /// The blocking of a weight packed once (<see cref="PackedMatrix"/>): the small-m one, as inference batches
        /// are small.
        /// </summary>
        public static Blocking ForPacked(VectorIsa isa) => For(isa, 1);

        /// <summary>
        /// The reduction slice for a depth of k: even slices (k = 784 gives 4 x 196 rather than 256 + 256 + 256 + 16).
        /// It depends on k and the tile only, so the summation order (and the result) does not depend on threads.
        /// </summary>
        public int Kc(int k)
        {
            int slices = (k + KcMax - 1) / KcMax;
            return (k + slices - 1) / slices;
        }
    }

    /// <summary>
    /// op(B) (k x n) packed once into the micro-kernel's panel order for one tier (<see cref="Blocking.ForPacked"/>),
    /// for a weight multiplied many times:
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
            var blocking = Blocking.ForPacked(isa);
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
