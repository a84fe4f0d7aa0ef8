using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Sweeps;
using Orleans.TestingHost;
using Xunit;

namespace Microsoft.ML.Sparsity.Distributed.Tests;

/// <summary>
/// Sweeps on an in-process cluster of three workers against the same sweep on one machine: the same trials, curves,
/// models' sizes and front; with a worker killed mid-trial and another joining; a coordinator stopped and started again;
/// refusals and failures.
/// </summary>
[Trait("Tier", "NativeOnly")]
public sealed class ClusterSweepTests
{
    /// <summary>The first 1,500 Fashion-MNIST training examples, a sixth held out.</summary>
    internal static readonly SweepDataReference Data = new(SweepDataReference.FashionMnist, Examples: 1500);

    /// <summary>Six trials of dense, gradual, random and SET training of a 32-unit network for 4 epochs, rungs at 1 and 3.</summary>
    private static SparsitySweepOptions Options() => new()
    {
        SearchSpace = new SweepSearchSpace
        {
            Methods = [SweepMethod.Dense, SweepMethod.GradualMagnitude, SweepMethod.Random, SweepMethod.Set],
            Sparsities = [0.9],
            Patterns = [SparsityPattern.Unstructured],
            Allocations = [LayerAllocation.ErdosRenyiKernel],
            Epochs = [4],
        },
        Layers = [Layers.Dense(32), Layers.ReLU()],
        Tuner = SweepTuner.SuccessiveHalving,
        FirstRungEpochs = 1,
        ReductionFactor = 3,
        MaxTrials = 6,
        Objectives = SweepObjectives.Bytes,
        Seed = 3,
    };

    private static SparsitySweep Sweep(SparsitySweepOptions? options = null) => new MLContext(seed: 1).Sparsity().CreateSweep(options ?? Options());

    /// <summary>
    /// The sweep on this machine as a user splits the data there (ML.NET's <c>TrainTestSplit</c> with the sweep's seed):
    /// what every cluster sweep must equal.
    /// </summary>
    private static readonly Lazy<SweepResult> OnOneMachine = new(() =>
    {
        var ml = new MLContext(seed: 1);
        var split = ml.Data.TrainTestSplit(ml.Data.TakeRows(ml.Data.LoadFashionMnist(FashionMnistSplit.Train), 1500), 1.0 / 6, seed: Options().Seed);
        return Sweep().Run(split.TrainSet, split.TestSet);
    });

    private static ClusterSweepOptions OnCluster(string name) => new() { SweepName = name, Data = Data, WorkerWaitTimeout = TimeSpan.FromSeconds(30) };

    /// <summary>Equal trial by trial: status, every epoch's accuracy, sparsity and model size; and the same front.</summary>
    private static void AssertSame(SweepResult expected, SweepResult actual)
    {
        Assert.Equal(expected.Trials.Select(t => t.Index), actual.Trials.Select(t => t.Index));
        foreach (var (e, a) in expected.Trials.Zip(actual.Trials))
        {
            Assert.Equal(e.Settings, a.Settings);
            Assert.Equal(e.Status, a.Status);
            Assert.Equal(e.ValidationCurve, a.ValidationCurve);
            Assert.Equal(e.Sparsity, a.Sparsity);
            Assert.Equal(e.Bytes, a.Bytes);
        }
        Assert.Equal(expected.ParetoFront.Select(t => t.Index), actual.ParetoFront.Select(t => t.Index));
        Assert.Contains(actual.Trials, t => t.Status == SweepTrialStatus.Stopped);
        Assert.Contains(actual.Trials, t => t.Status == SweepTrialStatus.Completed);
    }

    /// <summary>The journal's trial indices, in order.</summary>
    private static async Task<int[]> Journal(TestCluster cluster, string name) =>
        [.. (await cluster.Client.GetGrain<ISweepJournalGrain>(name).Records()).Keys.Order()];

    [Fact]
    public async Task A_sweep_on_three_workers_equals_the_sweep_on_one_machine_and_journals_each_trial_once()
    {
        await using var cluster = await TestClusters.Start();
        var result = Sweep().RunOnCluster(cluster.Client, OnCluster("same"));
        AssertSame(OnOneMachine.Value, result);
        var records = await Journal(cluster, "same");
        Assert.Equal(Enumerable.Range(0, 6), records);
        Assert.All(cluster.Silos, silo => Assert.True(TestClusters.WorkStarted(cluster, silo) > 0, $"{silo.SiloAddress} ran no trial"));
        // The journal's models are the trials' models.
        var resumed = Sweep().RunOnCluster(cluster.Client, OnCluster("same"));
        AssertSame(result, resumed);
        Assert.Equal(6, cluster.Silos.Sum(silo => TestClusters.WorkStarted(cluster, silo)));
        foreach (var (a, b) in result.Trials.Zip(resumed.Trials).Where(p => p.First.Status == SweepTrialStatus.Completed))
            Assert.Equal(ModelFile.ToBytes(a.GetModel()), ModelFile.ToBytes(b.GetModel()));
    }

    [Fact]
    public async Task Killing_a_worker_mid_trial_runs_its_trial_again_and_a_worker_that_joins_takes_trials()
    {
        await using var cluster = await TestClusters.Start();
        var victim = cluster.SecondarySilos[0];
        int killed = 0, victimStarted = 0;
        // The first epoch's report: every worker has a trial running (three trials, one per worker) and none has ended.
        // The report holds the sweep's decisions (and so every trial at its first epoch) while a worker joins and the
        // victim is killed, so the newcomer joins while trials wait for workers.
        var progress = new Training.SynchronousProgress<SweepProgress>(p =>
        {
            if (p.Epoch != 1 || Interlocked.Exchange(ref killed, 1) != 0) return;
            Assert.True(SpinWait.SpinUntil(() => TestClusters.WorkStarted(cluster, victim) > 0, TimeSpan.FromSeconds(30)));
            victimStarted = TestClusters.WorkStarted(cluster, victim);
            Task.Run(async () =>
            {
                var newcomer = await cluster.StartAdditionalSiloAsync();
                await cluster.KillSiloAsync(victim);
                // Until the membership shows both (the dispatcher reads it every 250 ms), and the lost trial has a worker.
                var management = cluster.Client.GetGrain<IManagementGrain>(0);
                for (var hosts = await management.GetHosts(true); !hosts.ContainsKey(newcomer.SiloAddress) || hosts.ContainsKey(victim.SiloAddress); hosts = await management.GetHosts(true))
                    await Task.Delay(100);
                for (int i = 0; i < 100 && TestClusters.WorkStarted(cluster, newcomer) == 0; i++) await Task.Delay(100);
            }).Wait();
        });
        var result = Sweep().RunOnCluster(cluster.Client, OnCluster("kill"), progress);
        AssertSame(OnOneMachine.Value, result);
        var records = await Journal(cluster, "kill");
        Assert.Equal(Enumerable.Range(0, 6), records);
        // The victim's trial ran again: the living workers ran every trial once.
        Assert.Equal(1, victimStarted);
        Assert.Equal(6, cluster.Silos.Sum(silo => TestClusters.WorkStarted(cluster, silo)));
        var newcomer = cluster.Silos[^1];
        Assert.DoesNotContain(newcomer.SiloAddress, new[] { victim.SiloAddress, cluster.Primary!.SiloAddress });
        Assert.True(TestClusters.WorkStarted(cluster, newcomer) > 0, "the worker that joined ran no trial");
    }

    [Fact]
    public async Task A_coordinator_stopped_mid_sweep_resumes_from_the_clusters_journal()
    {
        await using var cluster = await TestClusters.Start();
        using var stop = new CancellationTokenSource();
        var progress = new Training.SynchronousProgress<SweepProgress>(p =>
        {
            if (p.Status is not null && p.FinishedTrials >= 2) stop.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => Sweep().RunOnCluster(cluster.Client, OnCluster("resume"), progress, stop.Token));
        int before = (await Journal(cluster, "resume")).Length;
        Assert.InRange(before, 2, 5);
        // A new coordinator: a new client.
        await cluster.KillClientAsync();
        await cluster.InitializeClientAsync();
        var result = Sweep().RunOnCluster(cluster.Client, OnCluster("resume"));
        AssertSame(OnOneMachine.Value, result);
        Assert.Equal(Enumerable.Range(0, 6), await Journal(cluster, "resume"));
    }

    [Fact]
    public async Task A_journal_write_the_storage_failed_is_written_again_on_retry()
    {
        await using var cluster = await TestClusters.Start(1);
        var sweep = Sweep();
        var journal = new ClusterSweepJournal(cluster.Client, "storage-down", ["definition"], sweep.Pool);
        var settings = sweep.TrialSettings(0);
        var model = new MLContext(1).MulticlassClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(4), Layers.ReLU()], epochs: 1)
            .Fit(new DatasetDataView(Data.Load(3).Train));
        TestClusters.FailingWrites = 1; // the model's first write fails
        journal.Write(0, settings, SweepTrialStatus.Completed, new TrialOutcome([0.5], model, 0.0), TimeSpan.FromSeconds(1), null);
        TestClusters.FailingWrites = 1; // the record's first write fails
        journal.Write(1, settings, SweepTrialStatus.Stopped, new TrialOutcome([0.4], null), TimeSpan.FromSeconds(1), null);
        // Fresh activations read what the storage holds: both records, and the model.
        await cluster.DeactivateAsync(cluster.Client.GetGrain<ISweepJournalGrain>("storage-down"));
        await cluster.DeactivateAsync(cluster.Client.GetGrain<ITrialModelGrain>("storage-down/0000"));
        var finished = new ClusterSweepJournal(cluster.Client, "storage-down", ["definition"], sweep.Pool).ReadFinished(_ => settings);
        Assert.Equal([0, 1], finished.Keys.Order());
        Assert.Equal(ModelFile.ToBytes(model), ModelFile.ToBytes(finished[0].GetModel()));
    }

    [Fact]
    public async Task A_sweep_on_a_cluster_starts_no_trial_after_its_time_budget()
    {
        await using var cluster = await TestClusters.Start(1);
        var options = Options();
        options.MaxTime = TimeSpan.FromTicks(1);
        var result = Sweep(options).RunOnCluster(cluster.Client, OnCluster("late"));
        Assert.Empty(result.Trials);
        Assert.Empty(await Journal(cluster, "late"));
        Assert.Equal(0, TestClusters.WorkStarted(cluster, cluster.Silos[0]));
    }

    [Fact]
    public async Task A_journal_of_another_sweep_is_refused_by_name()
    {
        await using var cluster = await TestClusters.Start(1);
        var options = Options();
        options.MaxTrials = 1;
        options.SearchSpace.Methods = [SweepMethod.Dense];
        Sweep(options).RunOnCluster(cluster.Client, OnCluster("mine"));
        options.Seed = 4;
        var e = Assert.Throws<ArgumentException>(() => Sweep(options).RunOnCluster(cluster.Client, OnCluster("mine")));
        Assert.Contains("'mine'", e.Message);
        Assert.Contains("seed: 3", e.Message);
        Assert.Contains("seed: 4", e.Message);
    }

    /// <summary>The context of this class's sweeps' work (the data split with seed 3, one trial per worker).</summary>
    private static WorkContext Context()
    {
        var (train, validation) = Data.Load(3);
        return WorkContext.Create(Data, 3, SparsitySweep.Fingerprint(train, validation), 1);
    }

    /// <summary>Trial i's work item, as <paramref name="changed"/> makes it.</summary>
    private static ClusterTrialRunner Runner(TestCluster cluster, WorkerDispatcher dispatcher, Func<int, TrialWorkItem, TrialWorkItem> changed)
    {
        var context = Context();
        return new ClusterTrialRunner(cluster.Client, dispatcher, (index, settings) => changed(index, TrialWorkItem.Create(index, settings, context, Options().Layers, 64)), Sweep().Pool);
    }

    [Fact]
    public async Task A_worker_refuses_another_package_version_or_other_data_naming_both()
    {
        await using var cluster = await TestClusters.Start(1);
        var context = Context();
        var item = TrialWorkItem.Create(0, Sweep().TrialSettings(0), context, Options().Layers, 64);
        var observer = cluster.Client.CreateObjectReference<IEpochObserver>(new Always());
        Task<TrialWorkResult> Run(WorkContext changed) => cluster.Client.GetGrain<IWorkerGrain>(Guid.NewGuid()).RunTrial(item with { Context = changed }, observer);

        var version = await Assert.ThrowsAsync<WorkerMismatchException>(() => Run(context with { PackageVersion = "0.0.1-other" }));
        Assert.Contains("0.0.1-other", version.Message);
        Assert.Contains(ModelFile.PackageVersion, version.Message);

        var data = await Assert.ThrowsAsync<WorkerMismatchException>(() => Run(context with { DataHash = "ABC123" }));
        Assert.Contains("ABC123", data.Message);
        Assert.Contains(context.DataHash, data.Message);

        // A worker that cannot load the data refuses the work too (the others may have it), naming the reference.
        var missing = await Assert.ThrowsAsync<WorkerMismatchException>(() => Run(context with { Data = new SweepDataReference("/no/such/folder") }));
        Assert.Contains("cannot load the data '/no/such/folder", missing.Message);
    }

    [Fact]
    public async Task A_sweep_no_worker_will_run_stops_with_the_workers_reasons()
    {
        await using var cluster = await TestClusters.Start(2);
        using var dispatcher = new WorkerDispatcher(cluster.Client, 1, TimeSpan.FromSeconds(1));
        var runner = Runner(cluster, dispatcher, (_, item) => item with { Context = item.Context with { PackageVersion = "9.9.9" } });
        var e = Assert.Throws<InvalidOperationException>(() => Sweep().Run(runner, null, 2, null, CancellationToken.None));
        Assert.Contains("9.9.9", e.Message);
        foreach (var silo in cluster.Silos) Assert.Contains(silo.SiloAddress.ToString(), e.Message);
    }

    [Fact]
    public async Task A_trial_whose_options_a_worker_rejects_fails_and_the_sweep_goes_on()
    {
        await using var cluster = await TestClusters.Start(2);
        using var dispatcher = new WorkerDispatcher(cluster.Client, 1, TimeSpan.FromSeconds(30));
        var runner = Runner(cluster, dispatcher, (index, item) =>
            index == 1 ? item with { Settings = System.Text.Json.JsonSerializer.Serialize(item.TrialSettings() with { Pattern = "7:3" }) } : item);
        var result = Sweep().Run(runner, null, 3, null, CancellationToken.None);
        Assert.Equal(6, result.Trials.Count);
        var failed = Assert.Single(result.Trials, t => t.Status == SweepTrialStatus.Failed);
        Assert.Equal(1, failed.Index);
        Assert.Contains("7:3", failed.Error);
        Assert.Contains(result.Trials, t => t.Status == SweepTrialStatus.Completed);
    }

    [Fact]
    public async Task An_unreachable_cluster_times_out_naming_its_address()
    {
        var redis = await Assert.ThrowsAsync<TimeoutException>(() => SparsityCluster.ConnectAsync("redis://127.0.0.1:1", TimeSpan.FromSeconds(3)));
        Assert.Contains("redis://127.0.0.1:1", redis.Message);
        Assert.Throws<ArgumentException>(() => SparsityCluster.CreateWorker("http://example"));
    }

    [Fact]
    public async Task Bad_cluster_options_are_named()
    {
        await using var cluster = await TestClusters.Start(1);
        var client = cluster.Client;
        Assert.Equal("SweepName", Assert.Throws<ArgumentException>(() => Sweep().RunOnCluster(client, new ClusterSweepOptions { SweepName = "a b", Data = Data })).ParamName);
        Assert.Equal("Data", Assert.Throws<ArgumentNullException>(() => Sweep().RunOnCluster(client, new ClusterSweepOptions { SweepName = "a" })).ParamName);
        Assert.Equal("ValidationFraction", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Sweep().RunOnCluster(client, new ClusterSweepOptions { SweepName = "a", Data = Data with { ValidationFraction = 1 } })).ParamName);
        Assert.Equal("TrialsPerWorker", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Sweep().RunOnCluster(client, new ClusterSweepOptions { SweepName = "a", Data = Data, TrialsPerWorker = 0 })).ParamName);
        var withFolder = Options();
        withFolder.JournalFolder = "/tmp/x";
        Assert.Contains("JournalFolder", Assert.Throws<ArgumentException>(() => Sweep(withFolder).RunOnCluster(client, OnCluster("a"))).Message);
    }

    [Fact]
    public void A_split_that_leaves_a_part_empty_names_the_examples()
    {
        // TrainTestSplit draws each row's part: of 12 examples with 1/6 held out, about one seed in nine holds out none.
        // Every seed either gives two non-empty parts or says so, naming Examples.
        var tiny = Data with { Examples = 12 };
        int refused = 0;
        for (int seed = 1; seed <= 40; seed++)
        {
            try
            {
                var (train, validation) = tiny.Load(seed);
                Assert.Equal(12, train.Count + validation.Count);
                Assert.True(train.Count > 0 && validation.Count > 0);
            }
            catch (ArgumentException e)
            {
                Assert.Equal("Examples", e.ParamName);
                Assert.Contains("empty", e.Message);
                refused++;
            }
        }
        Assert.InRange(refused, 1, 39); // both outcomes occur among these seeds
    }

    private sealed class Always : IEpochObserver
    {
        public Task<bool?> Epoch(int epoch, double accuracy) => Task.FromResult<bool?>(true);
    }
}
