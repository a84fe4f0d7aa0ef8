namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A weight format whose kernel multiplies one batch row at a time (N:M, sliced ELLPACK): batch 1 runs on the
/// calling thread, larger batches split their rows over the pool. Every batch row runs the same kernel, so results do
/// not depend on the batch size or thread count.
/// </summary>
internal abstract unsafe class RowKernelMatrix(int rows, int cols) : IWeightMatrix
{
    /// <summary>Below this many stored multiply-adds per call, everything runs on the calling thread.</summary>
    private const long ParallelThreshold = 1L << 16;

    /// <summary>One item of a call split over the pool's threads: a contiguous range of batch rows.</summary>
    private static readonly Action<BatchJob, int> RowsItem = (job, item) =>
    {
        var w = (RowKernelMatrix)job.Owner!;
        int b0 = (int)((long)item * job.Batch / job.Items), b1 = (int)((long)(item + 1) * job.Batch / job.Items);
        for (int b = b0; b < b1; b++)
            w.MultiplyRow(job.X + (long)b * w.Cols, job.Y + (long)b * w.Rows);
    };

    public int Rows { get; } = rows;

    public int Cols { get; } = cols;

    public abstract long StorageBytes { get; }

    public abstract VectorIsa KernelIsa { get; }

    /// <summary>The multiply-adds the kernel does for one batch row, padding included.</summary>
    protected abstract long RowMultiplyAdds { get; }

    /// <summary>y = W · x for one batch row: <paramref name="x"/> has <see cref="Cols"/> values, <paramref name="y"/> receives <see cref="Rows"/>.</summary>
    protected abstract void MultiplyRow(float* x, float* y);

    public void MultiplyTransposed(WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        if (!WeightMatrixArguments.Check(this, pool, x, batch, y))
            return;

        fixed (float* px = x)
        fixed (float* py = y)
        {
            if (batch == 1 || batch * RowMultiplyAdds < ParallelThreshold)
            {
                for (int b = 0; b < batch; b++)
                    MultiplyRow(px + (long)b * Cols, py + (long)b * Rows);
                return;
            }

            BatchJob.Run(pool, Math.Min(batch, pool.ThreadCount), RowsItem, this, px, py, batch);
        }
    }
}
