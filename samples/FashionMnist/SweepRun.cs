// --sweep FOLDER [--trials N] [--minutes M] [--seed S] [--data DIR] [--report DIR]: a sparsity sweep of LeNet-300-100 on Fashion-MNIST
// with successive halving, at most N trials (default 64) and no trial started after M minutes (default 11, so that the
// sweep ends within issue 20's 15 minutes), journaled to FOLDER (run it again to resume). Trains on 50,000 training images, compares trials on the other
// 10,000, then prints every trial, the Pareto front with test accuracy, and the fastest front model at ≤ 10% density and
// ≥ 89.3% test accuracy against the sweep's dense model.
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Sparsity;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Sweeps;

internal static class SweepRun
{
    public static bool IsRequested(string[] args) => args.Contains("--sweep");

    public static int Run(string[] args)
    {
        string folder = "";
        int trials = 64, seed = 1;
        double minutes = 11;
        string? data = null, report = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--sweep": folder = Value(); break;
                case "--trials": trials = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--minutes": minutes = double.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--seed": seed = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--data": data = Value(); break;
                case "--report": report = Value(); break;
                default: throw new ArgumentException($"Unknown argument '{args[i]}' for --sweep: use --sweep FOLDER [--trials N] [--minutes M] [--seed S] [--data DIR] [--report DIR].");
            }
        }
        var ml = new MLContext(seed: seed);
        var all = ml.Data.LoadFashionMnist(FashionMnistSplit.Train, data);
        var test = ml.Data.LoadFashionMnist(FashionMnistSplit.Test, data);
        var split = ml.Data.TrainTestSplit(all, testFraction: 1.0 / 6, seed: seed);
        var options = new SparsitySweepOptions
        {
            SearchSpace = new SweepSearchSpace
            {
                Methods = [SweepMethod.Dense, SweepMethod.GradualMagnitude, SweepMethod.Random, SweepMethod.NMFromScratch, SweepMethod.RigL, SweepMethod.Set],
                Sparsities = [0.9, 0.95, 0.98],
                Allocations = [LayerAllocation.ErdosRenyiKernel],
                Epochs = [30],
                Widths = [1, 1.5],
            },
            MaxTrials = trials,
            MaxTime = TimeSpan.FromMinutes(minutes),
            JournalFolder = folder,
            Seed = seed,
        };
        Console.WriteLine($"Sweep of at most {trials} trials, none started after {minutes} min (successive halving, η {options.ReductionFactor}, rungs at 7 and 21 of 30 epochs), seed {seed}, journal '{folder}'.");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = ml.Sparsity().CreateSweep(options).Run(split.TrainSet, split.TestSet, new Printer());
        Console.WriteLine($"\nFinished in {clock.Elapsed.TotalMinutes:0.0} min (this run; a resumed sweep counts from its resumption).");
        var c = CultureInfo.InvariantCulture;
        var dense = result.Trials[0];
        double TestAccuracy(SweepTrial t) => ml.MulticlassClassification.Evaluate(t.GetModel().Transform(test)).MicroAccuracy;
        Console.WriteLine("\n| # | settings | status | epochs | validation | test | sparsity | latency µs | speed-up vs dense | bytes |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        var tests = result.Trials.Where(t => t.Status == SweepTrialStatus.Completed).ToDictionary(t => t.Index, TestAccuracy);
        foreach (var t in result.Trials)
        {
            bool done = t.Status == SweepTrialStatus.Completed;
            Console.WriteLine($"| {t.Index}{(result.ParetoFront.Contains(t) ? " (front)" : "")} | {t.Settings} | {t.Status} | {t.ValidationCurve.Count} | {t.ValidationAccuracy * 100:0.00} | " +
                (done ? $"{tests[t.Index] * 100:0.00} | {t.Sparsity * 100:0.0}% | {t.LatencyMicroseconds:0.00} | {dense.LatencyMicroseconds / t.LatencyMicroseconds:0.00}× | {t.Bytes:N0} |" : "| | | | |"));
        }
        if (report is not null)
            Console.WriteLine($"Wrote the report '{Microsoft.ML.Sparsity.Plots.SweepReport.Write(result, report, $"LeNet-300-100 on Fashion-MNIST: a sweep of {result.Trials.Count} trials, seed {seed}", tests)}'.");
        var candidates = result.ParetoFront.Where(t => t.Sparsity >= 0.9 - 1e-9 && tests[t.Index] >= 0.893).OrderBy(t => t.LatencyMicroseconds).ToList();
        if (candidates.Count == 0)
        {
            Console.WriteLine("\nNo front model has ≥ 89.3% test accuracy at ≤ 10% density.");
            return 1;
        }
        var best = candidates[0];
        Console.WriteLine($"\nFastest front model at ≤ 10% density with ≥ 89.3% test accuracy: #{best.Index} ({best.Settings}), test {tests[best.Index] * 100:0.00}%, " +
            $"{best.LatencyMicroseconds:0.00} µs, {(dense.LatencyMicroseconds!.Value / best.LatencyMicroseconds!.Value).ToString("0.00", c)}× the dense model's {dense.LatencyMicroseconds:0.00} µs.");
        return 0;
    }

    private sealed class Printer : IProgress<SweepProgress>
    {
        public void Report(SweepProgress p)
        {
            if (p.Trial < 0) Console.WriteLine("measuring single-prediction latency of the completed models ...");
            else if (p.Status is { } status) Console.WriteLine($"[{p.FinishedTrials}/{p.Trials}] trial {p.Trial} {status} ({p.Settings}): {p.ValidationAccuracy * 100:0.00}%");
        }
    }
}
