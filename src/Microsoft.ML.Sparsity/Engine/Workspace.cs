using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A scratch buffer on the pinned object heap, 64-byte aligned, held per thread in a <c>[ThreadStatic]</c> field by
/// the kernels that need one (GEMM packing, the sparse formats' padded or transposed inputs); it only grows, and is
/// collected with its thread. Its contents are not cleared.
/// </summary>
internal sealed unsafe class Workspace
{
    private float[]? _array;
    private float* _aligned;
    private int _capacity;

    public float* Get(int floats)
    {
        if (floats > _capacity)
        {
            _array = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
            _aligned = (float*)((start + 63) & ~(nint)63);
            _capacity = floats;
        }

        return _aligned;
    }
}
