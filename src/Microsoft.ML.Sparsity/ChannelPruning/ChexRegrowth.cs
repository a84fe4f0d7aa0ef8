using MathNet.Numerics.LinearAlgebra;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// CHEX's choice of the channels to regrow within a layer: importance sampling on each pruned channel's orthogonality
/// to the kept filters, or uniform draws; without replacement either way.
/// </summary>
internal static class ChexRegrowth
{
    /// <summary>
    /// ‖c − Pc‖₂ for each candidate filter c (rows of <paramref name="candidates"/>), P the orthogonal projector onto
    /// the span of the kept filters B (rows of <paramref name="kept"/>): P = B(BᵀB)⁺Bᵀ, the pseudo-inverse of the
    /// small k × k Gram matrix from MathNet's SVD, so dependent kept filters are handled.
    /// </summary>
    public static double[] Orthogonality(float[][] kept, float[][] candidates)
    {
        var result = new double[candidates.Length];
        if (candidates.Length == 0) return result;
        int length = candidates[0].Length;
        Matrix<double>? b = null, gramInverse = null;
        if (kept.Length > 0)
        {
            b = Matrix<double>.Build.Dense(length, kept.Length, (i, j) => kept[j][i]);
            gramInverse = b.TransposeThisAndMultiply(b).PseudoInverse();
        }

        for (int i = 0; i < candidates.Length; i++)
        {
            var c = Vector<double>.Build.Dense(length, j => candidates[i][j]);
            result[i] = (b is null ? c : c - b * (gramInverse! * b.TransposeThisAndMultiply(c))).L2Norm();
        }
        return result;
    }

    /// <summary>
    /// <paramref name="count"/> distinct indices in [0, scores.Length): drawn one after another with probabilities
    /// softmax of the remaining scores, or uniformly when <paramref name="scores"/> is null.
    /// </summary>
    public static int[] Draw(double[]? scores, int candidates, int count, Random random)
    {
        var remaining = Enumerable.Range(0, candidates).ToList();
        var drawn = new int[count];
        for (int d = 0; d < count; d++)
        {
            int pick;
            if (scores is null)
            {
                pick = random.Next(remaining.Count);
            }
            else
            {
                double max = remaining.Max(i => scores[i]);
                double[] weights = [.. remaining.Select(i => Math.Exp(scores[i] - max))];
                double u = random.NextDouble() * weights.Sum();
                pick = 0;
                for (double sum = weights[0]; sum <= u && pick < weights.Length - 1; sum += weights[++pick]) { }
            }
            drawn[d] = remaining[pick];
            remaining.RemoveAt(pick);
        }
        return drawn;
    }
}
