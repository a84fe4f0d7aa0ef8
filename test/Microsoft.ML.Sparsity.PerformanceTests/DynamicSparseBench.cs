using System.Diagnostics;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.GrowAndPrune;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// What moving the mask costs: LeNet-300-100 on Fashion-MNIST at 90% sparsity (ERK) trained with a static random mask,
/// with SET and with RigL (their default update schedules), the three in alternating rounds of one run; the table gives
/// the median training times and their ratios to the static mask (issue 17's budget: RigL ≤ 1.15×).
/// </summary>
internal static class DynamicSparseBench
{
    public static void Run(int threads, int rounds, int epochs)
    {
        var ml = new MLContext(seed: 1);
        Dataset train = DataViewReader.Read(ml.Data.LoadFashionMnist(FashionMnistSplit.Train), "Features", "Label");
        var methods = new (string Name, Func<SparsityMethod> Create)[]
        {
            ("static random", () => ml.Sparsity().RandomPruning(0.9, LayerAllocation.ErdosRenyiKernel)),
            ("SET", () => ml.Sparsity().Set(0.9, LayerAllocation.ErdosRenyiKernel)),
            ("RigL", () => ml.Sparsity().RigL(0.9, LayerAllocation.ErdosRenyiKernel)),
        };
        var seconds = methods.Select(_ => new List<double>()).ToArray();
        // Round 0 warms up (JIT, buffers) and is not counted; odd rounds run the methods in reverse order, so a drift
        // in the machine's load does not favour one method.
        for (int round = 0; round <= rounds; round++)
        foreach (int m in round % 2 == 0 ? [0, 1, 2] : new[] { 2, 1, 0 })
        {
            var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = Layers.LeNet300100(),
                Epochs = round == 0 ? 1 : epochs,
                BatchSize = 64,
                NumberOfThreads = threads,
                Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
                LearningRateSchedule = LearningRateSchedule.Cosine(),
                Sparsity = methods[m].Create(),
                Seed = 1,
            });
            long start = Stopwatch.GetTimestamp();
            trainer.FitExamples(train);
            if (round > 0) seconds[m].Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        double baseline = Statistics.Median(seconds[0]);
        Console.WriteLine($"LeNet-300-100, Fashion-MNIST, 90% sparsity (ERK), {epochs} epochs, batch 64, {threads} threads; medians of {rounds} alternating rounds " +
            $"(/proc/loadavg {File.ReadAllText("/proc/loadavg").Trim()}):");
        Console.WriteLine("| method | training time (s), median | rounds (s) | median time / static random | median of the rounds' ratios |\n|---|---|---|---|---|");
        for (int m = 0; m < methods.Length; m++)
            Console.WriteLine($"| {methods[m].Name} | {Statistics.Median(seconds[m]):F2} | {string.Join(", ", seconds[m].Select(s => s.ToString("F2")))} | " +
                $"{Statistics.Median(seconds[m]) / baseline:F3}× | {Statistics.Median(seconds[m].Zip(seconds[0], (a, b) => a / b)):F3}× |");

        // The same cost measured directly, less exposed to a busy machine: one mask update's time × the run's updates.
        int stepsPerEpoch = (train.Count + 63) / 64;
        long totalSteps = (long)stepsPerEpoch * epochs;
        foreach (var (name, options) in new (string, DynamicSparseOptions)[]
            { ("SET", ml.Sparsity().Set(0.9, LayerAllocation.ErdosRenyiKernel)), ("RigL", ml.Sparsity().RigL(0.9, LayerAllocation.ErdosRenyiKernel)) })
        {
            var (milliseconds, updates) = UpdateCost(options, threads, stepsPerEpoch, totalSteps);
            Console.WriteLine($"{name}: one mask update of LeNet takes {milliseconds:F2} ms (median of 21); its {updates} updates in this run add " +
                $"{milliseconds * updates / 1000:F3} s, {milliseconds * updates / 1000 / baseline:P2} of the static run's {baseline:F2} s.");
        }
    }

    /// <summary>The median time of one mask update on LeNet-300-100 (random gradients), and the updates a run makes.</summary>
    private static (double Milliseconds, long Updates) UpdateCost(DynamicSparseOptions options, int threads, int stepsPerEpoch, long totalSteps)
    {
        var pool = Engine.WorkerPool.Shared(threads);
        var network = new SequentialNetwork([.. Layers.LeNet300100(), Layers.Dense(10)], [784], new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 1));
        var optimizer = new SgdOptimizerOptions { Momentum = 0.9f }.Create(network.Parameters, pool);
        var controller = (DynamicSparseController)options.CreateController(network, optimizer, 1, null);
        controller.Start(stepsPerEpoch, totalSteps);
        var random = new Random(3);
        foreach (var p in network.Parameters)
            for (int i = 0; i < p.Length; i++) p.Gradient[i] = random.NextSingle() - 0.5f;
        var times = new List<double>();
        long interval = options.UpdateEveryEpoch ? stepsPerEpoch : options.UpdateFrequency;
        for (int call = 0; call < 22; call++)
        {
            long start = Stopwatch.GetTimestamp();
            controller.Update((call + 1) * interval);
            if (call > 0) times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        long end = options.EndStepFor(totalSteps);
        return (Statistics.Median(times), Enumerable.Range(1, (int)totalSteps).LongCount(t => t % interval == 0 && t < end));
    }
}
