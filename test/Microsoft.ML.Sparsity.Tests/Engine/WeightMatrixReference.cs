using Microsoft.ML.Sparsity.Engine;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Engine;

/// <summary>Checks a weight format's product against a double-precision dense reference.</summary>
internal static class WeightMatrixReference
{
    /// <summary>
    /// y = x · Wᵀ for each batch size: every output within 1e-5 of the reference relative to Σ|x·w|, and the output
    /// span's tail past batch · rows untouched.
    /// </summary>
    public static void AssertMultiplyMatches(IWeightMatrix matrix, float[] w, WorkerPool pool, Random random, string label, params int[] batches)
    {
        int rows = matrix.Rows, cols = matrix.Cols;
        foreach (int batch in batches)
        {
            float[] x = RandomVector(batch * cols, random);
            float[] y = Enumerable.Repeat(float.NaN, batch * rows + 5).ToArray();
            matrix.MultiplyTransposed(pool, x, batch, y);
            for (int b = 0; b < batch; b++)
            {
                for (int r = 0; r < rows; r++)
                {
                    double sum = 0, magnitude = 0;
                    for (int c = 0; c < cols; c++)
                    {
                        double p = (double)x[b * cols + c] * w[r * cols + c];
                        sum += p;
                        magnitude += Math.Abs(p);
                    }

                    Assert.True(Math.Abs(y[b * rows + r] - sum) <= 1e-5 * magnitude + 1e-30,
                        $"{label} {rows}x{cols} batch {batch}: y[{b},{r}] = {y[b * rows + r]}, expected {sum}");
                }
            }

            Assert.All(y.Skip(batch * rows), v => Assert.True(float.IsNaN(v)));
        }
    }

    public static float[] RandomVector(int length, Random random)
    {
        float[] x = new float[length];
        for (int i = 0; i < length; i++)
            x[i] = (float)(random.NextDouble() * 2 - 1);
        return x;
    }
}
