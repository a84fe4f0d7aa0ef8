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
        ("16x784x300 NT", 16, 784, 300, true),
    ];

    /// <summary>
    /// Measures each shape (or, with <paramref name="pyTorchShapesOnly"/>, the untransposed ones build/bench_pytorch.py
    /// measures too) for about <paramref name="secondsPerShape"/> seconds with a pool of <paramref name="threads"/>
    /// threads and returns the median GFLOPS over ten timed batches.
    /// </summary>
    public static IReadOnlyList<(string Shape, double Gflops)> Measure(int threads, double secondsPerShape, bool pyTorchShapesOnly = false)
    {
        var results = new List<(string, double)>();
        using var pool = new WorkerPool(threads);
        var random = new Random(42);
        foreach ((string name, int m, int k, int n, bool transB) in Shapes.Where(s => !(pyTorchShapesOnly && s.TransB)))
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

    /// <summary>
    /// GFLOPS per second of the calling thread's CPU time, one thread, the best of 11 rounds of about 30 ms: on a
    /// machine shared with other work, time spent descheduled does not count (cache pollution still does). Compare
    /// with OpenBLAS timed the same way (Python's time.thread_time around torch.mm with one thread).
    /// </summary>
    public static IReadOnlyList<(string Shape, double Gflops)> MeasureCpuTime()
    {
        var results = new List<(string, double)>();
        var random = new Random(42);
        foreach ((string name, int m, int k, int n, bool transB) in Shapes)
        {
            float[] a = Fill(new float[m * k], random), b = Fill(new float[k * n], random), c = new float[m * n];
            int ldb = transB ? k : n;
            double best = BestCpuSeconds(() => Gemm.Multiply(WorkerPool.Inline, false, transB, m, n, k, 1f, a, k, b, ldb, 0f, c, n));
            results.Add((name, 2.0 * m * n * k / best / 1e9));
        }

        return results;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern unsafe int ClockGetTime(int clock, long* timespec);

    /// <summary>CLOCK_THREAD_CPUTIME_ID (Linux): the calling thread's CPU time.</summary>
    private static unsafe double ThreadCpuSeconds()
    {
        long* timespec = stackalloc long[2];
        if (ClockGetTime(3, timespec) != 0)
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed.");
        return timespec[0] + timespec[1] * 1e-9;
    }

    /// <summary>
    /// Dense LeNet-300-100 inference (the trained model's Predict at batch 1, batched Score above) against ONNX Runtime on
    /// the exported model at batch 1, 16 and 256, alternating in <paramref name="rounds"/> rounds; prints each round and
    /// the median ratios (ours/ORT speed).
    /// </summary>
    public static void RunLeNetVsOrt(WorkerPool pool, int threads, double seconds, int rounds = 5)
    {
        var (_, layers, shape) = ModelBench.Models.Single(m => m.Name == "lenet");
        var network = new Microsoft.ML.Sparsity.Network.SequentialNetwork(layers(), shape,
            new Microsoft.ML.Sparsity.Network.LayerBuildContext(pool, Microsoft.ML.Sparsity.Network.WeightInitializer.GlorotUniform, 42));
        var model = new Microsoft.ML.Sparsity.Models.NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
        var bench = new ModelBench(pool, seconds);
        int[] batches = [1, 16, 256];
        var ratios = batches.ToDictionary(b => b, _ => new List<double>());
        string folder = Directory.CreateTempSubdirectory("sparsity-lenet-").FullName;
        try
        {
            string file = Path.Combine(folder, "lenet.onnx");
            using (var stream = File.Create(file)) Microsoft.ML.Sparsity.Export.OnnxExporter.Export(network, null, stream, "benchmark");
            Console.WriteLine($"\n| round | batch | ours µs/call | ONNX Runtime µs/call | ours/ORT |\n|---|---|---|---|---|");
            for (int round = 0; round < rounds; round++)
            {
                var ours = batches.ToDictionary(b => b, b => bench.Infer(model, b).MicrosecondsPerCall);
                var ort = OnnxRuntimeBench.Measure(batches.Select(b => new OnnxRuntimeBench.OrtJob("lenet", file, network.InputSize, b)), threads, seconds);
                foreach (int b in batches)
                {
                    double theirs = 1e6 * b / ort[("lenet", b)];
                    ratios[b].Add(theirs / ours[b]);
                    Console.WriteLine($"| {round} | {b} | {ours[b]:F1} | {theirs:F1} | {theirs / ours[b]:F2}× |");
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        Console.WriteLine("\nLeNet dense vs ONNX Runtime, median ratio (ours/ORT speed): " +
            string.Join(", ", batches.Select(b => $"batch {b} {Statistics.Median(ratios[b]):F2}×")));
        RunLeNetCpuTime(network.InputSize, layers, shape);
    }

    /// <summary>
    /// The same comparison on one thread in CPU time (<see cref="MeasureCpuTime"/>'s method): ours through a model on
    /// <see cref="WorkerPool.Inline"/>, ONNX Runtime with one intra-op thread (it then runs on the calling thread).
    /// </summary>
    private static void RunLeNetCpuTime(int features, Func<Microsoft.ML.Sparsity.Network.LayerDefinition[]> layers, int[] shape)
    {
        var network = new Microsoft.ML.Sparsity.Network.SequentialNetwork(layers(), shape,
            new Microsoft.ML.Sparsity.Network.LayerBuildContext(WorkerPool.Inline, Microsoft.ML.Sparsity.Network.WeightInitializer.GlorotUniform, 42));
        var model = new Microsoft.ML.Sparsity.Models.NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
        string folder = Directory.CreateTempSubdirectory("sparsity-lenet-").FullName;
        try
        {
            string file = Path.Combine(folder, "lenet.onnx");
            using (var stream = File.Create(file)) Microsoft.ML.Sparsity.Export.OnnxExporter.Export(network, null, stream, "benchmark");
            using var options = new Microsoft.ML.OnnxRuntime.SessionOptions
            {
                IntraOpNumThreads = 1,
                InterOpNumThreads = 1,
                ExecutionMode = Microsoft.ML.OnnxRuntime.ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(file, options);
            Console.WriteLine("\nOne thread, µs of CPU time per call (best of 11 rounds):\n\n| batch | ours | ONNX Runtime | ours/ORT |\n|---|---|---|---|");
            var random = new Random(42);
            foreach (int batch in new[] { 1, 16, 256 })
            {
                float[] x = Fill(new float[batch * features], random);
                float[] scores = new float[batch * 10];
                int[] predicted = new int[batch];
                using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(x, [batch, features]);
                var outputs = session.OutputNames.Select(name => Microsoft.ML.OnnxRuntime.OrtValue.CreateAllocatedTensorValue(Microsoft.ML.OnnxRuntime.OrtAllocator.DefaultInstance,
                    session.OutputMetadata[name].ElementDataType, [.. session.OutputMetadata[name].Dimensions.Select(d => d < 0 ? batch : (long)d)])).ToArray();
                try
                {
                    using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
                    string[] inputNames = [session.InputNames[0]];
                    Microsoft.ML.OnnxRuntime.OrtValue[] inputs = [input];
                    double ours = BestCpuSeconds(() =>
                    {
                        if (batch == 1)
                            model.Predict(x, scores);
                        else
                            model.Score(x, batch, scores, predicted);
                    });
                    double ort = BestCpuSeconds(() => session.Run(runOptions, inputNames, inputs, session.OutputNames, outputs));
                    Console.WriteLine($"| {batch} | {ours * 1e6:F1} | {ort * 1e6:F1} | {ort / ours:F2}× |");
                }
                finally
                {
                    foreach (var output in outputs) output.Dispose();
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The best of 11 rounds (after one warm-up round) of about 30 ms of thread CPU time: seconds per call.</summary>
    private static double BestCpuSeconds(Action call)
    {
        double best = double.MaxValue;
        for (int round = 0; round < 12; round++)
        {
            int calls = 0;
            double t0 = ThreadCpuSeconds(), elapsed;
            do
            {
                call();
                calls++;
            }
            while ((elapsed = ThreadCpuSeconds() - t0) < 0.03);
            if (round > 0)
                best = Math.Min(best, elapsed / calls);
        }

        return best;
    }

    private static float[] Fill(float[] values, Random random)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }
}
