using System.Diagnostics;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// How much of its speed alone a LeNet-300-100 training (batch 64) keeps beside one and two CPU-bound processes
/// (<c>sh -c 'while :; do :; done'</c>, started and killed here). On a 2-core machine the fair shares are 2/3 and 1/2
/// for a 2-thread training (the kernel shares time per thread). Ours and PyTorch (when build/bench_pytorch.py is
/// given), each with 2 threads and 1 thread: every trainer stays warm for the whole run, and each round measures
/// every trainer at every load, so that the machine's other load drifts through all cells alike; medians of the rounds.
/// </summary>
internal static class ContentionBench
{
    private const int Batch = 64;

    public static void Run(double seconds, int rounds, string? pytorchBench)
    {
        var trainers = new List<(string Name, Func<double, double> Measure)>
        {
            ("ours, 2 threads", new Trainer(new WorkerPool(2)).Measure),
            ("ours, 1 thread", new Trainer(WorkerPool.Inline).Measure),
        };
        using PyTorchTrainer? torch2 = pytorchBench is null ? null : new PyTorchTrainer(pytorchBench, threads: 2);
        using PyTorchTrainer? torch1 = pytorchBench is null ? null : new PyTorchTrainer(pytorchBench, threads: 1);
        if (torch2 is not null && torch1 is not null)
        {
            trainers.Add(($"PyTorch {torch2.Version}, 2 threads", torch2.Measure));
            trainers.Add(($"PyTorch {torch1.Version}, 1 thread", torch1.Measure));
        }

        foreach (var (_, measure) in trainers)
            measure(1.5); // JIT tiering, caches, PyTorch's first calls
        string loadBefore = File.ReadAllText("/proc/loadavg").Trim();
        var samples = new List<double>[trainers.Count, 3];
        for (int t = 0; t < trainers.Count; t++)
            for (int load = 0; load < 3; load++)
                samples[t, load] = [];

        for (int round = 0; round < rounds; round++)
            for (int load = 0; load < 3; load++)
            {
                Process[] competitors = [.. Enumerable.Range(0, load).Select(_ => StartBusyLoop())];
                try
                {
                    Thread.Sleep(100);
                    // Rotate the trainers' order so none is always first after the load changes.
                    for (int i = 0; i < trainers.Count; i++)
                    {
                        int t = (i + round) % trainers.Count;
                        samples[t, load].Add(trainers[t].Measure(seconds));
                    }
                }
                finally
                {
                    foreach (Process p in competitors)
                    {
                        p.Kill();
                        p.WaitForExit();
                        p.Dispose();
                    }
                }
            }

        Console.WriteLine($"\n### Training beside CPU-bound processes (LeNet-300-100, batch {Batch}, samples/s)\n");
        Console.WriteLine($"{Environment.ProcessorCount} processors; medians of {rounds} rounds of {seconds:F1} s per cell, alone / +1 / +2 alternating; " +
            $"/proc/loadavg before {loadBefore}, after {File.ReadAllText("/proc/loadavg").Trim()}. Fair shares for 2 threads on 2 cores: 0.67× and 0.50×.\n");
        Console.WriteLine("| trainer | alone | +1 competitor | ratio | +2 competitors | ratio |\n|---|---|---|---|---|---|");
        for (int t = 0; t < trainers.Count; t++)
        {
            double alone = Statistics.Median(samples[t, 0]), one = Statistics.Median(samples[t, 1]), two = Statistics.Median(samples[t, 2]);
            Console.WriteLine($"| {trainers[t].Name} | {alone:F0} | {one:F0} | {one / alone:F2}× | {two:F0} | {two / alone:F2}× |");
        }
    }

    private static Process StartBusyLoop()
    {
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("while :; do :; done");
        return Process.Start(info)!;
    }

    /// <summary>One warm LeNet-300-100 training (forward, softmax cross-entropy, backward, SGD with momentum) on synthetic batches.</summary>
    private sealed class Trainer
    {
        private readonly SequentialNetwork _network;
        private readonly Optimizer _optimizer;
        private readonly SoftmaxCrossEntropyLoss _loss = new();
        private readonly float[][] _inputs, _labels;
        private int _step;

        public Trainer(WorkerPool pool)
        {
            _network = new SequentialNetwork([.. Layers.LeNet300100(), Layers.Dense(10)], [784],
                new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 42));
            _network.EnsureCapacity(Batch);
            _optimizer = new SgdOptimizerOptions { LearningRate = 0.01f, Momentum = 0.9f }.Create(_network.Parameters, pool);
            var random = new Random(7);
            _inputs = [.. Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, Batch * 784).Select(_ => random.NextSingle()).ToArray())];
            _labels = [.. Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, Batch).Select(_ => (float)random.Next(10)).ToArray())];
        }

        /// <summary>Trains for <paramref name="seconds"/>; returns samples/s.</summary>
        public double Measure(double seconds)
        {
            long steps = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                int i = _step++ % _inputs.Length;
                _inputs[i].CopyTo(_network.Input, 0);
                float[] output = _network.Forward(Batch, training: true);
                _loss.Compute(output, _labels[i], Batch, 10, _network.OutputGradient);
                _network.Backward(Batch);
                _optimizer.Step(0.01f);
                steps++;
            }

            return steps * Batch / clock.Elapsed.TotalSeconds;
        }
    }

    /// <summary>
    /// PyTorch's training step as build/bench_pytorch.py times it (its <c>bench_train</c>), in one Python process kept
    /// for the run: each line written to it is a duration, each line read back the samples/s.
    /// </summary>
    private sealed class PyTorchTrainer : IDisposable
    {
        private const string Server = """
            import sys, torch
            sys.path.insert(0, sys.argv[1])
            import bench_pytorch
            torch.set_num_threads(int(sys.argv[2]))
            print(torch.__version__, flush=True)
            for line in sys.stdin:
                print(bench_pytorch.bench_train("lenet", 64, float(line)), flush=True)
            """;

        private readonly Process _python;

        public PyTorchTrainer(string benchScript, int threads)
        {
            // bench-contention.sh puts OpenBLAS first on LD_LIBRARY_PATH (as bench-pytorch.sh does); it is inherited.
            var info = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add(Server);
            info.ArgumentList.Add(Path.GetDirectoryName(Path.GetFullPath(benchScript))!);
            info.ArgumentList.Add(threads.ToString(System.Globalization.CultureInfo.InvariantCulture));
            _python = Process.Start(info)!;
            Version = _python.StandardOutput.ReadLine() ?? throw new InvalidOperationException("PyTorch did not start.");
        }

        public string Version { get; }

        public double Measure(double seconds)
        {
            _python.StandardInput.WriteLine(seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return double.Parse(_python.StandardOutput.ReadLine() ?? throw new InvalidOperationException("PyTorch stopped."), System.Globalization.CultureInfo.InvariantCulture);
        }

        public void Dispose()
        {
            _python.StandardInput.Close();
            _python.WaitForExit();
            _python.Dispose();
        }
    }
}
