using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Export;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// Our engine against ONNX Runtime (onnxruntime-node, via test/onnxruntime/bench.mjs) on the same exported models:
/// LeNet-300-100 and the small CNN, dense and with 90% of the weights pruned, at batch 1 and 256.
/// </summary>
internal static class OnnxRuntimeBench
{
    public static void Run(WorkerPool pool, int threads, double seconds)
    {
        Console.WriteLine("\n### Inference: ours against ONNX Runtime on the exported model (samples/s)\n");
        if (!Installed)
        {
            Console.WriteLine("ONNX Runtime is not installed: run build/setup.sh.");
            return;
        }
        string folder = Directory.CreateTempSubdirectory("sparsity-ort-").FullName;
        try
        {
            var jobs = new List<object>();
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
                    jobs.Add(new { name = label, model = file, features = network.InputSize, batch });
                    ours[(label, batch)] = bench.Infer(network, batch).SamplesPerSecond;
                }
            }
            Console.WriteLine($"ONNX Runtime (onnxruntime-node) with intra-op threads = {threads}.\n");
            Console.WriteLine("| model | batch | ours | ONNX Runtime | ours/ORT |\n|---|---|---|---|---|");
            foreach (var ((label, batch), ort) in RunNode(folder, jobs, threads, seconds))
            {
                double mine = ours[(label, batch)];
                Console.WriteLine($"| {label} | {batch} | {mine:F0} | {ort:F0} | {mine / ort:F2}× |");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The dense CNN only, ours (the trained model's <c>Predict</c> and batched scoring) against ONNX Runtime at batch 1
    /// and 256, alternating five times (each round's times, then the medians and the best of each: on a shared machine
    /// the best rounds are the undisturbed ones), then the layers' µs per example on one thread at the batched
    /// scoring's chunk size (a layer fused into the one before shows 0): a quick loop for kernel work.
    /// </summary>
    public static void RunDenseCnn(WorkerPool pool, int threads, double seconds)
    {
        const int Rounds = 5;
        var (_, layers, shape) = ModelBench.Models.Single(m => m.Name == "cnn");
        var network = new SequentialNetwork(layers(), shape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 42));
        var model = new Models.NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
        var bench = new ModelBench(pool, seconds);
        int[] batches = [1, 256];
        var rounds = new List<(int Batch, double Ours, double Ort)>();
        string folder = Directory.CreateTempSubdirectory("sparsity-cnn-").FullName;
        try
        {
            string file = Path.Combine(folder, "cnn.onnx");
            using (var stream = File.Create(file)) OnnxExporter.Export(network, null, stream, "benchmark");
            for (int round = 0; round < Rounds && Installed; round++)
            {
                var ours = batches.ToDictionary(b => b, b => bench.Infer(model, b).MicrosecondsPerCall);
                var ort = RunNode(folder, batches.Select(b => new { name = "cnn", model = file, features = network.InputSize, batch = b }), threads, seconds);
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
            static double Median(IEnumerable<double> v) => v.Order().ElementAt(v.Count() / 2);
            Console.WriteLine($"| {batch} | {string.Join(", ", r.Select(x => x.Ours.ToString("F1")))} | {string.Join(", ", r.Select(x => x.Ort.ToString("F1")))} | " +
                $"{string.Join(", ", r.Select(x => (x.Ort / x.Ours).ToString("F2")))} | {Median(r.Select(x => x.Ours)):F1} | {Median(r.Select(x => x.Ort)):F1} | {Median(r.Select(x => x.Ort / x.Ours)):F2}× | " +
                $"{r.Min(x => x.Ours):F1} | {r.Min(x => x.Ort):F1} | {r.Min(x => x.Ort) / r.Min(x => x.Ours):F2}× |");
        }

        int chunk = model.BatchChunk;
        var predicting = model.PredictionNetwork(WorkerPool.Inline);
        double[] layerUs = ModelBench.LayerMicroseconds(predicting, chunk, 200);
        Console.WriteLine($"\nOne thread, batch {chunk} (a scoring chunk), µs per example: " +
            string.Join(", ", predicting.Layers.Select((l, i) => $"{l.Name} {layerUs[i] / chunk:F1}")) + $"; total {layerUs.Sum() / chunk:F1}");
    }

    /// <summary>Whether test/onnxruntime has its node_modules (build/setup.sh installs them).</summary>
    public static bool Installed => Directory.Exists(Path.Combine(RepositoryRoot(), "test", "onnxruntime", "node_modules", "onnxruntime-node"));

    /// <summary>
    /// Runs bench.mjs on jobs { name, model, features, batch } (model paths relative to <paramref name="folder"/> or
    /// absolute); returns samples/s by (name, batch).
    /// </summary>
    public static Dictionary<(string Name, int Batch), double> RunNode(string folder, IEnumerable<object> jobs, int threads, double seconds)
    {
        string jobsFile = Path.Combine(folder, "jobs.json");
        File.WriteAllText(jobsFile, JsonSerializer.Serialize(jobs));
        var start = new ProcessStartInfo("node", [Path.Combine(RepositoryRoot(), "test", "onnxruntime", "bench.mjs"), jobsFile,
            threads.ToString(System.Globalization.CultureInfo.InvariantCulture), seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
        };
        using var node = Process.Start(start)!;
        string output = node.StandardOutput.ReadToEnd();
        node.WaitForExit();
        if (node.ExitCode != 0) throw new InvalidOperationException($"node bench.mjs failed with exit code {node.ExitCode}.");
        return JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.EnumerateArray().ToDictionary(
            r => (r.GetProperty("name").GetString()!, r.GetProperty("batch").GetInt32()), r => r.GetProperty("samplesPerSecond").GetDouble());
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Sparsity.sln"))) return dir.FullName;
        throw new InvalidOperationException("Run the benchmarks from inside the repository (Sparsity.sln not found).");
    }
}
