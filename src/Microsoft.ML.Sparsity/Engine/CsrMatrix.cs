using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A weight matrix W [rows, cols] in compressed sparse row form: per row its non-zeros' values and columns, in column
/// order. Columns are 16-bit when cols ≤ 65,536 (<see cref="NarrowColumns"/>), else 32-bit.
/// </summary>
/// <remarks>
/// <para>
/// Batch 1: one dot product per row, four non-zeros per register, their x values fetched by scalar loads (no
/// gather: slower than the loads on the cores measured, and absent from NEON and SSE). Larger batches
/// go in blocks of 32 batch rows: the block of x is transposed once into xT [cols, 32], so each non-zero is one
/// broadcast and FMAs against its column's 32 batch values (no gather): two AVX-512 registers, four AVX2 or eight
/// Vector128 ones, each tier with its own instructions (Vector512 code without AVX-512 is emulated); a batch of at
/// most 16 rows takes one block of 16 and half the registers. The tier is chosen at construction (<see cref="KernelIsa"/>).
/// </para>
/// <para>
/// Each output is summed in an order fixed by the matrix and by whether the batch is 1 (the two kernels order their
/// sums differently), never by the thread count. Safe to call from several threads at once; allocates nothing once warm.
/// </para>
/// </remarks>
internal sealed unsafe class CsrMatrix : IWeightMatrix
{
    /// <summary>Batch rows a block takes; a batch of at most half as many runs one block of half (<see cref="Half"/>).</summary>
    private const int Lanes = 32;

    /// <summary>Below this many multiply-adds per call, everything runs on the calling thread.</summary>
    private const long ParallelThreshold = 1L << 16;

    [ThreadStatic] private static Workspace? t_xT;
    [ThreadStatic] private static Workspace? t_yT;

    private CsrMatrix(int rows, int cols, VectorIsa isa, int[] rowStarts, ushort[]? narrow, int[]? wide, float[] values)
    {
        KernelIsa = isa;
        Rows = rows;
        Cols = cols;
        RowStarts = rowStarts;
        NarrowColumns = narrow;
        WideColumns = wide;
        Values = values;
    }

    /// <summary>The tier whose kernels this matrix runs.</summary>
    public VectorIsa KernelIsa { get; }

    public int Rows { get; }

    public int Cols { get; }

    /// <summary>Row r's non-zeros are entries [RowStarts[r], RowStarts[r + 1]).</summary>
    public int[] RowStarts { get; }

    /// <summary>The non-zeros' columns when cols ≤ 65,536, else null.</summary>
    public ushort[]? NarrowColumns { get; }

    /// <summary>The non-zeros' columns when cols &gt; 65,536, else null.</summary>
    public int[]? WideColumns { get; }

    public float[] Values { get; }

    public int NonZeros => Values.Length;

    public long StorageBytes =>
        Values.LongLength * sizeof(float) + (NarrowColumns?.LongLength * sizeof(ushort) ?? WideColumns!.LongLength * sizeof(int))
        + RowStarts.LongLength * sizeof(int);

    /// <summary>The non-zeros of the row-major matrix <paramref name="w"/> [<paramref name="rows"/>, <paramref name="cols"/>], multiplied by the widest tier this process runs.</summary>
    public static CsrMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols) => FromDense(w, rows, cols, VectorIsas.Best);

    /// <summary>As <see cref="FromDense(ReadOnlySpan{float}, int, int)"/>, with the kernels of tier <paramref name="isa"/> (only an available tier multiplies).</summary>
    public static CsrMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols, VectorIsa isa)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (w.Length != (long)rows * cols)
            throw new ArgumentException($"Length {w.Length} does not match a {rows}x{cols} matrix.", nameof(w));
        int nonZeros = w.Length - w.Count(0f);
        var starts = new int[rows + 1];
        var values = new float[nonZeros];
        bool narrow = cols <= 1 << 16;
        ushort[]? narrowColumns = narrow ? new ushort[nonZeros] : null;
        int[]? wideColumns = narrow ? null : new int[nonZeros];
        int k = 0;
        for (int r = 0; r < rows; r++)
        {
            starts[r] = k;
            ReadOnlySpan<float> row = w.Slice(r * cols, cols);
            for (int c = 0; c < cols; c++)
            {
                if (row[c] == 0f)
                    continue;
                values[k] = row[c];
                if (narrow)
                    narrowColumns![k] = (ushort)c;
                else
                    wideColumns![k] = c;
                k++;
            }
        }

        starts[rows] = k;
        return new CsrMatrix(rows, cols, isa, starts, narrowColumns, wideColumns, values);
    }

    public float[] ToDense()
    {
        var w = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++)
        {
            for (int k = RowStarts[r]; k < RowStarts[r + 1]; k++)
                w[(long)r * Cols + Column(k)] = Values[k];
        }

        return w;
    }

    private int Column(int k) => NarrowColumns is not null ? NarrowColumns[k] : WideColumns![k];

    public void MultiplyTransposed(WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        if (!WeightMatrixArguments.Check(this, pool, x, batch, y))
            return;

        fixed (float* px = x)
        fixed (float* py = y)
        {
            if (batch == 1)
            {
                DotRows(px, py);
                return;
            }

            // A batch of at most 16 rows runs one block of 16: in a block of 32 half the multiply-adds would be padding
            // (LeNet at 90%, AVX-512, batches of 16 scored at 0.84–0.90× the dense model's speed; 1.12–1.36× with blocks of 16). Each lane sums in
            // the same order in either width, so results do not depend on the batch size.
            WorkerPool threads = (long)batch * NonZeros < ParallelThreshold ? WorkerPool.Inline : pool;
            if (batch <= Lanes / 2)
                BatchJob.Run(threads, 1, HalfBlock, this, px, py, batch);
            else
                BatchJob.Run(threads, (batch + Lanes - 1) / Lanes, Block, this, px, py, batch);
        }
    }

    private static readonly Action<BatchJob, int> Block = (job, block) => ((CsrMatrix)job.Owner!).RunBlock<Whole>(job, block);
    private static readonly Action<BatchJob, int> HalfBlock = (job, block) => ((CsrMatrix)job.Owner!).RunBlock<Half>(job, block);

    /// <summary>A block's width as a type, so each kernel is compiled for its width with no branch on it.</summary>
    private interface IBlockWidth
    {
        static abstract int Lanes { get; }
    }

    private readonly struct Whole : IBlockWidth
    {
        public static int Lanes => CsrMatrix.Lanes;
    }

    private readonly struct Half : IBlockWidth
    {
        public static int Lanes => CsrMatrix.Lanes / 2;
    }

    /// <summary>y[r] = Σ_k Values[k] · x[column k] for every row.</summary>
    private void DotRows(float* x, float* y)
    {
        fixed (float* values = Values)
        fixed (ushort* narrow = NarrowColumns)
        fixed (int* wide = WideColumns)
        {
            if (narrow is not null)
                DotRows(x, y, values, narrow);
            else
                DotRows(x, y, values, wide);
        }
    }

    /// <summary>
    /// The dot products, 16 non-zeros at a time in four Vector128 accumulators whose x values come from scalar
    /// loads; a row's tail runs scalar. Every vector tier runs this: with AVX-512 off on Zen 5, AVX2 gathers of eight
    /// x values made LeNet-300-100's forward at 90% 1.38× slower (11.4 against 8.3 µs, dense 14.5 and 14.1 µs in the same runs), and wider registers gained nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void DotRows<TIndex>(float* x, float* y, float* values, TIndex* columns)
        where TIndex : unmanaged
    {
        for (int r = 0; r < Rows; r++)
        {
            int k = RowStarts[r], end = RowStarts[r + 1];
            float sum = 0f;
            if (KernelIsa >= VectorIsa.Vector128)
            {
                Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; k + 16 <= end; k += 16)
                {
                    a0 = Vector128.MultiplyAddEstimate(Vector128.Load(values + k), Inputs4(x, columns, k), a0);
                    a1 = Vector128.MultiplyAddEstimate(Vector128.Load(values + k + 4), Inputs4(x, columns, k + 4), a1);
                    a2 = Vector128.MultiplyAddEstimate(Vector128.Load(values + k + 8), Inputs4(x, columns, k + 8), a2);
                    a3 = Vector128.MultiplyAddEstimate(Vector128.Load(values + k + 12), Inputs4(x, columns, k + 12), a3);
                }

                sum = Vector128.Sum((a0 + a1) + (a2 + a3));
            }

            for (; k < end; k++)
                sum += values[k] * x[Column(columns, k)];
            y[r] = sum;
        }
    }

    /// <summary>x at the columns of non-zeros k .. k + 3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Inputs4<TIndex>(float* x, TIndex* columns, int k)
        where TIndex : unmanaged =>
        Vector128.Create(x[Column(columns, k)], x[Column(columns, k + 1)], x[Column(columns, k + 2)], x[Column(columns, k + 3)]);

    /// <summary>One block of <typeparamref name="TWidth"/>'s lanes of batch rows, every weight row.</summary>
    private void RunBlock<TWidth>(BatchJob job, int block)
        where TWidth : struct, IBlockWidth
    {
        int width = TWidth.Lanes;
        int b0 = block * width, lanes = Math.Min(width, job.Batch - b0), cols = Cols;
        float* xT = (t_xT ??= new Workspace()).Get(cols * width);
        fixed (float* values = Values)
        fixed (ushort* narrow = NarrowColumns)
        fixed (int* wide = WideColumns)
        {
            // xT[c, b] = x[b0 + b, c]; lanes past the batch are zero. Whole 8×8 blocks transpose in registers.
            if (lanes < width)
                new Span<float>(xT, cols * width).Clear();
            int b = 0;
            if (KernelIsa >= VectorIsa.Avx2)
            {
                for (; b + 8 <= lanes; b += 8)
                {
                    float* x = job.X + (long)(b0 + b) * cols;
                    int c = 0;
                    for (; c + 8 <= cols; c += 8)
                        Gemm.Transpose8x8(x + c, cols, 8, xT + c * width + b, width);
                    for (; c < cols; c++)
                    {
                        for (int i = 0; i < 8; i++)
                            xT[c * width + b + i] = x[(long)i * cols + c];
                    }
                }
            }

            for (; b < lanes; b++)
            {
                float* x = job.X + (long)(b0 + b) * cols;
                for (int c = 0; c < cols; c++)
                    xT[c * width + b] = x[c];
            }

            // yT[r, b] for every weight row, stored whole vectors at a time, then transposed into y's rows.
            float* yT = (t_yT ??= new Workspace()).Get(Rows * width);
            if (narrow is not null)
                BlockRows<ushort, TWidth>(xT, values, narrow, yT);
            else
                BlockRows<int, TWidth>(xT, values, wide, yT);
            StoreTransposed(yT, job.Y + (long)b0 * Rows, lanes, width);
        }
    }

    /// <summary>
    /// yT[r, 0..W) = Σ_k Values[k] · xT[column k, 0..W) for every row r, W = <typeparamref name="TWidth"/>'s lanes
    /// (columns of type <typeparamref name="TIndex"/>: ushort or int), with this tier's registers.
    /// </summary>
    private void BlockRows<TIndex, TWidth>(float* xT, float* values, TIndex* columns, float* yT)
        where TIndex : unmanaged
        where TWidth : struct, IBlockWidth
    {
        switch (KernelIsa)
        {
            case VectorIsa.Avx512:
                BlockRows512<TIndex, TWidth>(xT, values, columns, yT);
                break;
            case VectorIsa.Avx2:
                BlockRows256<TIndex, TWidth>(xT, values, columns, yT);
                break;
            case VectorIsa.Vector128:
                BlockRows128<TIndex, TWidth>(xT, values, columns, yT);
                break;
            default:
                BlockRowsScalar(xT, values, columns, yT, TWidth.Lanes);
                break;
        }
    }

    /// <summary>AVX-512: the 32 batch values in two registers (16: one), two non-zeros at a time (four accumulators; two).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BlockRows512<TIndex, TWidth>(float* xT, float* values, TIndex* columns, float* yT)
        where TIndex : unmanaged
        where TWidth : struct, IBlockWidth
    {
        int width = TWidth.Lanes;
        bool whole = width == Lanes; // a constant in each compiled width
        for (int r = 0; r < Rows; r++)
        {
            Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default;
            int k = RowStarts[r], end = RowStarts[r + 1];
            for (; k + 2 <= end; k += 2)
            {
                float* x0 = xT + Column(columns, k) * width, x1 = xT + Column(columns, k + 1) * width;
                Vector512<float> v0 = Vector512.Create(values[k]), v1 = Vector512.Create(values[k + 1]);
                a0 = Avx512F.FusedMultiplyAdd(v0, Vector512.Load(x0), a0);
                b0 = Avx512F.FusedMultiplyAdd(v1, Vector512.Load(x1), b0);
                if (whole)
                {
                    a1 = Avx512F.FusedMultiplyAdd(v0, Vector512.Load(x0 + 16), a1);
                    b1 = Avx512F.FusedMultiplyAdd(v1, Vector512.Load(x1 + 16), b1);
                }
            }

            if (k < end)
            {
                float* x0 = xT + Column(columns, k) * width;
                Vector512<float> v0 = Vector512.Create(values[k]);
                a0 = Avx512F.FusedMultiplyAdd(v0, Vector512.Load(x0), a0);
                if (whole)
                    a1 = Avx512F.FusedMultiplyAdd(v0, Vector512.Load(x0 + 16), a1);
            }

            Vector512.Store(a0 + b0, yT + r * width);
            if (whole)
                Vector512.Store(a1 + b1, yT + r * width + 16);
        }
    }

    /// <summary>AVX2: the 32 batch values in four registers (16: two), two non-zeros at a time (eight accumulators; four).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BlockRows256<TIndex, TWidth>(float* xT, float* values, TIndex* columns, float* yT)
        where TIndex : unmanaged
        where TWidth : struct, IBlockWidth
    {
        int width = TWidth.Lanes;
        bool whole = width == Lanes; // a constant in each compiled width
        for (int r = 0; r < Rows; r++)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
            int k = RowStarts[r], end = RowStarts[r + 1];
            for (; k + 2 <= end; k += 2)
            {
                float* x0 = xT + Column(columns, k) * width, x1 = xT + Column(columns, k + 1) * width;
                Vector256<float> v0 = Vector256.Create(values[k]), v1 = Vector256.Create(values[k + 1]);
                a0 = Fma.MultiplyAdd(v0, Vector256.Load(x0), a0);
                a1 = Fma.MultiplyAdd(v0, Vector256.Load(x0 + 8), a1);
                b0 = Fma.MultiplyAdd(v1, Vector256.Load(x1), b0);
                b1 = Fma.MultiplyAdd(v1, Vector256.Load(x1 + 8), b1);
                if (whole)
                {
                    a2 = Fma.MultiplyAdd(v0, Vector256.Load(x0 + 16), a2);
                    a3 = Fma.MultiplyAdd(v0, Vector256.Load(x0 + 24), a3);
                    b2 = Fma.MultiplyAdd(v1, Vector256.Load(x1 + 16), b2);
                    b3 = Fma.MultiplyAdd(v1, Vector256.Load(x1 + 24), b3);
                }
            }

            if (k < end)
            {
                float* x0 = xT + Column(columns, k) * width;
                Vector256<float> v0 = Vector256.Create(values[k]);
                a0 = Fma.MultiplyAdd(v0, Vector256.Load(x0), a0);
                a1 = Fma.MultiplyAdd(v0, Vector256.Load(x0 + 8), a1);
                if (whole)
                {
                    a2 = Fma.MultiplyAdd(v0, Vector256.Load(x0 + 16), a2);
                    a3 = Fma.MultiplyAdd(v0, Vector256.Load(x0 + 24), a3);
                }
            }

            float* out0 = yT + r * width;
            Vector256.Store(a0 + b0, out0);
            Vector256.Store(a1 + b1, out0 + 8);
            if (whole)
            {
                Vector256.Store(a2 + b2, out0 + 16);
                Vector256.Store(a3 + b3, out0 + 24);
            }
        }
    }

    /// <summary>Vector128: the 32 batch values in eight registers (16: four), one non-zero at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BlockRows128<TIndex, TWidth>(float* xT, float* values, TIndex* columns, float* yT)
        where TIndex : unmanaged
        where TWidth : struct, IBlockWidth
    {
        int width = TWidth.Lanes;
        bool whole = width == Lanes; // a constant in each compiled width
        for (int r = 0; r < Rows; r++)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector128<float> a4 = default, a5 = default, a6 = default, a7 = default;
            for (int k = RowStarts[r], end = RowStarts[r + 1]; k < end; k++)
            {
                float* x0 = xT + Column(columns, k) * width;
                Vector128<float> v = Vector128.Create(values[k]);
                a0 = Vector128.MultiplyAddEstimate(v, Vector128.Load(x0), a0);
                a1 = Vector128.MultiplyAddEstimate(v, Vector128.Load(x0 + 4), a1);
                a2 = Vector128.MultiplyAddEstimate(v, Vector128.Load(x0 + 8), a2);
                a3 = Vector128.MultiplyAddEstimate(v, Vector128.Load(x0 + 12), a3);
                if (whole)
                {
                    a4 = Vector128.MultiplyAddEstimate(v, Vector128.Load(x0 + 16), a4);
                    a5 = Vector128.MultiplyAddEstimate(v, Vector128.Load(x0 + 20), a5);
                    a6 = Vector128.MultiplyAddEstimate(v, Vector128.Load(x0 + 24), a6);
                    a7 = Vector128.MultiplyAddEstimate(v, Vector128.Load(x0 + 28), a7);
                }
            }

            float* out0 = yT + r * width;
            Vector128.Store(a0, out0);
            Vector128.Store(a1, out0 + 4);
            Vector128.Store(a2, out0 + 8);
            Vector128.Store(a3, out0 + 12);
            if (whole)
            {
                Vector128.Store(a4, out0 + 16);
                Vector128.Store(a5, out0 + 20);
                Vector128.Store(a6, out0 + 24);
                Vector128.Store(a7, out0 + 28);
            }
        }
    }

    /// <summary>The scalar tier: one batch lane at a time, blocks of <paramref name="width"/>.</summary>
    private void BlockRowsScalar<TIndex>(float* xT, float* values, TIndex* columns, float* yT, int width)
        where TIndex : unmanaged
    {
        for (int r = 0; r < Rows; r++)
        {
            float* out0 = yT + r * width;
            new Span<float>(out0, width).Clear();
            for (int k = RowStarts[r], end = RowStarts[r + 1]; k < end; k++)
            {
                float* x0 = xT + Column(columns, k) * width;
                for (int b = 0; b < width; b++)
                    out0[b] += values[k] * x0[b];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Column<TIndex>(TIndex* columns, int k)
        where TIndex : unmanaged =>
        typeof(TIndex) == typeof(ushort) ? ((ushort*)columns)[k] : ((int*)columns)[k];

    /// <summary>y[b, r] = yT[r, b] for the block's first <paramref name="lanes"/> batch rows (of <paramref name="width"/>); whole 8×8 blocks in registers.</summary>
    private void StoreTransposed(float* yT, float* y, int lanes, int width)
    {
        int whole = KernelIsa >= VectorIsa.Avx2 ? lanes / 8 * 8 : 0, r = 0;
        for (; whole > 0 && r + 8 <= Rows; r += 8)
        {
            for (int b = 0; b < whole; b += 8)
                Gemm.Transpose8x8(yT + r * width + b, width, 8, y + (long)b * Rows + r, Rows);
            for (int b = whole; b < lanes; b++)
                for (int i = 0; i < 8; i++)
                    y[(long)b * Rows + r + i] = yT[(r + i) * width + b];
        }

        for (; r < Rows; r++)
        {
            for (int b = 0; b < lanes; b++)
                y[(long)b * Rows + r] = yT[r * width + b];
        }
    }
}
