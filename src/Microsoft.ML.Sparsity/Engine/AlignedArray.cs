using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A zero-initialised array on the pinned object heap whose first element is 64-byte aligned (one cache line, one
/// 512-bit register), for kernels that stream it with vector loads: a managed array's elements start 16 bytes into
/// the object, so every 64-byte load from one splits two cache lines, which cost the sparse kernels up to a third
/// of their time. Pinned, so <see cref="Pointer"/> stays valid for the array's life.
/// </summary>
internal sealed unsafe class AlignedArray<T>
    where T : unmanaged
{
    private const int Alignment = 64;

    private readonly T[] _array;

    public AlignedArray(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _array = GC.AllocateArray<T>(length + Alignment / sizeof(T), pinned: true);
        nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        Pointer = (T*)((start + Alignment - 1) & ~(nint)(Alignment - 1));
        Length = length;
    }

    public int Length { get; }

    /// <summary>The first element, 64-byte aligned.</summary>
    public T* Pointer { get; }

    public Span<T> Span => new(Pointer, Length);

    public ref T this[long index] => ref Span[checked((int)index)];

    public static AlignedArray<T> From(ReadOnlySpan<T> values)
    {
        var array = new AlignedArray<T>(values.Length);
        values.CopyTo(array.Span);
        return array;
    }
}
