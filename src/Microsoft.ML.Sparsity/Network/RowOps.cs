using System.Numerics.Tensors;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>Row-broadcast helpers shared by layers with a per-feature (or per-channel) vector.</summary>
internal static class RowOps
{
    /// <summary>Adds <paramref name="vector"/> to each of the first <paramref name="rows"/> rows of <paramref name="matrix"/>.</summary>
    public static void AddToRows(Span<float> matrix, ReadOnlySpan<float> vector, int rows)
    {
        int n = vector.Length;
        for (int r = 0; r < rows; r++)
        {
            var row = matrix.Slice(r * n, n);
            TensorPrimitives.Add(row, vector, row);
        }
    }

    /// <summary>Writes the column sums of the first <paramref name="rows"/> rows into <paramref name="sums"/>, in row order.</summary>
    public static void SumRows(float[] matrix, float[] sums, int rows)
    {
        int n = sums.Length;
        matrix.AsSpan(0, n).CopyTo(sums);
        for (int r = 1; r < rows; r++)
            TensorPrimitives.Add(sums, matrix.AsSpan(r * n, n), sums);
    }
}
