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
/// Tiers: a call runs the kernels of one <see cref="VectorIsa"/> (the process's best unless one is passed), with that
/// tier's register tile and cache blocks (<see cref="Blocking"/>); the tests run every tier this machine has.
/// </para>
/// <para>
/// Determinism: the tile depends on the tier and m, kc on k and the tile, a C element is always produced by a single
/// thread, and the micro-kernel sums over k in order, so the result does not depend on the number of threads.
/// Threads get rectangles of C (split over M and/or N in whole tiles); each packs its own operands into
/// thread-local buffers, which are allocated once and grown when needed, so steady-state calls allocate nothing.
/// </para>
/// </remarks>
internal static unsafe partial class Gemm
{
    /// <summary>Below this many multiply-adds a call runs on the calling thread only.</summary>
    private const long ParallelThreshold = 1L << 17;

    /// <summary>About how many of a micro-kernel's multiply-adds packing one float costs (a load and a store against FMAs at 16-32 a cycle).</summary>
    private const int PackedFloatMultiplyAdds = 8;

    /// <summary>Largest micro-tile of any kernel (AVX-512: 8 x 32); sizes the edge-tile scratch.</summary>
    private const int MaxTile = 8 * 32;

    [ThreadStatic] private static Workspace? t_packA;
    [ThreadStatic] private static Workspace? t_packB;
    [ThreadStatic] private static Job? t_job;

    /// <summary>The instruction set of the micro-kernel this process runs, for benchmark printouts.</summary>
    internal static string Isa => VectorIsas.Describe(VectorIsas.Best);

    /// <summary>C = alpha * op(A) * op(B) + beta * C (row-major) with the best tier. With beta == 0, C is not read.</summary>
    public static void Multiply(WorkerPool pool, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc) =>
        Multiply(VectorIsas.Best, pool, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>C = alpha * op(A) * op(B) + beta * C (row-major) with the kernels of <paramref name="isa"/>.</summary>
    public static void Multiply(VectorIsa isa, WorkerPool pool, bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        CheckIsa(isa);
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
                job.Set(isa, Blocking.For(isa, m), transA, transB, m, n, k, alpha, pa, lda, pb, ldb, null, beta, pc, ldc);
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

    /// <summary>
    /// C = alpha * op(A) * B + beta * C with B packed once by <see cref="PackedMatrix"/> (a fixed weight): the call
    /// skips packing B, which at a small batch (m = 16 against a 784 x 300 weight) costs about as much as the
    /// multiply. For 1 &lt; m &lt;= <see cref="Blocking.SmallM"/> and n &gt; 1 the result equals the unpacked call with the
    /// packed tier bit for bit (the same slices, tiles and order).
    /// </summary>
    public static void Multiply(WorkerPool pool, bool transA, int m, float alpha, ReadOnlySpan<float> a, int lda,
        PackedMatrix b, float beta, Span<float> c, int ldc)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        int n = b.N, k = b.K;
        CheckMatrix(a.Length, transA ? k : m, transA ? m : k, lda, nameof(a), nameof(lda));
        CheckMatrix(c.Length, m, n, ldc, nameof(c), nameof(ldc));
        if (m == 0 || n == 0)
            return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }

        fixed (float* pa = a)
        fixed (float* pc = c)
        {
            Job job = RentJob();
            try
            {
                job.Set(b.Isa, Blocking.ForPacked(b.Isa), transA, false, m, n, k, alpha, pa, lda, null, 0, b.Pointer, beta, pc, ldc);
                job.RunGemm(pool);
            }
            finally
            {
                job.Release();
            }
        }
    }

    private static void CheckIsa(VectorIsa isa)
    {
        if (!VectorIsas.IsAvailable(isa))
            throw new ArgumentOutOfRangeException(nameof(isa), isa, $"This process runs at most {VectorIsas.Best}.");
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

    /// <summary>
    /// Whether a product of m x n on <paramref name="threads"/> threads splits C's columns (N) rather than its rows (M):
    /// the split whose busiest thread costs less, counting its tiles' multiply-adds and the floats it packs (each thread
    /// packs all of the operand along the dimension it does not split) at <see cref="PackedFloatMultiplyAdds"/> each;
    /// a tie splits M. A packed B is never repacked, so it always splits N. See docs/engine.md.
    /// </summary>
    internal static bool SplitsN(Blocking blocking, int m, int n, int threads, bool packedB)
    {
        int mr = blocking.MR, nr = blocking.NR, mTiles = (m + mr - 1) / mr, nTiles = (n + nr - 1) / nr;
        return packedB || BusiestCost(nTiles, nr, mTiles * mr, threads) < BusiestCost(mTiles, mr, nTiles * nr, threads);
    }

    /// <summary>
    /// The busiest thread's cost per unit of k, in multiply-adds, when <paramref name="tiles"/> tiles of
    /// <paramref name="tile"/> are split over the threads in one dimension (as <c>Job.RunGemmItem</c> splits them) and
    /// each thread spans <paramref name="across"/> of the other: its tiles' multiply-adds plus the floats it packs.
    /// </summary>
    private static long BusiestCost(int tiles, int tile, int across, int threads)
    {
        int items = Math.Min(threads, tiles);
        long busiest = (long)(tiles + items - 1) / items * tile;
        return busiest * across + PackedFloatMultiplyAdds * (busiest + across);
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
        private readonly Action _gemmWhole;
        private readonly Action<int> _gemvItem;

        private VectorIsa _isa;
        private Blocking _blocking;
        private bool _transA, _transB;
        private int _m, _n, _k, _lda, _ldb, _ldc;
        private float _alpha, _beta;
        private float* _a, _b, _c;

        // B packed ahead of the call (PackedMatrix), or null when each thread packs its own blocks.
        private float* _packedB;

        // GEMM work split: a gridM x gridN grid of C rectangles, each a whole number of micro-tiles.
        private int _kc, _gridM, _gridN;

        // GEMV work split: _gemvItems chunks of GemvChunk outputs each.
        private int _gemvItems;

        public Job()
        {
            _gemmItem = RunGemmItem;
            _gemmWhole = () => GemmBlock(0, _m, 0, _n);
            _gemvItem = RunGemvItem;
        }

        public bool InUse { get; set; }

        public void Set(VectorIsa isa, Blocking blocking, bool transA, bool transB, int m, int n, int k, float alpha,
            float* a, int lda, float* b, int ldb, float* packedB, float beta, float* c, int ldc)
        {
            (_isa, _blocking) = (isa, blocking);
            (_transA, _transB, _m, _n, _k, _alpha, _beta) = (transA, transB, m, n, k, alpha, beta);
            (_lda, _ldb, _ldc) = (lda, ldb, ldc);
            _a = a;
            _b = b;
            _packedB = packedB;
            _c = c;
        }

        public void Release()
        {
            _a = _b = _c = _packedB = null;
            InUse = false;
        }

        public void RunGemm(WorkerPool pool)
        {
            _kc = _blocking.Kc(_k);
            int mr = _blocking.MR, nr = _blocking.NR;
            int threads = (long)_m * _n * _k < ParallelThreshold ? 1 : pool.ThreadCount;
            int mTiles = (_m + mr - 1) / mr, nTiles = (_n + nr - 1) / nr;
            if (SplitsN(_blocking, _m, _n, threads, _packedB != null))
            {
                _gridN = Math.Min(threads, nTiles);
                _gridM = Math.Min(threads / _gridN, mTiles);
            }
            else
            {
                _gridM = Math.Min(threads, mTiles);
                _gridN = Math.Min(threads / _gridM, nTiles);
            }

            // On the caller alone, one block: each item would pack the whole of the operand along the dimension it does not split.
            pool.For(_gridM * _gridN, _gemmItem, _gemmWhole);
        }

        private void RunGemmItem(int item)
        {
            int mr = _blocking.MR, nr = _blocking.NR;
            int mTiles = (_m + mr - 1) / mr, nTiles = (_n + nr - 1) / nr;
            int im = item / _gridN, jn = item % _gridN;
            int i0 = im * mTiles / _gridM * mr, i1 = Math.Min(_m, (im + 1) * mTiles / _gridM * mr);
            int j0 = jn * nTiles / _gridN * nr, j1 = Math.Min(_n, (jn + 1) * nTiles / _gridN * nr);
            if (i0 < i1 && j0 < j1)
                GemmBlock(i0, i1, j0, j1);
        }

        /// <summary>Computes the C rectangle [i0, i1) x [j0, j1) on the current thread.</summary>
        private void GemmBlock(int i0, int i1, int j0, int j1)
        {
            int mr = _blocking.MR, nr = _blocking.NR;
            int kcMax = _kc;
            int mcMax = _blocking.Mc, ncMax = _blocking.Nc;
            // Sized for the call, not this block, so that a call run as one block (the whole, when the caller runs
            // alone) needs no more than its items did: switching between the two never grows a buffer.
            float* packA = (t_packA ??= new Workspace()).Get(RoundUp(Math.Min(mcMax, _m), mr) * kcMax);
            float* packB = _packedB != null ? null
                : (t_packB ??= new Workspace()).Get(RoundUp(Math.Min(ncMax, _n), nr) * kcMax);
            int nPadded = RoundUp(_n, nr);

            for (int jc = j0; jc < j1; jc += ncMax)
            {
                int nb = Math.Min(ncMax, j1 - jc);
                for (int pc = 0; pc < _k; pc += kcMax)
                {
                    int kb = Math.Min(kcMax, _k - pc);
                    float* panels;
                    if (_packedB != null)
                    {
                        // PackedMatrix layout: slice after slice (each nPadded x kc), panel jc of a slice at jc * kb.
                        panels = _packedB + (nint)pc * nPadded + (nint)jc * kb;
                    }
                    else
                    {
                        PackB(nr, _transB, _b, _ldb, pc, kb, jc, nb, packB);
                        panels = packB;
                    }

                    // The first slice applies beta; later slices accumulate onto C.
                    float beta = pc == 0 ? _beta : 1f;
                    for (int ic = i0; ic < i1; ic += mcMax)
                    {
                        int mb = Math.Min(mcMax, i1 - ic);
                        PackA(mr, _transA, _a, _lda, ic, mb, pc, kb, packA);
                        MacroKernel(_isa, _blocking, kb, mb, nb, packA, panels, _c + (nint)ic * _ldc + jc, _ldc, _alpha, beta);
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
                    DotRows(_isa, _b, _ldb, o0, o1, x, _k, _alpha, _beta, _c, 1);
                else
                    AxpyRows(_isa, _b, _ldb, o0, o1, x, _k, _alpha, _beta, _c, 1);
            }
            else
            {
                // c[i, 0] = alpha * op(A)[i, :] . x + beta * c[i, 0]
                if (_transA)
                    AxpyRows(_isa, _a, _lda, o0, o1, x, _k, _alpha, _beta, _c, _ldc);
                else
                    DotRows(_isa, _a, _lda, o0, o1, x, _k, _alpha, _beta, _c, _ldc);
            }
        }
    }
}
