using System.Numerics.Tensors;

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
}
