using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.KernelCheck;

/// <summary>Counts checks and failures; prints the first few failures of each group.</summary>
internal sealed class Checker
{
    private int _groupChecks, _groupFailures;

    public int Total { get; private set; }

    public int Failures { get; private set; }

    /// <summary>Records one comparison: |actual − expected| ≤ 1e-5 · magnitude (the sum of the absolute terms that formed it).</summary>
    public void Compare(float actual, double expected, double magnitude, string what)
    {
        Total++;
        _groupChecks++;
        if (Math.Abs(actual - expected) <= 1e-5 * magnitude + 1e-30)
            return;
        Failures++;
        if (++_groupFailures <= 5)
            Console.WriteLine($"  MISMATCH {what}: {actual} vs {expected} (magnitude {magnitude})");
    }

    public void Report(string group)
    {
        Console.WriteLine($"{(_groupFailures == 0 ? "ok  " : "FAIL")} {group}: {_groupChecks - _groupFailures} of {_groupChecks} values match");
        _groupChecks = _groupFailures = 0;
    }
}

/// <summary>Double-precision references: GEMM, and a network's forward pass layer by layer.</summary>
internal static class Reference
{
    public static void CheckGemm(Checker check, WorkerPool pool, Random random, int m, int n, int k, bool transA, bool transB, float alpha, float beta)
    {
        float[] a = Values(m * k, random), b = Values(k * n, random), c = Values(m * n, random);
        float[] result = (float[])c.Clone();
        int lda = transA ? m : k, ldb = transB ? k : n;
        Gemm.Multiply(pool, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, result, n);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double term = (double)(transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                double expected = alpha * sum + beta * (double)c[i * n + j];
                check.Compare(result[i * n + j], expected, Math.Abs(alpha) * magnitude + Math.Abs(beta * c[i * n + j]),
                    $"GEMM {m}x{n}x{k} transA={transA} transB={transB} alpha={alpha} beta={beta} threads={pool.ThreadCount} C[{i},{j}]");
            }
        }
    }

    /// <summary>
    /// Predicts <paramref name="batch"/> random examples through <paramref name="model"/>'s prediction copy (its
    /// formats and fused kernels) and compares the logits with <paramref name="network"/>'s layers evaluated in double.
    /// The tolerance scales with each logit's magnitude bound: the same forward pass on |w| and |x|.
    /// </summary>
    public static void CheckPrediction(Checker check, NeuralNetworkModel model, SequentialNetwork network, WorkerPool pool, Random random, int batch, string what)
    {
        SequentialNetwork predicting = model.PredictionNetwork(pool);
        predicting.EnsureCapacity(batch);
        float[] x = Values(batch * network.InputSize, random);
        x.CopyTo(predicting.Input, 0);
        float[] logits = predicting.Forward(batch, training: false);
        for (int e = 0; e < batch; e++)
        {
            double[] value = [.. x.AsSpan(e * network.InputSize, network.InputSize).ToArray().Select(v => (double)v)];
            double[] bound = [.. value.Select(Math.Abs)];
            foreach (Layer layer in network.Layers)
                (value, bound) = Forward(layer, value, bound);
            for (int o = 0; o < value.Length; o++)
                check.Compare(logits[e * value.Length + o], value[o], bound[o], $"{what} example {e} logit {o}");
        }
    }

    private static (double[] Value, double[] Bound) Forward(Layer layer, double[] x, double[] bound) => layer switch
    {
        DenseLayer d => Dense(d, x, bound),
        Conv2dLayer c => Conv(c, x, bound),
        ActivationLayer { Activation: ActivationKind.ReLU } => ([.. x.Select(v => Math.Max(v, 0))], bound),
        Pool2dLayer { Pooling: PoolingKind.Max } p => MaxPool(p, x, bound),
        FlattenLayer => (x, bound),
        BatchNormLayer n => BatchNorm(n, x, bound),
        _ => throw new NotSupportedException($"No reference for layer '{layer.Name}' ({layer.GetType().Name})."),
    };

    private static (double[], double[]) Dense(DenseLayer layer, double[] x, double[] bound)
    {
        float[] w = layer.Weight.Value;
        var y = new double[layer.Outputs];
        var b = new double[layer.Outputs];
        for (int o = 0; o < layer.Outputs; o++)
        {
            double sum = layer.Bias?.Value[o] ?? 0, magnitude = Math.Abs(sum);
            for (int i = 0; i < layer.Inputs; i++)
            {
                sum += w[o * layer.Inputs + i] * x[i];
                magnitude += Math.Abs(w[o * layer.Inputs + i]) * bound[i];
            }

            (y[o], b[o]) = (sum, magnitude);
        }

        return (y, b);
    }

    /// <summary>Channels-last convolution, weight [out, kh, kw, in], zero padding.</summary>
    private static (double[], double[]) Conv(Conv2dLayer layer, double[] x, double[] bound)
    {
        (int h, int w, int c) = (layer.InputShape[0], layer.InputShape[1], layer.InputShape[2]);
        (int oh, int ow, int oc) = (layer.OutputShape[0], layer.OutputShape[1], layer.OutputShape[2]);
        int k = layer.KernelSize, s = layer.Stride, pad = layer.Padding;
        float[] wt = layer.Weight.Value;
        var y = new double[oh * ow * oc];
        var b = new double[y.Length];
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        for (int o = 0; o < oc; o++)
        {
            double sum = layer.Bias?.Value[o] ?? 0, magnitude = Math.Abs(sum);
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                int iy = oy * s + ky - pad, ix = ox * s + kx - pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                    continue;
                for (int ci = 0; ci < c; ci++)
                {
                    double weight = wt[((o * k + ky) * k + kx) * c + ci];
                    int at = (iy * w + ix) * c + ci;
                    sum += weight * x[at];
                    magnitude += Math.Abs(weight) * bound[at];
                }
            }

            int to = (oy * ow + ox) * oc + o;
            (y[to], b[to]) = (sum, magnitude);
        }

        return (y, b);
    }

    /// <summary>Inference batch norm over the last dimension: (x − mean) / √(var + ε) · γ + β; the bound scales by |γ| / √(var + ε) plus |β| and |mean|'s share.</summary>
    private static (double[], double[]) BatchNorm(BatchNormLayer layer, double[] x, double[] bound)
    {
        int c = layer.Channels;
        var y = new double[x.Length];
        var b = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int ch = i % c;
            double scale = layer.Gamma.Value[ch] / Math.Sqrt(layer.RunningVariance[ch] + (double)layer.Epsilon);
            y[i] = (x[i] - layer.RunningMean[ch]) * scale + layer.Beta.Value[ch];
            b[i] = (bound[i] + Math.Abs(layer.RunningMean[ch])) * Math.Abs(scale) + Math.Abs(layer.Beta.Value[ch]);
        }

        return (y, b);
    }

    private static (double[], double[]) MaxPool(Pool2dLayer layer, double[] x, double[] bound)
    {
        (int w, int c) = (layer.InputShape[1], layer.InputShape[2]);
        (int oh, int ow) = (layer.OutputShape[0], layer.OutputShape[1]);
        int k = layer.KernelSize, s = layer.Stride;
        var y = new double[oh * ow * c];
        var b = new double[y.Length];
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        for (int ci = 0; ci < c; ci++)
        {
            double best = double.NegativeInfinity, magnitude = 0;
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                int at = ((oy * s + ky) * w + ox * s + kx) * c + ci;
                best = Math.Max(best, x[at]);
                magnitude = Math.Max(magnitude, bound[at]);
            }

            int to = (oy * ow + ox) * c + ci;
            (y[to], b[to]) = (best, magnitude);
        }

        return (y, b);
    }

    private static float[] Values(int length, Random random) =>
        [.. Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1))];
}
