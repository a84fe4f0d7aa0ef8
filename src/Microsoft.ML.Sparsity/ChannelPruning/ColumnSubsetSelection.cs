using System.Numerics.Tensors;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// Column subset selection, the way CHEX picks the channels a layer keeps (Hou et al., "CHEX: CHannel EXploration for
/// CNN Model Compression", 2022). The filter matrix X = Wᵀ has one column per output channel: the channel's filter,
/// flattened. With X = UΣVᵀ and V_k the right singular vectors of the k largest singular values (k = the channels
/// kept), channel j's leverage score is ‖V_k[j, :]‖² (the paper writes the norm; its square ranks the same); the k
/// channels of highest leverage are kept. Leverage measures how much of X's dominant k-dimensional structure a filter
/// carries that the others do not: two identical filters split their direction's leverage, while a filter orthogonal
/// to all others keeps all of its own, however small its norm.
/// </summary>
/// <remarks>
/// The QR and SVD are MathNet.Numerics' managed ones, in double precision; their parallel loops split only independent
/// columns, never a sum, so the scores do not depend on the thread count. When k exceeds X's rank the singular vectors beyond the rank span part
/// of X's null space, chosen deterministically by the decomposition.
/// </remarks>
internal static class ColumnSubsetSelection
{
    /// <summary>
    /// CHEX's channel scores for keeping <paramref name="kept"/> of the <paramref name="channels"/> rows (filters) of
    /// <paramref name="weights"/>: leverage scores, or, when the filter matrix is wider than tall (filter length &lt;
    /// channels), each filter's L1 norm Σ|w|, the paper's fallback. Higher scores are kept.
    /// </summary>
    /// <param name="weights">The layer's weight, row-major with one row per output channel ([out, in] or [out, kh, kw, in]).</param>
    /// <param name="channels">The output channels (rows).</param>
    /// <param name="kept">k, the number of channels kept, in [0, channels].</param>
    /// <param name="scores">Receives one score per channel.</param>
    public static void Scores(ReadOnlySpan<float> weights, int channels, int kept, Span<float> scores)
    {
        if (channels <= 0 || weights.Length % channels != 0)
            throw new ArgumentException($"A weight of {weights.Length} values does not split into {channels} equal filters.", nameof(channels));
        if (kept < 0 || kept > channels)
            throw new ArgumentOutOfRangeException(nameof(kept), kept, $"The kept channel count must be in [0, {channels}].");
        int length = weights.Length / channels;
        if (length < channels)
            for (int j = 0; j < channels; j++) scores[j] = TensorPrimitives.SumOfMagnitudes(weights.Slice(j * length, length));
        else
            LeverageScores(weights, channels, length, kept, scores);
    }

    private static void LeverageScores(ReadOnlySpan<float> weights, int channels, int length, int kept, Span<float> scores)
    {
        // X (length × channels) stored column by column is W stored row by row.
        var columns = new double[weights.Length];
        for (int i = 0; i < columns.Length; i++) columns[i] = weights[i];
        var x = Matrix<double>.Build.Dense(length, channels, columns);
        // X = QR with orthonormal Q: R (channels × channels) has X's singular values and right singular vectors, at a
        // fraction of the cost of decomposing X itself when filters are long.
        var vt = x.QR(QRMethod.Thin).R.Svd(computeVectors: true).VT;
        for (int j = 0; j < channels; j++)
        {
            double leverage = 0;
            for (int i = 0; i < kept; i++) leverage += vt[i, j] * vt[i, j];
            scores[j] = (float)leverage;
        }
    }
}
