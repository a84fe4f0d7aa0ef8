using System.Diagnostics;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.PerformanceTests;

internal static unsafe class GemmTune
{
    [System.Runtime.InteropServices.DllImport("libc")] private static extern int clock_gettime(int clock, long* ts);
    private static double ThreadSeconds() { long* ts = stackalloc long[2]; clock_gettime(3, ts); return ts[0] + ts[1] * 1e-9; }

    public static void Run(int threads, int rounds, string[] configs)
    {
        using var pool = new WorkerPool(threads);
        var random = new Random(1);
        (string, int, int, int, bool)[] shapes = [("256x784x300", 256, 784, 300, false), ("1024^3", 1024, 1024, 1024, false), ("16x784x300NT", 16, 784, 300, true), ("256x784x300NT", 256, 784, 300, true)];
        foreach (var (name, m, k, n, tb) in shapes)
        {
            float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
            for (int i = 0; i < a.Length; i++) a[i] = random.NextSingle();
            for (int i = 0; i < b.Length; i++) b[i] = random.NextSingle();
            var best = new double[configs.Length];
            Array.Fill(best, double.MaxValue);
            for (int r = 0; r < rounds; r++)
            {
                for (int ci = 0; ci < configs.Length; ci++)
                {
                    var p = configs[ci].Split(',').Select(int.Parse).ToArray();
                    Gemm.Blocking.TuneAvx2 = new Gemm.Blocking(p[0], p[1], p[2], p[3], p[4]);
                    int calls = 0;
                    double t0 = ThreadSeconds();
                    do { Gemm.Multiply(pool, false, tb, m, n, k, 1f, a, k, b, tb ? k : n, 0f, c, n); calls++; }
                    while (ThreadSeconds() - t0 < 0.03);
                    double per = (ThreadSeconds() - t0) / calls;
                    if (r > 0) best[ci] = Math.Min(best[ci], per);
                }
            }
            Console.WriteLine($"{name}: " + string.Join("  ", configs.Select((cfg, i) => $"[{cfg}] {2.0 * m * n * k / best[i] / 1e9:F1}")));
        }
    }
}
