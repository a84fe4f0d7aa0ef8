// The kernel-and-prediction check: runs every kernel family this process's CPU takes (GEMM in all its variants, and
// the dense, CSR, sliced-ELLPACK and N:M prediction formats inside whole networks, dense and convolutional, at batch 1
// and batched) and compares each result with a double-precision reference. build/arm64-check.sh publishes it for
// linux-arm64 and runs it under qemu-user-static, so the NEON (Vector128) paths are checked on an x86 machine; it
// runs natively too. Prints one line per group and exits 1 on any mismatch. Correctness only: no timings.
using System.Runtime.InteropServices;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.KernelCheck;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;

Console.WriteLine($"Kernel check: {RuntimeInformation.ProcessArchitecture}, vector tier {VectorIsas.Describe(VectorIsas.Best)}, .NET {Environment.Version}");
var check = new Checker();
var random = new Random(20261205);
using var pool = new WorkerPool(2);

// GEMM: every transpose variant, the alpha/beta modes, edge shapes, GEMV shapes (m = 1, n = 1), one and two threads.
int[][] shapes = [[1, 300, 784], [16, 300, 784], [37, 1, 53], [5, 7, 3], [70, 45, 33], [64, 128, 300]];
foreach (int[] s in shapes)
foreach (bool transA in new[] { false, true })
foreach (bool transB in new[] { false, true })
foreach ((float alpha, float beta) in new[] { (1f, 0f), (1f, 1f), (0.5f, -2f) })
foreach (WorkerPool p in new[] { WorkerPool.Inline, pool })
    Reference.CheckGemm(check, p, random, s[0], s[1], s[2], transA, transB, alpha, beta);
check.Report("GEMM (4 transposes x 3 alpha/beta modes x 6 shapes x 1 and 2 threads)");

// Whole networks through every prediction format, pruned to each pattern.
(string Name, Func<SequentialNetwork> Build)[] networks =
[
    ("LeNet-300-100", () => Build([784], [.. Layers.LeNet300100(), Layers.Dense(10) with { Name = "output" }])),
    ("small CNN", () => Build([28, 28, 1], [.. Layers.SmallCnn(), Layers.Dense(10) with { Name = "output" }])),
    ("odd MLP", () => Build([52], [Layers.Dense(37), Layers.ReLU(), Layers.Dense(13) with { Name = "output" }])),
    ("odd CNN", () => Build([9, 7, 4], [Layers.Conv2d(20, 3, stride: 2, padding: 1), Layers.ReLU(), Layers.Conv2d(16, 3, padding: 1), Layers.ReLU(),
        Layers.MaxPool2d(2), Layers.Flatten(), Layers.Dense(5) with { Name = "output" }])),
    // Batch norms folded into the direct kernel; channel counts with no whole vector; a 405-value patch (two chunks of taps).
    ("odd wide CNN", () => Build([10, 9, 3], [Layers.Conv2d(21, 3, padding: 1, useBias: false), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2),
        Layers.Conv2d(45, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.Conv2d(70, 3, padding: 1), Layers.Flatten(), Layers.Dense(5) with { Name = "output" }])),
];
(string Name, SparsityPattern? Pattern, double Sparsity)[] patterns =
[
    ("dense", null, 0), ("90% unstructured", SparsityPattern.Unstructured, 0.9), ("98% unstructured", SparsityPattern.Unstructured, 0.98),
    ("2:4", SparsityPattern.NM(2, 4), 0.5), ("1:4", SparsityPattern.NM(1, 4), 0.75), ("2:8", SparsityPattern.NM(2, 8), 0.75),
    // Every layer N:M, a ragged last group per run where M does not divide the input channels (LeNet's 300 and 100 at 1:8).
    ("1:8 ragged", SparsityPattern.NM(1, 8), 0.875), ("2:4 ragged", SparsityPattern.NM(2, 4), 0.5), ("3:8 ragged", SparsityPattern.NM(3, 8), 0.625),
];
foreach (var (name, build) in networks)
{
    foreach (var (patternName, pattern, sparsity) in patterns)
    {
        SequentialNetwork network = build();
        if (pattern is not null)
            Prune(network, pattern, sparsity, leaveMisfitDense: !patternName.EndsWith("ragged", StringComparison.Ordinal));
        var model = new NeuralNetworkMulticlassModel(network, network.OutputSize, null, "Features", []);
        foreach (WeightFormat format in new[] { WeightFormat.Auto, WeightFormat.Dense, WeightFormat.Csr, WeightFormat.SlicedEll, WeightFormat.NM })
        {
            NeuralNetworkModel? formatted = WithFormat(model, network, format);
            if (formatted is null)
                continue;
            foreach (int batch in new[] { 1, 3, 17 })
                Reference.CheckPrediction(check, formatted, network, pool, random, batch, $"{name} {patternName} {format} batch {batch}");
        }
    }

    check.Report($"{name}: predictions ({patterns.Length} patterns x every format the layers take x batch 1, 3, 17)");
}

Console.WriteLine(check.Failures == 0 ? $"PASSED: {check.Total} checks" : $"FAILED: {check.Failures} of {check.Total} checks");
return check.Failures == 0 ? 0 : 1;

// Batch norms get statistics, γ and β away from their initial values, so folding them into a convolution is no identity.
static SequentialNetwork Build(int[] inputShape, LayerDefinition[] layers)
{
    var network = new SequentialNetwork(layers, inputShape, new LayerBuildContext(WorkerPool.Inline, WeightInitializer.GlorotUniform, 7));
    var random = new Random(5);
    foreach (BatchNormLayer norm in network.Layers.OfType<BatchNormLayer>())
        for (int c = 0; c < norm.Channels; c++)
        {
            (norm.Gamma.Value[c], norm.Beta.Value[c]) = (0.5f + random.NextSingle(), random.NextSingle() - 0.5f);
            (norm.RunningMean[c], norm.RunningVariance[c]) = (random.NextSingle() - 0.5f, 0.2f + random.NextSingle());
        }
    return network;
}

static void Prune(SequentialNetwork network, SparsityPattern pattern, double sparsity, bool leaveMisfitDense)
{
    var options = new PruningOptions { Pattern = pattern, TargetSparsity = sparsity, LeaveMisfitLayersDense = leaveMisfitDense, Schedule = PruningSchedule.AtInitialization() };
    new PruningPlan(options, network, 11).Prune(0, options.Schedule, null);
}

// The model with the format forced on every weighted layer that can take it (N:M only where the layer is N:M sparse);
// null when no layer can.
static NeuralNetworkModel? WithFormat(NeuralNetworkModel model, SequentialNetwork network, WeightFormat format)
{
    if (format != WeightFormat.NM)
        return model.WithWeightFormats(format);
    var nm = new Dictionary<string, WeightFormat>();
    foreach (Layer layer in network.Layers.Where(l => l is DenseLayer or Conv2dLayer))
    {
        try
        {
            model.WithWeightFormats(new Dictionary<string, WeightFormat> { [layer.Name] = WeightFormat.NM });
            nm[layer.Name] = WeightFormat.NM;
        }
        catch (ArgumentException)
        {
            // This layer is not N:M sparse (left dense, or fewer input channels than 4).
        }
    }

    return nm.Count == 0 ? null : model.WithWeightFormats(nm);
}
