using System.Diagnostics;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.NestedSparsity;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// Nested sparsity (issue 19). <see cref="Run"/>: each level of a nested LeNet-300-100 and small CNN against a model
/// pruned separately to the same sparsity (gradual magnitude pruning, same allocation and recipe), batch 1 and 256,
/// alternating (medians of 3), and the files' bytes. <see cref="RunLoad"/>: the rerouting engine under rising load.
/// The models are trained briefly (2 epochs on 12,000 Fashion-MNIST images): latency depends on the masks' shapes, not
/// on the accuracy.
/// </summary>
internal static class NestedBench
{
    private static readonly (string Name, Func<LayerDefinition[]> Layers, double[] Levels)[] Models =
    [
        ("lenet", Layers.LeNet300100, [0.5, 0.8, 0.9, 0.95, 0.98]),
        ("cnn", Layers.SmallCnn, [0.5, 0.8, 0.9]),
    ];

    private static readonly int[] Batches = [1, 256];

    /// <summary>
    /// Serving threads in the load test: one, which leaves the other core to the runtime's and the system's threads. With
    /// two spinning servers on 2 cores, any other thread preempted one for milliseconds, and the 99th percentile measured
    /// those stalls (13–30 ms) at every load and level.
    /// </summary>
    private const int Servers = 1;

    public static void Run(WorkerPool pool, double seconds)
    {
        Console.WriteLine("\n### Nested sparsity (issue 19): each level against a separately pruned model, µs per call (alternating, medians of 3)\n");
        var ml = new MLContext(seed: 1);
        var data = ml.Data.TakeRows(ml.Data.LoadFashionMnist(FashionMnistSplit.Train), 12_000);
        var bench = new ModelBench(pool, seconds / 3);
        Console.WriteLine("| model | level | batch | nested µs | separate µs | nested vs separate | target | |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        var files = new List<string>();
        foreach (var (name, layers, levels) in Models)
        {
            var nested = Train(ml, data, layers(), pool, new NestedSparsityOptions { Levels = [.. levels], Allocation = LayerAllocation.ErdosRenyiKernel });
            foreach (double level in levels)
            {
                var separate = Train(ml, data, layers(), pool, new PruningOptions { TargetSparsity = level, Allocation = LayerAllocation.ErdosRenyiKernel });
                var atLevel = nested.AtSparsityLevel(level);
                foreach (int batch in Batches)
                {
                    var n = new List<double>();
                    var s = new List<double>();
                    for (int round = 0; round < 3; round++)
                    {
                        n.Add(bench.Infer(atLevel, batch).MicrosecondsPerCall);
                        s.Add(bench.Infer(separate, batch).MicrosecondsPerCall);
                    }
                    double nested1 = Statistics.Median(n), separate1 = Statistics.Median(s);
                    string target = batch == 1 ? $"≤ 1.1× separate | {(nested1 <= 1.1 * separate1 ? "met" : "missed")}" : " | ";
                    Console.WriteLine($"| {name} | {level} | {batch} | {nested1:F1} | {separate1:F1} | {nested1 / separate1:F2}× | {target} |");
                }
                if (level == levels[0])
                    files.Add($"| {name} | {Bytes(nested):N0} | {Bytes(DensestAlone(nested)):N0} | {(double)Bytes(nested) / Bytes(DensestAlone(nested)):F3}× | {Bytes(separate):N0} | ≤ 1.15× | " +
                        $"{((double)Bytes(nested) / Bytes(DensestAlone(nested)) <= 1.15 ? "met" : "missed")} |");
            }
        }
        Console.WriteLine("\n| model | nested file (every level) bytes | densest level alone bytes | nested vs densest alone | separately pruned at the densest level, bytes | target | |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var row in files) Console.WriteLine(row);
    }

    /// <summary>
    /// The load test: a nested small CNN (levels 0.5 to 0.98) served by one thread (<see cref="Servers"/>) that takes
    /// requests arriving at a fixed rate (Poisson) and predicts each through a
    /// <see cref="SparsityLevelPredictionEngine{TSrc, TDst}"/> with a latency budget, passing the arrival time, so
    /// queueing counts. Beside it, a fixed engine at the level the budget picks on a quiet machine. Rising rates; per rate
    /// the p99 latency of both and the share of predictions the rerouting engine made at each level.
    /// </summary>
    public static void RunLoad(double seconds, string? plotPath)
    {
        Console.WriteLine("\n### Nested sparsity (issue 19): rerouting under load\n");
        var ml = new MLContext(seed: 1);
        var data = ml.Data.TakeRows(ml.Data.LoadFashionMnist(FashionMnistSplit.Train), 12_000);
        var (name, layers, levels) = ("cnn", (Func<LayerDefinition[]>)Layers.SmallCnn, new[] { 0.5, 0.8, 0.9, 0.95, 0.98 });
        // Trained on one thread, so each prediction runs on the serving thread that asks for it, as in a server.
        var nested = Train(ml, data, layers(), WorkerPool.Inline, new NestedSparsityOptions { Levels = [.. levels], Allocation = LayerAllocation.ErdosRenyiKernel });
        var images = FashionMnistArrays.Load(test: true).Pixels.Take(1000).Select(p => new Image { Features = p }).ToArray();

        var probe = ml.Sparsity().CreatePredictionEngine<Image, Scores>(nested, new SparsityLevelEngineOptions());
        probe.WarmUp(images[0]);
        double[] warm = [.. probe.WarmUpLatencies.Select(t => t.TotalMicroseconds)];
        // The budget: 4× the densest level's latency, room for some queueing. Under Poisson arrivals the densest level's p99
        // crosses it at a load where the sparser levels' (less work per request, so less queueing) do not.
        double budget = 4 * warm[0];
        int fixedLevel = Array.FindIndex(warm, w => w <= budget);
        Console.WriteLine($"{name}, levels [{string.Join(", ", levels)}], warm-up latencies [{string.Join(", ", warm.Select(w => $"{w:F0} µs"))}]; budget {budget:F0} µs (p99); " +
            $"fixed engine at {levels[fixedLevel]}; {Servers} serving thread, Poisson arrivals, {seconds:F1} s per rate\n");
        Console.WriteLine("| requests/s | load on the fixed level | fixed: p99 µs | fixed within budget | rerouting: p99 µs | rerouting within budget | rerouting: share of predictions per level |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        double capacity = Servers * 1e6 / warm[fixedLevel];
        var rows = new List<(double Rate, double FixedP99, double RerouteP99, double[] Shares)>();
        Serve(probe, images, 0.3 * capacity, 1, levels); // untimed: the serving loop's own code reaches the JIT's optimised form
        foreach (double load in new[] { 0.3, 0.6, 0.9, 1.2, 1.8, 2.5, 3.5 })
        {
            double rate = load * capacity;
            var fixedEngine = ml.Sparsity().CreatePredictionEngine<Image, Scores>(nested, new SparsityLevelEngineOptions { Level = levels[fixedLevel] });
            fixedEngine.WarmUp(images[0]);
            var (fixedP99, _) = Serve(fixedEngine, images, rate, seconds, levels);
            var rerouting = ml.Sparsity().CreatePredictionEngine<Image, Scores>(nested, new SparsityLevelEngineOptions { LatencyBudget = TimeSpan.FromMicroseconds(budget) });
            rerouting.WarmUp(images[0]);
            var (rerouteP99, shares) = Serve(rerouting, images, rate, seconds, levels);
            rows.Add((rate, fixedP99, rerouteP99, shares));
            Console.WriteLine($"| {rate:N0} | {load:P0} | {fixedP99:F0} | {(fixedP99 <= budget ? "yes" : "**no**")} | {rerouteP99:F0} | {(rerouteP99 <= budget ? "yes" : "**no**")} | " +
                string.Join(", ", levels.Select((l, i) => $"{l}: {shares[i]:P0}")) + " |");
        }
        if (plotPath is not null) Plot(rows, budget, levels, plotPath);
    }

    public sealed class Image
    {
        [Microsoft.ML.Data.VectorType(28, 28, 1)]
        public float[] Features { get; set; } = [];
    }

    public sealed class Scores
    {
        public float[] Score { get; set; } = [];
    }

    /// <summary>
    /// Serves requests arriving at <paramref name="rate"/> per second for <paramref name="seconds"/> on <see cref="Servers"/> threads; returns the
    /// p99 latency from arrival to answer (µs) and the share of predictions at each level.
    /// </summary>
    private static (double P99, double[] Shares) Serve(SparsityLevelPredictionEngine<Image, Scores> engine, Image[] images, double rate, double seconds, double[] levels)
    {
        var random = new Random(3);
        int count = (int)(rate * seconds);
        long[] arrivals = new long[count];
        double t = 0;
        for (int i = 0; i < count; i++)
        {
            t += -Math.Log(1 - random.NextDouble()) / rate;
            arrivals[i] = (long)(t * Stopwatch.Frequency);
        }
        long[] latency = new long[count];
        int[] level = new int[count];
        int next = -1;
        long start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 100;
        void Worker()
        {
            var prediction = new Scores();
            for (int i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
            {
                long arrival = start + arrivals[i];
                while (Stopwatch.GetTimestamp() < arrival) Thread.SpinWait(10);
                level[i] = Array.IndexOf(levels, engine.Level);
                engine.PredictRequest(images[i % images.Length], ref prediction, arrival);
                latency[i] = Stopwatch.GetTimestamp() - arrival;
            }
        }
        var threads = Enumerable.Range(0, Servers).Select(_ => new Thread(Worker)).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();
        double p99 = latency.Order().ElementAt((int)(0.99 * count)) * 1e6 / Stopwatch.Frequency;
        return (p99, [.. levels.Select((_, l) => level.Count(x => x == l) / (double)count)]);
    }

    private static void Plot(List<(double Rate, double FixedP99, double RerouteP99, double[] Shares)> rows, double budget, double[] levels, string path)
    {
        var plot = new ScottPlot.Plot();
        double[] rates = [.. rows.Select(r => r.Rate / 1000)];
        var fixedLine = plot.Add.Scatter(rates, [.. rows.Select(r => r.FixedP99)]);
        fixedLine.LegendText = "fixed level: p99";
        var reroute = plot.Add.Scatter(rates, [.. rows.Select(r => r.RerouteP99)]);
        reroute.LegendText = "rerouting: p99";
        var line = plot.Add.HorizontalLine(budget);
        line.LegendText = "budget";
        line.LinePattern = ScottPlot.LinePattern.Dashed;
        plot.Axes.Left.Label.Text = "p99 latency (µs)";
        plot.Axes.Bottom.Label.Text = "requests per second (thousands)";
        plot.Axes.SetLimitsY(0, Math.Min(rows.Max(r => Math.Max(r.FixedP99, r.RerouteP99)) * 1.1, budget * 6));
        var levelAxis = plot.Axes.Right;
        levelAxis.Label.Text = "rerouting: mean level used (sparsity)";
        var mean = plot.Add.Scatter(rates, [.. rows.Select(r => r.Shares.Select((s, i) => s * levels[i]).Sum())]);
        mean.LegendText = "rerouting: mean sparsity level";
        mean.Axes.YAxis = levelAxis;
        mean.LinePattern = ScottPlot.LinePattern.Dotted;
        plot.Title("Nested small CNN under rising load: p99 latency and level used");
        plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
        AtomicWrite(path, bytes => plot.SavePng(bytes, 900, 500));
    }

    private static void AtomicWrite(string path, Action<string> write)
    {
        string temporary = path + ".tmp" + Path.GetExtension(path);
        write(temporary);
        File.Move(temporary, path, overwrite: true);
    }

    private static NeuralNetworkMulticlassModel Train(MLContext ml, IDataView data, LayerDefinition[] layers, WorkerPool pool, SparsityMethod sparsity) =>
        ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = layers,
            Epochs = 2,
            BatchSize = 64,
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
            LearningRateSchedule = LearningRateSchedule.Cosine(),
            NumberOfThreads = pool.ThreadCount,
            Seed = 1,
            Sparsity = sparsity,
        }).Fit(data);

    /// <summary>The nested model's densest level on its own: the same weights, mask and optimiser state, no levels.</summary>
    private static NeuralNetworkMulticlassModel DensestAlone(NeuralNetworkMulticlassModel nested)
    {
        var network = nested.Network.Clone(nested.Network.Pool);
        network.SparsityLevels = null;
        network.ActiveLevel = 0;
        foreach (var parameter in network.Parameters) parameter.LevelCodes = null;
        return new NeuralNetworkMulticlassModel(network, nested.ClassCount, nested.ClassLabels, nested.FeatureColumnName, [], nested.Training);
    }

    private static long Bytes(NeuralNetworkMulticlassModel model)
    {
        using var stream = new MemoryStream();
        ModelFile.Save(model, stream);
        return stream.Length;
    }
}
