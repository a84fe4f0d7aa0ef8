using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A weight matrix W [Rows, Cols] in one of the storage formats inference uses (dense, CSR, sliced ELLPACK, N:M),
/// applied as a dense or convolution layer applies its weight: y = x · Wᵀ for a batch of rows.
/// </summary>
/// <remarks>Implementations are immutable once built, safe to call from several threads at once, and allocate nothing once warm.</remarks>
internal interface IWeightMatrix
{
    int Rows { get; }

    int Cols { get; }

    /// <summary>The bytes the format holds (values, indices, offsets).</summary>
    long StorageBytes { get; }

    /// <summary>The vector tier the kernels multiplying this matrix run at here (<see cref="VectorIsa.Scalar"/>: a scalar fallback); the format report shows it.</summary>
    VectorIsa KernelIsa { get; }

    /// <summary>y[batch, Rows] = x[batch, Cols] · Wᵀ (row-major, y overwritten).</summary>
    void MultiplyTransposed(WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y);
}

/// <summary>
/// The dense format: a 64-byte-aligned copy of the weight (<see cref="AlignedArray{T}"/>; a managed array's rows
/// split cache lines, which cost the batch-1 GEMV about a sixth of its time) for single examples (GEMV), and for
/// batches the weight packed once into the GEMM's panel order (<see cref="Gemm.PackedMatrix"/>, built at the first
/// batched call so single-example models do not hold it): repacking the weight on every call costs about as much as
/// the multiply itself at batch 16. A weight of at most 16 outputs (a classifier's output layer) also keeps its
/// transpose for single examples (<see cref="Gemm.MultiplyNarrow"/>), multiplied on the calling thread without the
/// GEMM's job: a 10×100 layer's call took 91–94 ns through the GEMM's GEMV (its kernel alone 54 ns) and takes 41 ns
/// so (AVX-512, one thread).
/// </summary>
internal sealed unsafe class DenseMatrix : IWeightMatrix
{
    private readonly AlignedArray<float> _values;
    private readonly Lazy<Gemm.PackedMatrix> _packed;
    private readonly AlignedArray<float>? _narrow;

    public DenseMatrix(ReadOnlySpan<float> values, int rows, int cols)
    {
        _values = AlignedArray<float>.From(values);
        (Rows, Cols) = (rows, cols);
        _packed = new(() => new Gemm.PackedMatrix(VectorIsas.Best, true, Cols, Rows, _values.Span, Cols));
        if (rows <= Gemm.NarrowLanes)
        {
            _narrow = new AlignedArray<float>(checked(cols * Gemm.NarrowLanes));
            Span<float> narrow = _narrow.Span;
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < cols; c++)
                    narrow[c * Gemm.NarrowLanes + r] = values[r * cols + c];
            }
        }
    }

    public int Rows { get; }

    public int Cols { get; }

    /// <summary>The weight's own bytes. The panel-packed copy the first batched call builds is a cache of the same values, not
    /// counted, so a model reports the same bytes whatever it has served (model files and reports compare them).</summary>
    public long StorageBytes => (long)Rows * Cols * sizeof(float);

    /// <summary>The packed GEMM's and GEMV's tier: the best this process runs (every tier has vector kernels).</summary>
    public VectorIsa KernelIsa => VectorIsas.Best;

    public void MultiplyTransposed(WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        if (batch == 1 && _narrow is not null)
        {
            if (!WeightMatrixArguments.Check(this, pool, x, batch, y))
                return;
            fixed (float* px = x, py = y)
                Gemm.MultiplyNarrow(VectorIsas.Best, _narrow.Pointer, px, Cols, py, Rows);
        }
        else if (batch == 1)
            Gemm.Multiply(pool, false, true, batch, Rows, Cols, 1f, x, Cols, _values.Span, Cols, 0f, y, Rows);
        else
            Gemm.Multiply(pool, false, batch, 1f, x, Cols, _packed.Value, 0f, y, Rows);
    }
}

/// <summary>The argument checks every <see cref="IWeightMatrix.MultiplyTransposed"/> makes.</summary>
internal static class WeightMatrixArguments
{
    /// <summary>Throws on a null pool, a negative batch or spans too short; returns false when there is nothing to compute.</summary>
    public static bool Check(IWeightMatrix matrix, WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        if (x.Length < (long)batch * matrix.Cols)
            throw new ArgumentException($"Length {x.Length} is too short for {batch} rows of {matrix.Cols} inputs.", nameof(x));
        if (y.Length < (long)batch * matrix.Rows)
            throw new ArgumentException($"Length {y.Length} is too short for {batch} rows of {matrix.Rows} outputs.", nameof(y));
        return batch > 0 && matrix.Rows > 0;
    }
}
