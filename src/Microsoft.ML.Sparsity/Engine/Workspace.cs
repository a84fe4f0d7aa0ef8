namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A scratch buffer on the pinned object heap, 64-byte aligned, held per thread in a <c>[ThreadStatic]</c> field by
/// the kernels that need one (GEMM packing, the sparse formats' padded or transposed inputs); it only grows, and is
/// collected with its thread. Its contents are not cleared between uses.
/// </summary>
internal sealed unsafe class Workspace
{
    private AlignedArray<float>? _buffer;

    public float* Get(int floats)
    {
        if (_buffer is null || floats > _buffer.Length)
            _buffer = new AlignedArray<float>(floats);
        return _buffer.Pointer;
    }
}
