using System.Diagnostics;
using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// The sparse weight formats' kernels (<see cref="IWeightMatrix.MultiplyTransposed"/>: N:M compressed, CSR, sliced
/// ELLPACK) against the dense engine path (<see cref="Gemm.Multiply"/> with transB, GEMV at batch 1) on the
/// LeNet-300-100 layer shapes and the whole LeNet forward pass (three layers and two ReLUs, no biases), in one run.
/// </summary>
internal static class KernelBench
{
    private static readonly (string Name, (int Rows, int Cols)[] Layers)[] Shapes =
    [
        ("300×784", [(300, 784)]),
        ("100×300", [(100, 300)]),
        ("LeNet 784-300-100-10", [(300, 784), (100, 300), (10, 100)]),
    ];

    private sealed record Case(string Name, Func<float[], int, int, IWeightMatrix> Build, Func<float[], int, int, Random, float[]> Prune, double? Batch1Target);

    private static readonly Case[] Cases =
    [
        new("2:4 N:M", (w, r, c) => NMMatrix.FromDense(w, r, c, 2, 4), (w, r, c, _) => PruneNM(w, 2, 4), 1.5),
        new("1:4 N:M", (w, r, c) => NMMatrix.FromDense(w, r, c, 1, 4), (w, r, c, _) => PruneNM(w, 1, 4), 2.0),
        new("1:8 N:M", (w, r, c) => NMMatrix.FromDense(w, r, c, 1, 8), (w, r, c, _) => PruneNM(w, 1, 8), null),
        .. new[] { 0.5, 0.8, 0.9, 0.95, 0.98 }.SelectMany(s => new Case[]
        {
            new($"{s:P0} CSR", (w, r, c) => CsrMatrix.FromDense(w, r, c), (w, r, c, random) => PruneRandom(w, s, random), null),
            new($"{s:P0} sliced ELL", (w, r, c) => SlicedEllMatrix.FromDense(w, r, c), (w, r, c, random) => PruneRandom(w, s, random), null),
        }),
    ];

    private static readonly int[] Batches = [1, 16, 256];

    /// <summary>
    /// Prints the table. Each (shape, batch) case gets about <paramref name="seconds"/>: five alternating rounds
    /// over dense and the formats, of which the median is reported.
    /// </summary>
    public static void Run(WorkerPool pool, double seconds)
    {
        Console.WriteLine($"\n### Sparse weight formats against dense GEMM, same run\n\n" +
            $"Kernels: {VectorIsas.Describe(VectorIsas.Best)}, {pool.ThreadCount} threads; median of 5 alternating rounds. " +
            "Unstructured masks are random at the given sparsity.\n\n" +
            "| shape | format | ISA | batch | µs per call | speed-up vs dense | bytes vs dense | batch-1 target | |\n" +
            "|---|---|---|---|---|---|---|---|---|");
        var random = new Random(42);
        foreach ((string name, (int Rows, int Cols)[] layers) in Shapes)
        {
            float[][] dense = layers.Select(l => Fill(new float[l.Rows * l.Cols], random)).ToArray();
            Case[] cases = Cases.Where(p => !p.Name.Contains("1:8") || layers.All(l => l.Cols % 8 == 0)).ToArray();
            IWeightMatrix[][] sparse = cases.Select(p => layers.Select(l =>
                p.Build(p.Prune(Fill(new float[l.Rows * l.Cols], random), l.Rows, l.Cols, random), l.Rows, l.Cols))
                .ToArray()).ToArray();
            long denseBytes = layers.Sum(l => (long)l.Rows * l.Cols * sizeof(float));

            foreach (int batch in Batches)
            {
                float[] input = Fill(new float[batch * layers[0].Cols], random);
                float[][] outputs = layers.Select(l => new float[batch * l.Rows]).ToArray();
                var calls = new List<Action>
                {
                    () => Forward(layers, input, outputs, batch, (i, x, y) =>
                        Gemm.Multiply(pool, false, true, batch, layers[i].Rows, layers[i].Cols, 1f, x, layers[i].Cols,
                            dense[i], layers[i].Cols, 0f, y, layers[i].Rows)),
                };
                foreach (IWeightMatrix[] matrices in sparse)
                    calls.Add(() => Forward(layers, input, outputs, batch, (i, x, y) => matrices[i].MultiplyTransposed(pool, x, batch, y)));

                double[] us = Measure(calls, seconds);
                Console.WriteLine($"| {name} | dense | {VectorIsas.Describe(VectorIsas.Best)} | {batch} | {us[0]:F2} | 1.00× | 1.000 | | |");
                for (int p = 0; p < cases.Length; p++)
                {
                    double speedUp = us[0] / us[p + 1];
                    double bytes = (double)sparse[p].Sum(s => s.StorageBytes) / denseBytes;
                    string target = batch == 1 && cases[p].Batch1Target is double t
                        ? $"≥ {t:F1}× | {(speedUp >= t ? "met" : "missed")}"
                        : " | ";
                    Console.WriteLine($"| {name} | {cases[p].Name} | {VectorIsas.Describe(sparse[p][0].KernelIsa)} | {batch} | {us[p + 1]:F2} | {speedUp:F2}× | {bytes:F3} | {target} |");
                }
            }
        }
    }

    /// <summary>Layer i maps outputs[i − 1] (input for i = 0) to outputs[i]; a ReLU follows every layer but the last.</summary>
    private static void Forward((int Rows, int Cols)[] layers, float[] input, float[][] outputs, int batch,
        Action<int, float[], float[]> layer)
    {
        for (int i = 0; i < layers.Length; i++)
        {
            layer(i, i == 0 ? input : outputs[i - 1], outputs[i]);
            if (i < layers.Length - 1)
            {
                Span<float> y = outputs[i].AsSpan(0, batch * layers[i].Rows);
                TensorPrimitives.Max(y, 0f, y);
            }
        }
    }

    /// <summary>Median µs per call of each action over five alternating rounds, after a warm-up.</summary>
    private static double[] Measure(List<Action> calls, double seconds)
    {
        const int Rounds = 5;
        var perCall = new double[calls.Count];
        var repeats = new int[calls.Count];
        for (int c = 0; c < calls.Count; c++)
        {
            // Warm up (JIT tiers, scratch buffers) and size one round to its share of the budget.
            long start = Stopwatch.GetTimestamp();
            int n = 0;
            while (n < 20 || Stopwatch.GetElapsedTime(start).TotalSeconds < Math.Min(0.2, seconds / 10))
            {
                calls[c]();
                n++;
            }

            double warm = Stopwatch.GetElapsedTime(start).TotalSeconds / n;
            repeats[c] = Math.Max(1, (int)(seconds / 2 / calls.Count / Rounds / warm));
        }

        var samples = new double[calls.Count, Rounds];
        for (int round = 0; round < Rounds; round++)
        {
            for (int c = 0; c < calls.Count; c++)
            {
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < repeats[c]; i++)
                    calls[c]();
                samples[c, round] = Stopwatch.GetElapsedTime(t0).TotalSeconds * 1e6 / repeats[c];
            }
        }

        for (int c = 0; c < calls.Count; c++)
            perCall[c] = Statistics.Median(Enumerable.Range(0, Rounds).Select(r => samples[c, r]));
        return perCall;
    }

    /// <summary>Zeroes a random <paramref name="sparsity"/> fraction of the values.</summary>
    private static float[] PruneRandom(float[] w, double sparsity, Random random)
    {
        int[] order = Enumerable.Range(0, w.Length).OrderBy(_ => random.Next()).ToArray();
        for (int i = 0; i < (int)Math.Round(sparsity * w.Length); i++)
            w[order[i]] = 0f;
        return w;
    }

    /// <summary>Keeps the n largest magnitudes of every m consecutive values of each row.</summary>
    private static float[] PruneNM(float[] w, int n, int m)
    {
        var order = new int[m];
        for (int start = 0; start < w.Length; start += m)
        {
            for (int j = 0; j < m; j++)
                order[j] = j;
            Array.Sort(order, (a, b) => Math.Abs(w[start + b]).CompareTo(Math.Abs(w[start + a])));
            for (int j = n; j < m; j++)
                w[start + order[j]] = 0f;
        }

        return w;
    }

    private static float[] Fill(float[] values, Random random)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }
}
