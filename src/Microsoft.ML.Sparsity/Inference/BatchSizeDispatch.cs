using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>One weight in two formats: one serves a single row (batch 1), the other batches.</summary>
internal sealed class BatchSizeDispatch(IWeightMatrix single, IWeightMatrix batched) : IWeightMatrix
{
    public int Rows => batched.Rows;

    public int Cols => batched.Cols;

    public long StorageBytes => single.StorageBytes + batched.StorageBytes;

    /// <summary>The narrower of the two formats' tiers.</summary>
    public VectorIsa KernelIsa => single.KernelIsa < batched.KernelIsa ? single.KernelIsa : batched.KernelIsa;

    public void MultiplyTransposed(WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y) =>
        (batch == 1 ? single : batched).MultiplyTransposed(pool, x, batch, y);
}
