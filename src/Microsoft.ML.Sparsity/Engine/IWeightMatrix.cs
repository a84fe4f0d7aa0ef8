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

    /// <summary>y[batch, Rows] = x[batch, Cols] · Wᵀ (row-major, y overwritten).</summary>
    void MultiplyTransposed(WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y);
}

/// <summary>The dense format: the layer's own weight array, multiplied by the packed GEMM (GEMV at batch 1).</summary>
internal sealed class DenseMatrix(float[] values, int rows, int cols) : IWeightMatrix
{
    public int Rows { get; } = rows;

    public int Cols { get; } = cols;

    public long StorageBytes => (long)Rows * Cols * sizeof(float);

    public void MultiplyTransposed(WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y) =>
        Gemm.Multiply(pool, false, true, batch, Rows, Cols, 1f, x, Cols, values, Cols, 0f, y, Rows);
}
