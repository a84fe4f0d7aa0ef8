using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// Finds NaN and ±∞ among feature values: training refuses them (<see cref="DataViewReader"/>, <see cref="Dataset"/>)
/// and scoring gives such an example NaN scores (<see cref="Inference.InferenceSession"/>), on every path alike.
/// </summary>
internal static class NonFinite
{
    /// <summary>Values summed per probe: a finite sum clears them at once; a NaN or ±∞ (or an overflowing sum) makes the probe look closer.</summary>
    private const int Chunk = 4096;

    /// <summary>The index of the first NaN or ±∞ in <paramref name="values"/>; -1 when every value is finite.</summary>
    public static int First(ReadOnlySpan<float> values)
    {
        for (int start = 0; start < values.Length; start += Chunk)
        {
            var chunk = values.Slice(start, Math.Min(Chunk, values.Length - start));
            if (float.IsFinite(TensorPrimitives.Sum(chunk)))
                continue;
            for (int i = 0; i < chunk.Length; i++)
                if (!float.IsFinite(chunk[i])) return start + i;
        }
        return -1;
    }

    /// <summary>
    /// Copies <paramref name="source"/> into <paramref name="destination"/> and returns whether every value is finite,
    /// in one pass: v − v is 0 for a finite v and NaN otherwise. A single prediction copies its features into the
    /// network's input anyway; the copy and <see cref="First"/> took 64 ns of it for 784 features (87 ns with AVX2),
    /// this pass 32 ns.
    /// </summary>
    public static bool CopyIsFinite(ReadOnlySpan<float> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException($"The destination has {destination.Length} values; {source.Length} are needed.", nameof(destination));
        ref float from = ref MemoryMarshal.GetReference(source);
        ref float to = ref MemoryMarshal.GetReference(destination);
        int n = source.Length, i = 0, width = Vector<float>.Count;
        Vector<float> zeros = Vector<float>.Zero, moreZeros = Vector<float>.Zero;
        for (; i + 2 * width <= n; i += 2 * width)
        {
            Vector<float> a = Vector.LoadUnsafe(ref from, (nuint)i), b = Vector.LoadUnsafe(ref from, (nuint)(i + width));
            a.StoreUnsafe(ref to, (nuint)i);
            b.StoreUnsafe(ref to, (nuint)(i + width));
            zeros += a - a;
            moreZeros += b - b;
        }

        float sum = Vector.Sum(zeros + moreZeros);
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref from, i);
            Unsafe.Add(ref to, i) = v;
            sum += v - v;
        }

        return sum == 0f;
    }
}
