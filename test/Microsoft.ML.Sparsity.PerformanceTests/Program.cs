// Benchmarks of the engine, printed as Markdown tables with our/PyTorch ratios when the PyTorch reference numbers
// are given (build/benchmark.sh measures both in one run).
// Usage: dotnet run -c Release --project test/Microsoft.ML.Sparsity.PerformanceTests -- [--threads 2] [--seconds 3] [--pytorch-json FILE] [--only kernels|sparse|channels|dct|layers|cnn|gemm|calibration|mlnet|pipeline|contention]
// --only dst [--rounds 3]: LeNet at 90% trained with a static random mask, SET and RigL in alternating rounds (the cost of moving the mask).
// --only nested: each level of nested LeNet and CNN models against separately pruned ones, batch 1 and 256, and the files' bytes.
// --only reroute [--plot FILE.png]: the nested CNN served at rising request rates, a rerouting engine against a fixed-level one.
// --only cluster [--rounds 3] [--cluster localhost|redis://HOST:PORT]: a trial trained here and on a cluster's worker (a silo in
// this process), the overhead per trial, the model's transfer and the journal's write (build/cluster-bench.sh: localhost and Redis).
// --only contention [--rounds 3] [--pytorch-bench build/bench_pytorch.py]: LeNet training beside 0, 1 and 2 CPU-bound
// processes (build/bench-contention.sh runs it with PyTorch).
// --only runs one part (calibration: the format calibration's cost and choices): the sparse weight formats' kernels, the sparse-model table, or the frequency-domain
// transform's throughput (one thread), or the dense CNN against ONNX Runtime with its layers' times (cnn), or ML.NET's
// own multiclass trainers trained and measured on Fashion-MNIST (mlnet: a few minutes; not part of the full run), or the GEMM
// shapes' GFLOPS with dense LeNet against ONNX Runtime at batch 1, 16 and 256 (gemm), or the GEMM shapes PyTorch measures, one
// line (gemm-shapes: build/bench-gemm-alternating.sh alternates it with PyTorch).
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.PerformanceTests;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int threads = 2;
double seconds = 3;
JsonElement? torch = null;
string only = "all";
int rounds = 3;
string? pytorchBench = null;
string? plot = null;
string cluster = "localhost";
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--pytorch-json": torch = JsonDocument.Parse(File.ReadAllText(args[++i])).RootElement; break;
        case "--only": only = args[++i]; break;
        case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--pytorch-bench": pytorchBench = args[++i]; break;
        case "--plot": plot = args[++i]; break;
        case "--cluster": cluster = args[++i]; break;
        default: throw new ArgumentException($"Unknown argument '{args[i]}'. Use --threads N, --seconds S, --pytorch-json FILE, --only kernels|sparse|channels|dct|layers|cnn|gemm|gemm-shapes|calibration|mlnet|pipeline|contention|dst|nested|reroute|cluster, --rounds N, --pytorch-bench FILE, --plot FILE.png, --cluster localhost|redis://HOST:PORT.");
    }
}

if (only == "contention")
{
    ContentionBench.Run(seconds, rounds, pytorchBench);
    return;
}

if (only == "pipeline")
{
    var (pipelineSeconds, engineSeconds, readSeconds) = MLNetBench.TrainingOverhead(rounds: 3);
    Console.WriteLine($"LeNet-300-100 on Fashion-MNIST, 20 epochs, {Environment.ProcessorCount} threads, medians of 3 alternating rounds (/proc/loadavg {File.ReadAllText("/proc/loadavg").Trim()}):");
    Console.WriteLine($"| through the IDataView pipeline (Fit) | engine alone | ratio (target ≤ 1.05×) | the cursor pass alone |\n|---|---|---|---|");
    Console.WriteLine($"| {pipelineSeconds:F2} s | {engineSeconds:F2} s | {pipelineSeconds / engineSeconds:F3}× | {readSeconds * 1000:F0} ms |");
    return;
}

if (only == "nested")
{
    NestedBench.Run(WorkerPool.Shared(threads), seconds);
    return;
}

if (only == "reroute")
{
    NestedBench.RunLoad(seconds, plot);
    return;
}

if (only == "cluster")
{
    ClusterBench.Run(rounds, cluster);
    return;
}

if (only == "dst")
{
    DynamicSparseBench.Run(threads, rounds, epochs: 5);
    return;
}

if (only == "mlnet")
{
    MlNetTrainerBench.Run();
    return;
}

if (only == "dct")
{
    Console.WriteLine($"Microsoft.ML.Sparsity frequency-domain transform, .NET {Environment.Version}, {Environment.ProcessorCount} processors");
    DctBench.Run(seconds);
    return;
}

using var pool = new WorkerPool(threads);
Console.WriteLine($"Microsoft.ML.Sparsity engine: {threads} threads, vector tier {VectorIsas.Describe(VectorIsas.Best)}, .NET {Environment.Version}, {Environment.ProcessorCount} processors; " +
    $"ONNX Runtime kernels: {Environment.GetEnvironmentVariable("SPARSITY_BENCH_ORT_KERNELS") ?? "MLAS as CPUID allows, whatever the .NET switches (build/benchmark.sh runs each tier's own)"}");
if (torch is JsonElement t)
    Console.WriteLine($"PyTorch {t.GetProperty("torch_version")}: {t.GetProperty("threads")} threads, BLAS {t.GetProperty("blas")}");

double? Torch(string group, string key) =>
    torch is JsonElement t && t.TryGetProperty(group, out var g) && g.TryGetProperty(key, out var v) ? v.GetDouble() : null;
string Ratio(double ours, double? theirs, double target) =>
    theirs is double x ? $"{ours / x:F2}× | {target:F1}× | {(ours / x >= target ? "met" : "missed")}" : "– | – | –";

if (only == "kernels")
{
    KernelBench.Run(pool, Math.Min(seconds, 1));
    return;
}

if (only == "layers")
{
    // Where one example's time goes, layer by layer, on one thread (as single-example prediction runs): dense, and
    // pruned to 90% (ERK) with the formats the model picks.
    foreach (var (name, layers, shape) in ModelBench.Models)
    foreach (double sparsity in new[] { 0.0, 0.9 })
    foreach (int batch in new[] { 1, 16 })
    {
        var network = new Microsoft.ML.Sparsity.Network.SequentialNetwork(layers(), shape,
            new Microsoft.ML.Sparsity.Network.LayerBuildContext(WorkerPool.Inline, Microsoft.ML.Sparsity.Network.WeightInitializer.GlorotUniform, 42));
        if (sparsity > 0)
        {
            var options = new Microsoft.ML.Sparsity.Pruning.PruningOptions { TargetSparsity = sparsity, Allocation = Microsoft.ML.Sparsity.Masks.LayerAllocation.ErdosRenyiKernel,
                Schedule = Microsoft.ML.Sparsity.Pruning.PruningSchedule.AtInitialization() };
            new Microsoft.ML.Sparsity.Pruning.PruningPlan(options, network, 1).Prune(0, options.Schedule, null);
        }
        var model = new Microsoft.ML.Sparsity.Models.NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
        var predicting = model.PredictionNetwork(WorkerPool.Inline);
        double[] us = ModelBench.LayerMicroseconds(predicting, batch, 2000 / batch);
        Console.WriteLine($"{name} {sparsity:P0} batch {batch}: " + string.Join(", ", predicting.Layers.Select((l, i) => $"{l.Name} {us[i]:F1}")) +
            $"; total {us.Sum():F1} µs; formats {string.Join(", ", model.WeightFormats.Select(f => $"{f.LayerName} {f.Density:P0} {f.SingleExample}/{f.Batched}"))}");
    }

    // The CNNs dense and with half their multiply-adds removed by channels, compacted (issue 18's case).
    foreach (var (name, layers) in ChannelBench.Models)
    foreach (double removed in new[] { 0.0, 0.5 })
    foreach (int batch in new[] { 1, 16 })
    {
        var model = ChannelBench.Model(WorkerPool.Inline, layers, removed);
        if (removed > 0) model = Microsoft.ML.SparsityCatalogExtensions.Sparsity(new Microsoft.ML.MLContext(1)).Compact(model);
        var predicting = model.PredictionNetwork(WorkerPool.Inline);
        double[] us = ModelBench.LayerMicroseconds(predicting, batch, 2000 / batch);
        Console.WriteLine($"{name}, {removed:P0} of multiply-adds removed{(removed > 0 ? " (compact)" : "")}, batch {batch}: " +
            string.Join(", ", predicting.Layers.Select((l, i) => $"{l.Name} {us[i]:F1}")) + $"; total {us.Sum():F1} µs; formats " +
            string.Join(", ", model.WeightFormats.Select(f => $"{f.LayerName} {f.Density:P0} {f.SingleExample}/{f.Batched}")));
    }

    return;
}

if (only == "gemm-shapes")
{
    // One line for build/bench-gemm-alternating.sh: GFLOPS (wall clock, the pool's threads) of the shapes PyTorch measures.
    Console.WriteLine("ours " + string.Join(" ", GemmBench.Measure(threads, seconds, pyTorchShapesOnly: true).Select(r => $"{r.Shape}={r.Gflops:F2}")));
    return;
}

if (only == "gemm")
{
    Console.WriteLine($"\n| shape m×k×n | ISA | ours GFLOPS ({threads} threads, wall clock) | PyTorch | ours/PyTorch | ours GFLOPS (1 thread, per CPU second) |\n|---|---|---|---|---|---|");
    var cpu = GemmBench.MeasureCpuTime().ToDictionary(r => r.Shape, r => r.Gflops);
    foreach (var (shape, gflops) in GemmBench.Measure(threads, seconds))
    {
        double? theirs = Torch("gemm", shape);
        Console.WriteLine($"| {shape} | {Gemm.Isa} | {gflops:F1} | {theirs?.ToString("F1") ?? "–"} | {(theirs is double x ? $"{gflops / x:F2}×" : "–")} | {cpu[shape]:F1} |");
    }
    GemmBench.RunLeNetVsOrt(pool, threads, seconds);
    return;
}

if (only == "calibration")
{
    CalibrationBench.Run(pool, Math.Min(seconds, 0.3));
    return;
}

if (only == "cnn")
{
    OnnxRuntimeBench.RunDenseCnn(pool, threads, seconds);
    return;
}

if (only == "channels")
{
    ChannelBench.Run(pool, threads, seconds);
    return;
}

if (only == "sparse")
{
    SparseModelBench.Run(pool, threads, seconds, Torch);
    return;
}

Console.WriteLine("\n### GEMM (GFLOPS)\n\n| shape m×k×n | ISA (ours) | ours | PyTorch | ours/PyTorch | target | |\n|---|---|---|---|---|---|---|");
foreach (var (shape, gflops) in GemmBench.Measure(threads, seconds))
{
    double? theirs = Torch("gemm", shape);
    Console.WriteLine($"| {shape} | {VectorIsas.Describe(VectorIsas.Best)} | {gflops:F1} | {theirs?.ToString("F1") ?? "–"} | {Ratio(gflops, theirs, 0.8)} |");
}

var bench = new ModelBench(pool, seconds);
var targets = new Dictionary<string, double> { ["lenet_b64"] = 1.5, ["lenet_b256"] = 1.0, ["cnn_b64"] = 1.0 };
Console.WriteLine("\n### Training (samples/s)\n\n| model | ISA (ours) | batch | ours | PyTorch | ours/PyTorch | target | | allocated bytes/batch |\n|---|---|---|---|---|---|---|---|---|");
foreach (var (name, layers, shape) in ModelBench.Models)
foreach (int batch in new[] { 64, 256 })
{
    var (sps, bytes) = bench.Train(layers(), shape, batch);
    string key = $"{name}_b{batch}";
    double? theirs = Torch("train", key);
    string ratio = targets.TryGetValue(key, out double target) ? Ratio(sps, theirs, target)
        : theirs is double x ? $"{sps / x:F2}× | – | –" : "– | – | –";
    Console.WriteLine($"| {name} | {VectorIsas.Describe(VectorIsas.Best)} | {batch} | {sps:F0} | {theirs?.ToString("F0") ?? "–"} | {ratio} | {bytes:F0} |");
}

Console.WriteLine("\n### Masked training (90% unstructured masks) against dense, same run\n\nMedians of 3 alternating measurements each.\n\n| model | ISA | batch | dense samples/s | masked samples/s | time masked/dense | target | |\n|---|---|---|---|---|---|---|---|");
foreach (var (name, layers, shape) in ModelBench.Models)
foreach (int batch in new[] { 64, 256 })
{
    var dense = new List<double>();
    var masked = new List<double>();
    for (int round = 0; round < 3; round++)
    {
        dense.Add(bench.Train(layers(), shape, batch).SamplesPerSecond);
        masked.Add(bench.Train(layers(), shape, batch, maskedSparsity: 0.9).SamplesPerSecond);
    }
    double d = Statistics.Median(dense), m = Statistics.Median(masked), cost = d / m;
    Console.WriteLine($"| {name} | {VectorIsas.Describe(VectorIsas.Best)} | {batch} | {d:F0} | {m:F0} | {cost:F3}× | ≤ 1.05× | {(cost <= 1.05 ? "met" : "missed")} |");
}

Console.WriteLine("\n### Inference\n\n| model | ISA (ours) | batch | ours samples/s | ours µs/call | PyTorch samples/s | ours/PyTorch | target | |\n|---|---|---|---|---|---|---|---|---|");
foreach (var (name, layers, shape) in ModelBench.Models)
foreach (int batch in new[] { 1, 256 })
{
    var (sps, us) = bench.Infer(layers(), shape, batch);
    string key = $"{name}_b{batch}";
    double? theirs = Torch("infer", key);
    string ratio = key == "lenet_b1" ? Ratio(sps, theirs, 2.0) : theirs is double x ? $"{sps / x:F2}× | – | –" : "– | – | –";
    Console.WriteLine($"| {name} | {VectorIsas.Describe(VectorIsas.Best)} | {batch} | {sps:F0} | {us:F1} | {theirs?.ToString("F0") ?? "–"} | {ratio} |");
}

OnnxRuntimeBench.Run(pool, threads, seconds);

KernelBench.Run(pool, Math.Min(seconds, 1));

SparseModelBench.Run(pool, threads, seconds, Torch);

DctBench.Run(seconds);
