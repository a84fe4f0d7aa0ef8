using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// Single-precision general matrix multiply, row-major: C = alpha * op(A) * op(B) + beta * C, where op(A) is
/// m x k (A is stored k x m when transposed) and op(B) is k x n (B is stored n x k when transposed).
/// </summary>
/// <remarks>
/// <para>
/// Layout of the computation (Goto/BLIS): for every nc-wide column block of C and every kc-deep slice of the
/// reduction, the kc x nc block of op(B) is packed into NR-wide column panels; then for every mc-tall row block
/// op(A) is packed into MR-tall row panels, and the macro-kernel walks the NR panels (outer) and MR panels
/// (inner), so one kc x NR panel of B stays in L1 while the mc x kc block of A stays in L2. Packing applies the
/// transposes and zero-pads edge panels, so one register-blocked MR x NR micro-kernel serves all four variants.
/// </para>
/// <para>
/// Determinism: kc depends on k only, a C element is always produced by a single thread, and the micro-kernel
/// sums over k in order, so the result does not depend on the number of threads. Threads get rectangles of C
/// (split over M and/or N in whole tiles); each packs its own operands into thread-local buffers, which are
/// allocated once and grown when needed, so steady-state calls allocate nothing.
/// </para>
/// </remarks>
internal static unsafe partial class Gemm
{
    /// <summary>Micro-tile height (rows of C per micro-kernel call).</summary>
    private static readonly int MR = Avx512F.IsSupported ? 8 : Fma.IsSupported ? 6 : 4;

    /// <summary>Micro-tile width (columns of C per micro-kernel call).</summary>
    private static readonly int NR = Avx512F.IsSupported ? 32 : Fma.IsSupported ? 16 : 4;

    /// <summary>Largest reduction slice: a kc x NR panel of B (32 KiB for NR = 32) stays in the 48 KiB L1.</summary>
    private const int KcMax = 256;

    /// <summary>Row block: the mc x kc packed A block (256 KiB at kc = 256) stays in the 1 MiB L2.</summary>
    private const int McMax = 256;

    /// <summary>Column block: the kc x nc packed B block (up to 2 MiB) lives in L3.</summary>
    private const int NcMax = 2048;

    /// <summary>Below this many multiply-adds a call runs on the calling thread only.</summary>
    private const long ParallelThreshold = 1L << 17;

    /// <summary>Largest micro-tile of any kernel (AVX-512: 8 x 32); sizes the edge-tile scratch.</summary>
    private const int MaxTile = 8 * 32;

    [ThreadStatic] private static Workspace? t_packA;
    [ThreadStatic] private static Workspace? t_packB;
    [ThreadStatic] private static Job? t_job;

    /// <summary>The instruction set of the micro-kernel, for benchmark printouts.</summary>
    internal static string Isa => Avx512F.IsSupported ? "AVX-512" : Fma.IsSupported ? "AVX2+FMA" : "scalar";

    /// <summary>C = alpha * op(A) * op(B) + beta * C (row-major). With beta == 0, C is not read.</summary>
    public static void Multiply(WorkerPool pool, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        CheckMatrix(a.Length, transA ? k : m, transA ? m : k, lda, nameof(a), nameof(lda));
        CheckMatrix(b.Length, transB ? n : k, transB ? k : n, ldb, nameof(b), nameof(ldb));
        CheckMatrix(c.Length, m, n, ldc, nameof(c), nameof(ldc));

        if (m == 0 || n == 0)
            return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }

        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            Job job = RentJob();
            try
            {
                job.Set(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
                if (m == 1 || n == 1)
                    job.RunGemv(pool);
                else
                    job.RunGemm(pool);
            }
            finally
            {
                job.Release();
            }
        }
    }

    private static void CheckMatrix(int length, int rows, int cols, int ld, string name, string ldName)
    {
        if (ld < Math.Max(1, cols))
            throw new ArgumentException($"Leading dimension {ld} is smaller than the row length {cols}.", ldName);
        if (rows > 0 && cols > 0 && length < (long)(rows - 1) * ld + cols)
        {
            throw new ArgumentException(
                $"Length {length} is too short for a {rows}x{cols} matrix with leading dimension {ld}.", name);
        }
    }

    private static void ScaleC(int m, int n, float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            Span<float> row = c.Slice(i * ldc, n);
            if (beta == 0f)
                row.Clear();
            else if (beta != 1f)
                System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    private static Job RentJob()
    {
        Job? job = t_job;
        if (job is null || job.InUse)
        {
            // Only a re-entrant call on the same thread finds the cached job busy; give it its own.
            job = new Job();
            t_job ??= job;
        }

        job.InUse = true;
        return job;
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>
    /// The arguments of one call, pinned and stored as fields so the cached item delegates can hand them to pool
    /// threads without a closure.
    /// </summary>
    private sealed class Job
    {
        private readonly Action<int> _gemmItem;
        private readonly Action<int> _gemvItem;

        private bool _transA, _transB;
        private int _m, _n, _k, _lda, _ldb, _ldc;
        private float _alpha, _beta;
        private float* _a, _b, _c;

        // GEMM work split: a gridM x gridN grid of C rectangles, each a whole number of micro-tiles.
        private int _kc, _gridM, _gridN;

        // GEMV work split: _gemvItems chunks of GemvChunk outputs each.
        private int _gemvItems;

        public Job()
        {
            _gemmItem = RunGemmItem;
            _gemvItem = RunGemvItem;
        }

        public bool InUse { get; set; }

        public void Set(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b,
            int ldb, float beta, float* c, int ldc)
        {
            (_transA, _transB, _m, _n, _k, _alpha, _beta) = (transA, transB, m, n, k, alpha, beta);
            (_lda, _ldb, _ldc) = (lda, ldb, ldc);
            _a = a;
            _b = b;
            _c = c;
        }

        public void Release()
        {
            _a = _b = _c = null;
            InUse = false;
        }

        public void RunGemm(WorkerPool pool)
        {
            // Even kc slices (e.g. k = 784 -> 4 x 196) instead of 256 + 256 + 256 + 16.
            int slices = (_k + KcMax - 1) / KcMax;
            _kc = (_k + slices - 1) / slices;

            int threads = (long)_m * _n * _k < ParallelThreshold ? 1 : pool.ThreadCount;
            int mTiles = (_m + MR - 1) / MR, nTiles = (_n + NR - 1) / NR;
            // Every thread packs the whole operand along the dimension it does not split, so split the dimension
            // whose other operand is cheaper to duplicate: N when A (m x k) is the smaller one.
            if (_m < _n)
            {
                _gridN = Math.Min(threads, nTiles);
                _gridM = Math.Min(threads / _gridN, mTiles);
            }
            else
            {
                _gridM = Math.Min(threads, mTiles);
                _gridN = Math.Min(threads / _gridM, nTiles);
            }

            pool.For(_gridM * _gridN, _gemmItem);
        }

        private void RunGemmItem(int item)
        {
            int mTiles = (_m + MR - 1) / MR, nTiles = (_n + NR - 1) / NR;
            int im = item / _gridN, jn = item % _gridN;
            int i0 = im * mTiles / _gridM * MR, i1 = Math.Min(_m, (im + 1) * mTiles / _gridM * MR);
            int j0 = jn * nTiles / _gridN * NR, j1 = Math.Min(_n, (jn + 1) * nTiles / _gridN * NR);
            if (i0 < i1 && j0 < j1)
                GemmBlock(i0, i1, j0, j1);
        }

        /// <summary>Computes the C rectangle [i0, i1) x [j0, j1) on the current thread.</summary>
        private void GemmBlock(int i0, int i1, int j0, int j1)
        {
            int kcMax = _kc;
            int mcMax = McMax / MR * MR, ncMax = NcMax / NR * NR;
            float* packA = (t_packA ??= new Workspace()).Get(RoundUp(Math.Min(mcMax, i1 - i0), MR) * kcMax);
            float* packB = (t_packB ??= new Workspace()).Get(RoundUp(Math.Min(ncMax, j1 - j0), NR) * kcMax);

            for (int jc = j0; jc < j1; jc += ncMax)
            {
                int nb = Math.Min(ncMax, j1 - jc);
                for (int pc = 0; pc < _k; pc += kcMax)
                {
                    int kb = Math.Min(kcMax, _k - pc);
                    PackB(_transB, _b, _ldb, pc, kb, jc, nb, packB);
                    // The first slice applies beta; later slices accumulate onto C.
                    float beta = pc == 0 ? _beta : 1f;
                    for (int ic = i0; ic < i1; ic += mcMax)
                    {
                        int mb = Math.Min(mcMax, i1 - ic);
                        PackA(_transA, _a, _lda, ic, mb, pc, kb, packA);
                        MacroKernel(kb, mb, nb, packA, packB, _c + (nint)ic * _ldc + jc, _ldc, _alpha, beta);
                    }
                }
            }
        }

        /// <summary>m == 1 or n == 1: matrix-vector products without packing.</summary>
        public void RunGemv(WorkerPool pool)
        {
            int outputs = _m == 1 ? _n : _m;
            int chunks = (outputs + GemvChunk - 1) / GemvChunk;
            bool parallel = (long)outputs * _k >= GemvParallelThreshold;
            _gemvItems = parallel ? Math.Min(pool.ThreadCount, chunks) : 1;
            pool.For(_gemvItems, _gemvItem);
        }

        private void RunGemvItem(int item)
        {
            int outputs = _m == 1 ? _n : _m;
            int chunks = (outputs + GemvChunk - 1) / GemvChunk;
            int o0 = item * chunks / _gemvItems * GemvChunk;
            int o1 = Math.Min(outputs, (item + 1) * chunks / _gemvItems * GemvChunk);
            if (o0 >= o1)
                return;

            // x is row 0 of op(A) (m == 1) or column 0 of op(B) (n == 1); strided vectors are gathered first.
            float* x = _m == 1 ? _a : _b;
            int xStride = _m == 1 ? (_transA ? _lda : 1) : (_transB ? 1 : _ldb);
            if (xStride != 1)
            {
                float* gathered = (t_packA ??= new Workspace()).Get(_k);
                for (int p = 0; p < _k; p++)
                    gathered[p] = x[(nint)p * xStride];
                x = gathered;
            }

            if (_m == 1)
            {
                // c[0, j] = alpha * op(B)[:, j] . x + beta * c[0, j]
                if (_transB)
                    DotRows(_b, _ldb, o0, o1, x, _k, _alpha, _beta, _c, 1);
                else
                    AxpyRows(_b, _ldb, o0, o1, x, _k, _alpha, _beta, _c, 1);
            }
            else
            {
                // c[i, 0] = alpha * op(A)[i, :] . x + beta * c[i, 0]
                if (_transA)
                    AxpyRows(_a, _lda, o0, o1, x, _k, _alpha, _beta, _c, _ldc);
                else
                    DotRows(_a, _lda, o0, o1, x, _k, _alpha, _beta, _c, _ldc);
            }
        }
    }
}
