using System.Diagnostics;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>Throughput of <see cref="Gemm.Multiply"/> on the MLP shapes and a large square one.</summary>
internal static class GemmBench
{
    /// <summary>Shapes as m x k x n (op(A) m x k, op(B) k x n); NT: B is stored n x k (C = X * W^T).</summary>
    private static readonly (string Name, int M, int K, int N, bool TransB)[] Shapes =
    [
        ("256x784x300", 256, 784, 300, false),
        ("64x784x300", 64, 784, 300, false),
        ("1024x1024x1024", 1024, 1024, 1024, false),
        ("256x784x300 NT", 256, 784, 300, true),
        ("64x784x300 NT", 64, 784, 300, true),
    ];

    /// <summary>
    /// Measures each shape for about <paramref name="secondsPerShape"/> seconds with a pool of
    /// <paramref name="threads"/> threads and returns the median GFLOPS over ten timed batches.
    /// </summary>
    public static IReadOnlyList<(string Shape, double Gflops)> Measure(int threads, double secondsPerShape)
    {
        var results = new List<(string, double)>();
        using var pool = new WorkerPool(threads);
        var random = new Random(42);
        foreach ((string name, int m, int k, int n, bool transB) in Shapes)
        {
            float[] a = Fill(new float[m * k], random);
            float[] b = Fill(new float[k * n], random);
            float[] c = new float[m * n];
            int ldb = transB ? k : n;
            void Run() => Gemm.Multiply(pool, false, transB, m, n, k, 1f, a, k, b, ldb, 0f, c, n);

            // Warm up (JIT tiers, packing buffers, caches) and size a batch to about a tenth of the budget.
            long start = Stopwatch.GetTimestamp();
            int calls = 0;
            while (Stopwatch.GetElapsedTime(start).TotalSeconds < Math.Min(0.5, secondsPerShape / 4) || calls < 3)
            {
                Run();
                calls++;
            }

            double perCall = Stopwatch.GetElapsedTime(start).TotalSeconds / calls;
            int batch = Math.Max(1, (int)(secondsPerShape / 10 / perCall));
            var rates = new double[10];
            for (int r = 0; r < rates.Length; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < batch; i++)
                    Run();
                rates[r] = 2.0 * m * n * k * batch / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9;
            }

            Array.Sort(rates);
            results.Add((name, (rates[4] + rates[5]) / 2));
        }

        return results;
    }

    private static float[] Fill(float[] values, Random random)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }
}
