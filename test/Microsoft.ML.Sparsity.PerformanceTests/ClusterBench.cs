using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.Sparsity.Distributed;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Sweeps;
using Orleans;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// What running a trial on a cluster costs beyond training it: a trial run on a worker (a silo in this process, reached
/// through its gateway over loopback TCP, as a coordinator reaches a worker), the coordinator's wall time (until it holds
/// the model) against the seconds the worker spent on the trial, measured in the same run: the difference is the
/// scheduling (placement, activation, the per-epoch question), the result's transfer (the model file's bytes) and its
/// load; then the journal's write. Also the raw costs: a grain call, a journal record.
/// </summary>
internal static class ClusterBench
{
    public static void Run(int rounds, string cluster)
    {
        using var worker = SparsityCluster.CreateWorker(cluster, address: System.Net.IPAddress.Loopback);
        worker.StartAsync().GetAwaiter().GetResult();
        using var client = SparsityCluster.ConnectAsync(cluster, TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        var grains = client.Services.GetRequiredService<IClusterClient>();
        var ml = new MLContext(1);
        var sweep = ml.Sparsity().CreateSweep(new SparsitySweepOptions { MaxTrials = 1 });
        Console.WriteLine($"Cluster overhead per trial: one worker silo and the coordinator in this process ({cluster}), {Environment.ProcessorCount} processors, medians of {rounds} alternating rounds (/proc/loadavg {File.ReadAllText("/proc/loadavg").Trim()}).");
        Console.WriteLine("| trial | epochs | on the worker | coordinator's wall time | overhead | overhead / trial | model bytes | model load | journal write |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (name, layers, examples, epochs) in new (string, LayerDefinition[], int, int)[]
        {
            ("dense 32, 1,000 examples", [Layers.Dense(32), Layers.ReLU()], 1_000, 1),
            ("LeNet-300-100 90% GMP, 6,000 examples", Layers.LeNet300100(), 6_000, 2),
            ("LeNet-300-100 90% GMP, 30,000 examples", Layers.LeNet300100(), 30_000, 2),
        })
        {
            var data = new SweepDataReference(SweepDataReference.FashionMnist, Examples: examples);
            var (train, validation) = data.Load(1);
            string hash = SparsitySweep.Fingerprint(train, validation);
            var settings = new TrialSettings(SweepMethod.GradualMagnitude, 0.9, "unstructured", "ERK", epochs, 0.05, 1, 7);
            using var dispatcher = new WorkerDispatcher(grains, 1, TimeSpan.FromSeconds(30));
            var context = WorkContext.Create(data, 1, hash, 1);
            var remote = new ClusterTrialRunner(grains, dispatcher, (i, s) => TrialWorkItem.Create(i, s, context, layers, 64), sweep.Pool);
            var journal = new ClusterSweepJournal(grains, $"bench-{Guid.NewGuid():N}", ["bench"], sweep.Pool);
            remote.RunOnWorker(0, settings, (_, _) => true, CancellationToken.None); // the worker loads the data once
            var worked = new List<double>();
            var wall = new List<double>();
            var overheads = new List<double>();
            var loads = new List<double>();
            var writes = new List<double>();
            long bytes = 0;
            for (int round = 0; round < rounds; round++)
            {
                var clock = Stopwatch.StartNew();
                var result = remote.RunOnWorker(0, settings, (_, _) => true, CancellationToken.None);
                double total = clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                var model = (Microsoft.ML.Sparsity.Models.NeuralNetworkMulticlassModel)Microsoft.ML.Sparsity.Serialization.ModelFile.FromBytes(result.Model!, sweep.Pool);
                double load = clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                var trial = journal.Write(round, settings, SweepTrialStatus.Completed, new TrialOutcome(result.Curve, model, result.Sparsity, result.Model), TimeSpan.Zero, null);
                writes.Add(clock.Elapsed.TotalMilliseconds);
                bytes = trial.Bytes ?? 0;
                worked.Add(result.Seconds * 1000);
                wall.Add(total + load);
                loads.Add(load);
                overheads.Add(total + load - result.Seconds * 1000);
            }
            double w = Statistics.Median(worked), overhead = Statistics.Median(overheads);
            Console.WriteLine($"| {name} | {epochs} | {w:F0} ms | {Statistics.Median(wall):F0} ms | {overhead:F1} ms | {overhead / w:P1} | {bytes:N0} | {Statistics.Median(loads):F1} ms | {Statistics.Median(writes):F1} ms |");
        }

        // The raw costs: a round trip to a grain, and a journal record's commit.
        var probe = grains.GetGrain<IManagementGrain>(0);
        probe.GetHosts(true).GetAwaiter().GetResult();
        var calls = new List<double>();
        for (int i = 0; i < 200; i++)
        {
            var clock = Stopwatch.StartNew();
            probe.GetHosts(true).GetAwaiter().GetResult();
            calls.Add(clock.Elapsed.TotalMilliseconds);
        }
        var records = grains.GetGrain<ISweepJournalGrain>($"bench-{Guid.NewGuid():N}");
        records.Open(["bench"]).GetAwaiter().GetResult();
        var commits = new List<double>();
        for (int i = 0; i < 200; i++)
        {
            string record = TrialRecord.Of(new TrialSettings(SweepMethod.RigL, 0.9, "unstructured", "ERK", 20, 0.05, 1, i), SweepTrialStatus.Completed,
                new TrialOutcome([.. Enumerable.Range(0, 20).Select(e => 0.8 + e * 0.001)], null, 0.9), 300_000, TimeSpan.FromSeconds(12.5), null).ToJson();
            var clock = Stopwatch.StartNew();
            records.Commit(i, record).GetAwaiter().GetResult();
            commits.Add(clock.Elapsed.TotalMilliseconds);
        }
        var loading = Stopwatch.StartNew();
        var (all, held) = new SweepDataReference(SweepDataReference.FashionMnist).Load(1);
        double loaded = loading.Elapsed.TotalMilliseconds;
        SparsitySweep.Fingerprint(all, held);
        Console.WriteLine();
        Console.WriteLine($"A worker's first trial of a sweep loads its data: all of Fashion-MNIST's training split ({all.Count + held.Count:N0} examples) read and split in {loaded:F0} ms, hashed in {loading.Elapsed.TotalMilliseconds - loaded:F0} ms.");
        Console.WriteLine($"A grain call's round trip: median {Statistics.Median(calls):F3} ms. A journal record's commit (the journal holding up to 200 records, its whole state written each time): median {Statistics.Median(commits):F2} ms, last {commits[^1]:F2} ms.");
        client.StopAsync().GetAwaiter().GetResult();
        worker.StopAsync().GetAwaiter().GetResult();
    }
}
