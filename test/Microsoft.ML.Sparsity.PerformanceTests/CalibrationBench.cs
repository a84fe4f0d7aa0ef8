using System.Diagnostics;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// <see cref="WeightFormat.Auto"/>'s calibration: what building a model costs with it (first time, and again with the
/// per-process cache warm), the formats it picks against the fixed rule's, and how fast the two models predict
/// (alternating rounds, medians).
/// </summary>
internal static class CalibrationBench
{
    public static void Run(WorkerPool pool, double seconds)
    {
        Console.WriteLine($"\n### Format calibration ({VectorIsas.Describe(VectorIsas.Best)}, {pool.ThreadCount} threads, /proc/loadavg {File.ReadAllText("/proc/loadavg").Trim()})\n");
        Console.WriteLine("| model | build with calibration | again (cached) | layer: calibrated single/batched [kernels] | fixed rule | calibrated/fixed µs batch 1 | batch 64 |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        var bench = new ModelBench(pool, seconds);
        foreach (var (name, layers, shape) in ModelBench.Models)
        foreach ((string label, SparsityPattern? pattern) in new (string, SparsityPattern?)[] { ("dense", null), ("90%", SparsityPattern.Unstructured), ("2:4", SparsityPattern.NM(2, 4)) })
        {
            var network = new SequentialNetwork(layers(), shape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 42));
            if (pattern is not null)
            {
                var options = new PruningOptions { Pattern = pattern, TargetSparsity = 0.9, LeaveMisfitLayersDense = true, Schedule = PruningSchedule.AtInitialization() };
                new PruningPlan(options, network, 1).Prune(0, options.Schedule, null);
            }

            long t0 = Stopwatch.GetTimestamp();
            var calibrated = new NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
            double first = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            t0 = Stopwatch.GetTimestamp();
            _ = new NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
            double cached = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            var fixedRule = calibrated.WithWeightFormats(WeightFormat.FixedRule);

            string choices = string.Join("; ", calibrated.WeightFormats.Select(f =>
                $"{f.LayerName} {f.SingleExample}/{f.Batched} [{f.SingleExampleKernel}/{f.BatchedKernel}]{(f.ChosenBy == FormatChoice.Calibrated ? "" : " " + f.Note)}"));
            string fixedChoices = string.Join("; ", fixedRule.WeightFormats.Select(f => $"{f.SingleExample}/{f.Batched}"));
            Console.WriteLine($"| {name} {label} | {first:F1} ms | {cached:F1} ms | {choices} | {fixedChoices} | {Ratio(bench, calibrated, fixedRule, 1)} | {Ratio(bench, calibrated, fixedRule, 64)} |");
        }
    }

    /// <summary>µs per call of both models at <paramref name="batch"/>, three alternating rounds, medians: "a / b = ratio".</summary>
    private static string Ratio(ModelBench bench, NeuralNetworkMulticlassModel a, NeuralNetworkMulticlassModel b, int batch)
    {
        var (ta, tb) = (new List<double>(), new List<double>());
        for (int round = 0; round < 3; round++)
        {
            ta.Add(bench.Infer(a, batch).MicrosecondsPerCall);
            tb.Add(bench.Infer(b, batch).MicrosecondsPerCall);
        }

        double ma = Statistics.Median(ta), mb = Statistics.Median(tb);
        return $"{ma:F1} / {mb:F1} = {ma / mb:F2}";
    }
}
