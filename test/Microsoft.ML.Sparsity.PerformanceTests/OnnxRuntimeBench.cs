using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Export;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// Our engine against ONNX Runtime (Microsoft.ML.OnnxRuntime in this process, CPU) on the same exported models:
/// LeNet-300-100 and the small CNN, dense and with 90% of the weights pruned, at batch 1 and 256.
/// </summary>
internal static class OnnxRuntimeBench
{
    public static void Run(WorkerPool pool, int threads, double seconds)
    {
        Console.WriteLine("\n### Inference: ours against ONNX Runtime on the exported model (samples/s)\n");
        string folder = Directory.CreateTempSubdirectory("sparsity-ort-").FullName;
        try
        {
            var jobs = new List<OrtJob>();
            var ours = new Dictionary<(string, int), double>();
            var bench = new ModelBench(pool, seconds);
            foreach (var (name, layers, shape) in ModelBench.Models)
            foreach (double sparsity in new[] { 0.0, 0.9 })
            {
                string label = sparsity == 0 ? $"{name} dense" : $"{name} 90% sparse";
                var network = new SequentialNetwork(layers(), shape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 42));
                if (sparsity > 0)
                {
                    var options = new PruningOptions { TargetSparsity = sparsity, Schedule = PruningSchedule.AtInitialization() };
                    new PruningPlan(options, network, 1).Prune(0, options.Schedule, null);
                }
                string file = Path.Combine(folder, $"{name}-{sparsity}.onnx");
                using (var stream = File.Create(file)) OnnxExporter.Export(network, null, stream, "benchmark");
                foreach (int batch in new[] { 1, 256 })
                {
                    jobs.Add(new OrtJob(label, file, network.InputSize, batch));
                    ours[(label, batch)] = bench.Infer(network, batch).SamplesPerSecond;
                }
            }
            Console.WriteLine($"ONNX Runtime (Microsoft.ML.OnnxRuntime, in-process) with intra-op threads = {threads}.\n");
            Console.WriteLine("| model | ISA (ours) | batch | ours | ONNX Runtime | ours/ORT |\n|---|---|---|---|---|---|");
            foreach (var ((label, batch), ort) in Measure(jobs, threads, seconds))
            {
                double mine = ours[(label, batch)];
                Console.WriteLine($"| {label} | {VectorIsas.Describe(VectorIsas.Best)} | {batch} | {mine:F0} | {ort:F0} | {mine / ort:F2}× |");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The dense CNN only, ours (the trained model's <c>Predict</c> and batched scoring) against ONNX Runtime at batch 1,
    /// 16 and 256, alternating five times (each round's times, then the medians and the best of each: on a shared machine
    /// the best rounds are the undisturbed ones), then the layers' µs per example on one thread at the batched
    /// scoring's chunk size (a layer fused into the one before shows 0): a quick loop for kernel work. ONNX Runtime
    /// (MLAS) picks its kernels from CPUID, not from the .NET switches: <c>build/benchmark.sh</c> runs the avx2 and
    /// vector128 tiers against a copy of its library that stops at the same tier (<c>build/ort_tier.py</c>).
    /// </summary>
    public static void RunDenseCnn(WorkerPool pool, int threads, double seconds)
    {
        const int Rounds = 5;
        var (_, layers, shape) = ModelBench.Models.Single(m => m.Name == "cnn");
        var network = new SequentialNetwork(layers(), shape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 42));
        var model = new Models.NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
        var bench = new ModelBench(pool, seconds);
        int[] batches = [1, 16, 256];
        var rounds = new List<(int Batch, double Ours, double Ort)>();
        string folder = Directory.CreateTempSubdirectory("sparsity-cnn-").FullName;
        try
        {
            string file = Path.Combine(folder, "cnn.onnx");
            using (var stream = File.Create(file)) OnnxExporter.Export(network, null, stream, "benchmark");
            for (int round = 0; round < Rounds; round++)
            {
                var ours = batches.ToDictionary(b => b, b => bench.Infer(model, b).MicrosecondsPerCall);
                var ort = Measure(batches.Select(b => new OrtJob("cnn", file, network.InputSize, b)), threads, seconds);
                rounds.AddRange(batches.Select(b => (b, ours[b], 1e6 * b / ort[("cnn", b)])));
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        Console.WriteLine($"\n| batch | ours µs/call ({Rounds} rounds) | ONNX Runtime µs/call | ours/ORT speed per round | median ours | median ORT | median ratio | best ours | best ORT | best/best |\n|---|---|---|---|---|---|---|---|---|---|");
        foreach (int batch in batches)
        {
            var r = rounds.Where(x => x.Batch == batch).ToArray();
            if (r.Length == 0) continue;
            Console.WriteLine($"| {batch} | {string.Join(", ", r.Select(x => x.Ours.ToString("F1")))} | {string.Join(", ", r.Select(x => x.Ort.ToString("F1")))} | " +
                $"{string.Join(", ", r.Select(x => (x.Ort / x.Ours).ToString("F2")))} | {Statistics.Median(r.Select(x => x.Ours)):F1} | {Statistics.Median(r.Select(x => x.Ort)):F1} | {Statistics.Median(r.Select(x => x.Ort / x.Ours)):F2}× | " +
                $"{r.Min(x => x.Ours):F1} | {r.Min(x => x.Ort):F1} | {r.Min(x => x.Ort) / r.Min(x => x.Ours):F2}× |");
        }

        int chunk = model.BatchChunk;
        var predicting = model.PredictionNetwork(WorkerPool.Inline);
        double[] layerUs = ModelBench.LayerMicroseconds(predicting, chunk, 200);
        Console.WriteLine($"\nOne thread, batch {chunk} (a scoring chunk), µs per example: " +
            string.Join(", ", predicting.Layers.Select((l, i) => $"{l.Name} {layerUs[i] / chunk:F1}")) + $"; total {layerUs.Sum() / chunk:F1}");
        PrintDirectTiers(predicting, chunk);
    }

    /// <summary>
    /// The prediction network's convolutions (with their fused ReLU and pooling) on one thread for each vector tier
    /// this process runs (the direct kernel; Winograd's on AVX2 where it applies), µs per example at batch
    /// <paramref name="batch"/>: the tiers alternate in nine rounds of 20 calls (the first warms up) and the table
    /// gives the medians, so the tiers of one CPU compare in one run whatever else the machine does.
    /// </summary>
    private static void PrintDirectTiers(SequentialNetwork predicting, int batch)
    {
        const int Rounds = 9, Calls = 20;
        VectorIsa[] tiers = [.. VectorIsas.Available.Where(isa => isa >= VectorIsa.Vector128)];
        int[] convs = [.. Enumerable.Range(0, predicting.Layers.Count).Where(i => predicting.Layers[i] is Conv2dLayer)];
        var random = new Random(3);
        var samples = new List<double>[convs.Length, tiers.Length];
        for (int round = 0; round < Rounds; round++)
            for (int c = 0; c < convs.Length; c++)
            {
                var conv = (Conv2dLayer)predicting.Layers[convs[c]];
                var x = Enumerable.Range(0, batch * conv.InputSize).Select(_ => random.NextSingle()).ToArray();
                var y = new float[batch * predicting.Layers[convs[c] + predicting.FusedAfter(convs[c])].OutputSize];
                for (int t = 0; t < tiers.Length; t++)
                {
                    conv.Isa = tiers[t];
                    conv.Forward(x, y, batch, training: false);
                    long start = Stopwatch.GetTimestamp();
                    for (int call = 0; call < Calls; call++)
                        conv.Forward(x, y, batch, training: false);
                    if (round > 0)
                        (samples[c, t] ??= []).Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds / (Calls * batch));
                }
                conv.Isa = VectorIsas.Best;
            }

        Console.WriteLine($"\nThe convolutions per vector tier (the direct kernel; on AVX2, Winograd's for 3×3 stride-1 layers at batches of {WinogradConvolution.MinBatch} or more), one thread, batch {batch}, µs per example (medians of {Rounds - 1} alternating rounds; /proc/loadavg {File.ReadAllText("/proc/loadavg").Trim()}):\n");
        Console.WriteLine($"| layer | {string.Join(" | ", tiers.Select(VectorIsas.Describe))} |\n|---|{string.Concat(tiers.Select(_ => "---|"))}");
        for (int c = 0; c < convs.Length; c++)
            Console.WriteLine($"| {predicting.Layers[convs[c]].Name} | {string.Join(" | ", Enumerable.Range(0, tiers.Length).Select(t => Statistics.Median(samples[c, t]).ToString("F1")))} |");
    }

    /// <summary>One exported model to time: its table label, file, features per example and batch size.</summary>
    public sealed record OrtJob(string Name, string Model, int Features, int Batch);

    /// <summary>
    /// Times each job in ONNX Runtime, one after the other: a session with <paramref name="threads"/> intra-op threads,
    /// sequential execution and every graph optimisation, random input of shape [batch, features] and output buffers
    /// allocated once, called for about <paramref name="seconds"/> after a warm-up. Returns samples/s by (name, batch).
    /// </summary>
    public static Dictionary<(string Name, int Batch), double> Measure(IEnumerable<OrtJob> jobs, int threads, double seconds)
    {
        var results = new Dictionary<(string, int), double>();
        var random = new Random(42);
        foreach (var job in jobs)
        {
            using var options = new SessionOptions
            {
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            using var session = new InferenceSession(job.Model, options);
            var data = new float[job.Batch * job.Features];
            for (int i = 0; i < data.Length; i++) data[i] = random.NextSingle();
            using var input = OrtValue.CreateTensorValueFromMemory(data, [job.Batch, job.Features]);
            var outputs = session.OutputNames.Select(name => OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance,
                session.OutputMetadata[name].ElementDataType, [.. session.OutputMetadata[name].Dimensions.Select(d => d < 0 ? job.Batch : (long)d)])).ToArray();
            try
            {
                using var runOptions = new RunOptions();
                string[] inputNames = [session.InputNames[0]];
                OrtValue[] inputs = [input];
                void Call() => session.Run(runOptions, inputNames, inputs, session.OutputNames, outputs);

                var warmUntil = Stopwatch.GetTimestamp() + (long)(Math.Min(0.5, seconds / 4) * Stopwatch.Frequency);
                while (Stopwatch.GetTimestamp() < warmUntil) Call();
                long calls = 0;
                var clock = Stopwatch.StartNew();
                while (clock.Elapsed.TotalSeconds < seconds)
                {
                    Call();
                    calls++;
                }
                results[(job.Name, job.Batch)] = calls * job.Batch / clock.Elapsed.TotalSeconds;
            }
            finally
            {
                foreach (var output in outputs) output.Dispose();
            }
        }
        return results;
    }
}
