using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Network;

/// <summary>Finite-difference gradient checking for layers and losses, plus deterministic random tensors.</summary>
internal static class GradCheck
{
    public static float[] Uniform(Random random, int n, float low = -1f, float high = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = low + (float)random.NextDouble() * (high - low);
        return a;
    }

    /// <summary>Uniform values whose magnitude is at least <paramref name="minAbs"/> (keeps ReLU-like kinks away).</summary>
    public static float[] AwayFromZero(Random random, int n, float minAbs, float maxAbs = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            float m = minAbs + (float)random.NextDouble() * (maxAbs - minAbs);
            a[i] = random.Next(2) == 0 ? m : -m;
        }
        return a;
    }

    /// <summary>A random permutation of the distinct values spacing·(k − n/2): no ties, gaps of <paramref name="spacing"/>.</summary>
    public static float[] DistinctValues(Random random, int n, float spacing)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = spacing * (i - n / 2);
        random.Shuffle(a);
        return a;
    }

    public static double Dot(float[] r, float[] y, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++) s += (double)r[i] * y[i];
        return s;
    }

    /// <summary>
    /// Checks <paramref name="layer"/>'s Backward against central differences of L = Σ r ⊙ y (so dy = r), for the
    /// input gradient and every parameter gradient. Returns the number of values compared.
    /// </summary>
    public static int CheckLayer(Layer layer, float[] x, int batch, Random random, float eps = 1e-2f,
        double atol = 2e-3, double rtol = 1e-2, bool checkInput = true)
    {
        int inN = batch * layer.InputSize, outN = batch * layer.OutputSize;
        Assert.Equal(inN, x.Length);
        layer.EnsureCapacity(batch);
        var y = new float[outN];
        var r = Uniform(random, outN);
        var dx = new float[inN];
        layer.Forward(x, y, batch, training: true);
        layer.Backward(x, y, (float[])r.Clone(), checkInput ? dx : null, batch);
        var analytic = layer.Parameters.Select(p => (float[])p.Gradient.Clone()).ToArray();

        double Loss()
        {
            var yy = new float[outN];
            layer.Forward(x, yy, batch, training: true);
            return Dot(r, yy, outN);
        }

        int compared = 0;
        if (checkInput)
            compared += Compare($"{layer.Name} dx", dx, x, Loss, eps, atol, rtol);
        for (int p = 0; p < layer.Parameters.Count; p++)
            compared += Compare($"{layer.Parameters[p].Name} gradient", analytic[p], layer.Parameters[p].Value, Loss, eps, atol, rtol);
        return compared;
    }

    /// <summary>Compares <paramref name="analytic"/>[i] with (L(v_i + h) − L(v_i − h)) / 2h for every i, perturbing <paramref name="values"/> in place.</summary>
    public static int Compare(string what, float[] analytic, float[] values, Func<double> loss, float eps, double atol, double rtol,
        IEnumerable<int>? indices = null)
    {
        double maxNumeric = 0;
        int count = 0;
        foreach (int i in indices ?? Enumerable.Range(0, values.Length))
        {
            float original = values[i];
            float plus = original + eps, minus = original - eps;
            values[i] = plus;
            double lp = loss();
            values[i] = minus;
            double lm = loss();
            values[i] = original;
            double numeric = (lp - lm) / ((double)plus - minus);
            maxNumeric = Math.Max(maxNumeric, Math.Abs(numeric));
            double diff = Math.Abs(analytic[i] - numeric);
            Assert.True(diff <= atol + rtol * Math.Abs(numeric),
                $"{what}[{i}]: analytic {analytic[i]:G6}, numeric {numeric:G6} (|diff| {diff:G3}).");
            count++;
        }
        // Guard against a vacuous check where everything is zero.
        if (count > 0) Assert.True(maxNumeric > 1e-2, $"{what}: all numeric gradients are ~0 (max {maxNumeric:G3}); the check proves nothing.");
        return count;
    }

    public static LayerBuildContext Context(WorkerPool pool, int seed = 1) => new(pool, WeightInitializer.GlorotUniform, seed);
}
