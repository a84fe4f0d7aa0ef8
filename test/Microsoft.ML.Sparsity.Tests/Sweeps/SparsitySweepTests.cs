using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Sweeps;
using Microsoft.ML.Sparsity.Training;
using Microsoft.ML.Sparsity.Tests.Masks;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.Sweeps;

/// <summary>Sweeps: successive halving on known curves, journal and resume, the front and the constraints, bad input.</summary>
public sealed class SparsitySweepTests
{
    /// <summary>Trial i's accuracy after epoch e: Levels[i] + 0.01·e (so the order of the trials is the same at every rung).</summary>
    private static readonly double[] Levels = [0.50, 0.60, 0.40, 0.70, 0.55, 0.65, 0.30, 0.80, 0.58];

    private static readonly Lazy<NeuralNetworkMulticlassModel> TinyModel = new(() =>
        new MLContext(seed: 1).MulticlassClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(4), Layers.ReLU()], epochs: 1).Fit(MaskedTrainingTests.SyntheticData(64)));

    /// <summary>Follows the known curves, stops when told, and counts the trials it ran; optionally cancels the sweep when a trial starts.</summary>
    private sealed class FakeRunner(Func<int, bool>? cancelAt = null, CancellationTokenSource? cancel = null) : ITrialRunner
    {
        public System.Collections.Concurrent.ConcurrentBag<int> Ran { get; } = [];

        public TrialOutcome Run(int index, TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation)
        {
            int trial = index;
            if (cancelAt?.Invoke(trial) == true) cancel!.Cancel();
            cancellation.ThrowIfCancellationRequested();
            Ran.Add(trial);
            var curve = new List<double>();
            for (int epoch = 1; epoch <= settings.Epochs; epoch++)
            {
                Thread.Sleep(Random.Shared.Next(3)); // the parallel trials finish in a scrambled order
                curve.Add(Levels[trial] + 0.01 * epoch);
                if (!keepGoing(epoch, curve[^1])) return new TrialOutcome(curve, null);
            }
            return new TrialOutcome(curve, TinyModel.Value);
        }
    }

    /// <summary>Gradual pruning to 90% (ERK): every trial in one bracket.</summary>
    private static SparsitySweepOptions Options(int parallel, string? journal = null) => new()
    {
        SearchSpace = new SweepSearchSpace { Methods = [SweepMethod.GradualMagnitude], Sparsities = [0.9], Allocations = [LayerAllocation.ErdosRenyiKernel], Epochs = [9] },
        Tuner = SweepTuner.SuccessiveHalving,
        ReductionFactor = 3,
        FirstRungEpochs = 1,
        MaxTrials = Levels.Length,
        ParallelTrials = parallel,
        Objectives = SweepObjectives.Bytes,
        JournalFolder = journal,
        Seed = 4,
    };

    private static SparsitySweep Sweep(SparsitySweepOptions options) => new MLContext(seed: 1).Sparsity().CreateSweep(options);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void SuccessiveHalvingStopsTheTrialsOutsideTheTopThirdOfTheirRung(int parallel)
    {
        var result = Sweep(Options(parallel)).Run(new FakeRunner(), "data", null, CancellationToken.None);
        // Rungs at epochs 1 and 3 (η = 3). At epoch 1 trial i goes on if fewer than max(1, ⌊(i+1)/3⌋) earlier trials are as good:
        // 0, 1, 3, 5 (second of six) and 7 go on; 2, 4, 6, 8 (fifth of nine) stop. At epoch 3 among 0, 1, 3, 5, 7: 5 is second of four and stops.
        int[] stoppedAt = [.. result.Trials.Select(t => t.Status == SweepTrialStatus.Stopped ? t.ValidationCurve.Count : 0)];
        Assert.Equal([0, 0, 1, 0, 1, 3, 1, 0, 1], stoppedAt);
        Assert.All(result.Trials.Where(t => t.Status == SweepTrialStatus.Completed), t => Assert.Equal(9, t.ValidationCurve.Count));
        Assert.Equal(Enumerable.Range(0, 9), result.Trials.Select(t => t.Index));
    }

    [Fact]
    public void ATrialCompetesOnlyWithTrialsOfItsPatternAndSparsity()
    {
        // Dense and 90% and 98% pruning: three brackets. Each bracket's trials are stopped as a sweep of that bracket alone
        // stops them, whatever the others (the dense trials are better than every sparse one here).
        var options = Options(2);
        options.SearchSpace = new SweepSearchSpace { Methods = [SweepMethod.Dense, SweepMethod.GradualMagnitude], Sparsities = [0.9, 0.98], Allocations = [LayerAllocation.ErdosRenyiKernel], Epochs = [9] };
        options.MaxTrials = Levels.Length;
        var sweep = Sweep(options);
        var result = sweep.Run(new FakeRunner(), "data", null, CancellationToken.None);
        var brackets = result.Trials.GroupBy(t => (t.Settings.Method, t.Settings.Sparsity)).ToList();
        Assert.True(brackets.Count >= 2, "the draw gave one bracket");
        foreach (var bracket in brackets)
        {
            // The bracket alone, by the rule (top max(1, ⌊n/3⌋) of the n that reached the rung so far, earlier trials first on ties).
            var reached = new Dictionary<int, List<double>> { [1] = [], [3] = [] };
            foreach (var trial in bracket.OrderBy(t => t.Index))
            {
                int expectedStop = 0;
                foreach (int rung in new[] { 1, 3 })
                {
                    double accuracy = Levels[trial.Index] + 0.01 * rung;
                    bool goesOn = reached[rung].Count(a => a >= accuracy) < Math.Max(1, (reached[rung].Count + 1) / 3);
                    reached[rung].Add(accuracy);
                    if (!goesOn) { expectedStop = rung; break; }
                }
                Assert.Equal(expectedStop, trial.Status == SweepTrialStatus.Stopped ? trial.ValidationCurve.Count : 0);
            }
            Assert.Equal(SweepTrialStatus.Completed, bracket.OrderBy(t => t.Index).First().Status);
        }
    }

    [Fact]
    public void RandomSearchTrainsEveryTrialToTheEnd()
    {
        var options = Options(2);
        options.Tuner = SweepTuner.Random;
        var result = Sweep(options).Run(new FakeRunner(), "data", null, CancellationToken.None);
        Assert.All(result.Trials, t => Assert.Equal((SweepTrialStatus.Completed, 9), (t.Status, t.ValidationCurve.Count)));
    }

    [Fact]
    public void AResumedSweepRunsOnlyTheUnfinishedTrialsAndEndsAsAnUninterruptedOne()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sweep-{Guid.NewGuid():N}");
        try
        {
            var whole = Sweep(Options(2)).Run(new FakeRunner(), "data", null, CancellationToken.None);

            using var cancel = new CancellationTokenSource();
            var first = new FakeRunner(trial => trial == 6, cancel);
            Assert.ThrowsAny<OperationCanceledException>(() => Sweep(Options(2, folder)).Run(first, "data", null, cancel.Token));
            string[] records = [.. Directory.EnumerateFiles(folder, "trial-*.json").Order()];
            Assert.InRange(records.Length, 5, 6); // 0–5 (5 may have been cut short by the cancellation)
            var written = records.ToDictionary(r => r, File.GetLastWriteTimeUtc);

            var second = new FakeRunner();
            var resumed = Sweep(Options(1, folder)).Run(second, "data", null, CancellationToken.None);
            Assert.Empty(second.Ran.Intersect(first.Ran.Where(t => records.Contains(Path.Combine(folder, $"trial-{t:D4}.json")))));
            Assert.Equal(Levels.Length - records.Length, second.Ran.Count);
            Assert.All(written, w => Assert.Equal(w.Value, File.GetLastWriteTimeUtc(w.Key)));
            Assert.Equal(whole.Trials.Select(t => (t.Index, t.Status, t.ValidationCurve.Count)), resumed.Trials.Select(t => (t.Index, t.Status, t.ValidationCurve.Count)));
            Assert.Equal(whole.ParetoFront.Select(t => t.Index), resumed.ParetoFront.Select(t => t.Index));
            // A trial read back from the journal loads its model.
            Assert.Equal(TinyModel.Value.ClassCount, resumed.Trials[0].GetModel().ClassCount);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void ASweepKilledMidwayResumesWithoutRerunningFinishedTrialsAndEndsAsAnUninterruptedOne()
    {
        string killed = Path.Combine(Path.GetTempPath(), $"sweep-{Guid.NewGuid():N}"), whole = killed + "-whole";
        try
        {
            // A child process (this test assembly run as a program) runs the sweep; it is killed (SIGKILL) after its third trial ends.
            var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string argument in new[] { "exec", typeof(SparsitySweepTests).Assembly.Location, Program.Sweep, killed }) start.ArgumentList.Add(argument);
            var ended = new List<int>();
            using (var child = System.Diagnostics.Process.Start(start)!)
            {
                while (ended.Count < 3 && child.StandardOutput.ReadLine() is { } line)
                    if (line.StartsWith(SweepChild.Ended, StringComparison.Ordinal)) ended.Add(int.Parse(line[SweepChild.Ended.Length..], System.Globalization.CultureInfo.InvariantCulture));
                child.Kill(entireProcessTree: true);
                Assert.True(child.WaitForExit(60_000));
                Assert.True(ended.Count == 3, $"the child ended early: {child.StandardError.ReadToEnd()}");
            }
            var records = Directory.EnumerateFiles(killed, "trial-*.json").ToDictionary(f => f, File.ReadAllBytes);
            Assert.InRange(records.Count, 3, 9); // killed in the middle: some trials had not ended

            var ml = new MLContext(seed: 1);
            var (train, validation) = SweepChild.Data(ml);
            var rerun = new System.Collections.Concurrent.ConcurrentBag<int>();
            var resumed = ml.Sparsity().CreateSweep(SweepChild.Options(killed)).Run(train, validation, new SynchronousProgress<SweepProgress>(p => rerun.Add(p.Trial)));
            var journaled = records.Keys.Select(f => int.Parse(Path.GetFileNameWithoutExtension(f)["trial-".Length..], System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
            Assert.DoesNotContain(rerun, journaled.Contains);
            Assert.Equal(Enumerable.Range(0, 10).Except(journaled).Order(), rerun.Distinct().Order());
            Assert.All(records, r => Assert.Equal(r.Value, File.ReadAllBytes(r.Key)));

            var uninterrupted = ml.Sparsity().CreateSweep(SweepChild.Options(whole)).Run(train, validation);
            Assert.Contains(uninterrupted.Trials, t => t.Status == SweepTrialStatus.Stopped);
            Assert.Equal(uninterrupted.Trials.Select(t => (t.Index, t.Status, string.Join(" ", t.ValidationCurve), t.Sparsity)),
                resumed.Trials.Select(t => (t.Index, t.Status, string.Join(" ", t.ValidationCurve), t.Sparsity)));
            Assert.Equal(uninterrupted.ParetoFront.Select(t => t.Index), resumed.ParetoFront.Select(t => t.Index));
        }
        finally
        {
            foreach (string folder in new[] { killed, whole })
                if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void AJournalOfAnotherSweepOrADamagedRecordIsRefusedNamingIt()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sweep-{Guid.NewGuid():N}");
        try
        {
            var options = Options(1, folder);
            options.MaxTrials = 2;
            Sweep(options).Run(new FakeRunner(), "data", null, CancellationToken.None);

            var other = Options(1, folder);
            other.Seed = 5;
            var error = Assert.Throws<ArgumentException>(() => Sweep(other).Run(new FakeRunner(), "data", null, CancellationToken.None));
            Assert.Equal("JournalFolder", error.ParamName);
            Assert.Contains("\"seed: 4\"", error.Message);
            Assert.Contains("\"seed: 5\"", error.Message);

            // A journal written by another version of the package is refused, naming both versions.
            string definition = Path.Combine(folder, "sweep.json");
            string current = $"package: {Microsoft.ML.Sparsity.Serialization.ModelFile.PackageVersion}";
            string written = File.ReadAllText(definition);
            var lines = System.Text.Json.Nodes.JsonNode.Parse(written)!["definition"]!.AsArray();
            int line = lines.Select(n => n!.GetValue<string>()).ToList().IndexOf(current);
            Assert.True(line >= 0, "the definition does not record the package version");
            lines[line] = "package: 0.0.1";
            File.WriteAllText(definition, lines.Root.ToJsonString());
            var version = Assert.Throws<ArgumentException>(() => Sweep(options).Run(new FakeRunner(), "data", null, CancellationToken.None));
            Assert.Contains("\"package: 0.0.1\"", version.Message);
            Assert.Contains($"\"{current}\"", version.Message);
            File.WriteAllText(definition, written);

            string record = Path.Combine(folder, "trial-0001.json");
            File.WriteAllText(record, "{\"settings\": ");
            var damaged = Assert.Throws<InvalidDataException>(() => Sweep(options).Run(new FakeRunner(), "data", null, CancellationToken.None));
            Assert.Contains(record, damaged.Message);
            Assert.Contains("delete it to run trial 1 again", damaged.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>A runner whose every trial throws.</summary>
    private sealed class FailingRunner : ITrialRunner
    {
        public TrialOutcome Run(int index, TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation) =>
            throw new InvalidDataException($"no data for seed {settings.Seed}");
    }

    [Fact]
    public void FailuresOfTheSweepItselfHaltItAndFailuresOfTrialsAreRecorded()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sweep-{Guid.NewGuid():N}");
        try
        {
            // A progress handler that throws halts the sweep with its own exception; the trial it interrupted is not
            // journaled as failed (a resume runs it again).
            var halted = Assert.Throws<TimeZoneNotFoundException>(() => Sweep(Options(2, folder)).Run(new FakeRunner(), "data",
                new SynchronousProgress<SweepProgress>(p => { if (p.Trial == 3 && p.Status is null) throw new TimeZoneNotFoundException("the handler's bug"); }), CancellationToken.None));
            Assert.Equal("the handler's bug", halted.Message);
            Assert.False(File.Exists(Path.Combine(folder, "trial-0003.json")));
            var resumed = Sweep(Options(2, folder)).Run(new FakeRunner(), "data", null, CancellationToken.None);
            Assert.Equal(Levels.Length, resumed.Trials.Count);
            Assert.DoesNotContain(resumed.Trials, t => t.Status == SweepTrialStatus.Failed);

            // A damaged model is found when the journal is read, naming the record to delete.
            string model = Path.Combine(folder, $"trial-{resumed.Trials.First(t => t.Status == SweepTrialStatus.Completed).Index:D4}.model");
            File.WriteAllBytes(model, File.ReadAllBytes(model)[..100]);
            var damaged = Assert.Throws<InvalidDataException>(() => Sweep(Options(2, folder)).Run(new FakeRunner(), "data", null, CancellationToken.None));
            Assert.Contains(Path.ChangeExtension(model, ".json"), damaged.Message);
            Assert.Contains("100 bytes where the record says", damaged.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        // Trials that throw are recorded as failed with their error; with none completed, Best says why.
        var failed = Sweep(Options(2)).Run(new FailingRunner(), "data", null, CancellationToken.None);
        Assert.All(failed.Trials, t => Assert.Equal(SweepTrialStatus.Failed, t.Status));
        Assert.StartsWith("InvalidDataException: no data for seed", failed.Trials[0].Error);
        var none = Assert.Throws<InvalidOperationException>(() => failed.Best(SweepGoal.HighestAccuracy));
        Assert.Contains("No trial completed", none.Message);
        Assert.Contains("no data for seed", none.Message);
        Assert.Equal("maxBytes", Assert.Throws<ArgumentOutOfRangeException>(() => failed.Best(SweepGoal.SmallestFile, maxBytes: -1)).ParamName);
    }

    [Fact]
    public void BadOptionsAreRefusedNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        Assert.Equal("Methods", Assert.Throws<ArgumentException>(() => ml.Sparsity().CreateSweep(new() { SearchSpace = new() { Methods = [] } })).ParamName);
        Assert.Equal("MaxTrials", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sparsity().CreateSweep(new() { MaxTrials = 0 })).ParamName);
        Assert.Equal("MaxTime", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sparsity().CreateSweep(new() { MaxTime = TimeSpan.Zero })).ParamName);
        Assert.Equal("Patterns", Assert.Throws<ArgumentException>(() => ml.Sparsity().CreateSweep(new() { SearchSpace = new() { Methods = [SweepMethod.NMFromScratch], Patterns = [SparsityPattern.Unstructured] } })).ParamName);
        Assert.Equal("Sparsities", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sparsity().CreateSweep(new() { SearchSpace = new() { Sparsities = [0.9, 1.0] } })).ParamName);
    }

    [Fact]
    public void ARealSweepMeasuresItsModelsAndItsFrontIsNotDominated()
    {
        var ml = new MLContext(seed: 1);
        var data = MaskedTrainingTests.SyntheticData(768);
        var split = ml.Data.TrainTestSplit(data, 0.25, seed: 1);
        var options = new SparsitySweepOptions
        {
            SearchSpace = new SweepSearchSpace
            {
                Methods = [SweepMethod.Dense, SweepMethod.GradualMagnitude, SweepMethod.NMFromScratch, SweepMethod.RigL],
                Sparsities = [0.5, 0.9],
                Epochs = [4],
            },
            Layers = [Layers.Dense(64), Layers.ReLU(), Layers.Dense(32), Layers.ReLU()],
            Tuner = SweepTuner.Random,
            MaxTrials = 6,
        };
        var sweep = ml.Sparsity().CreateSweep(options);
        var reports = new List<SweepProgress>();
        var result = sweep.Run(split.TrainSet, split.TestSet, new SynchronousProgress<SweepProgress>(reports.Add));
        Assert.Equal(6, result.Trials.Count);
        Assert.Equal(SweepMethod.Dense, result.Trials[0].Settings.Method);
        foreach (var trial in result.Trials)
        {
            Assert.Equal(SweepTrialStatus.Completed, trial.Status);
            Assert.Equal(sweep.TrialSettings(trial.Index), trial.Settings);
            Assert.Equal(4, trial.ValidationCurve.Count);
            Assert.True(trial.LatencyMicroseconds > 0 && trial.Bytes > 0);
            var model = trial.GetModel();
            // The recorded sparsity is the model's, the target's where the method has one (64 of 16·64, …: exact counts).
            Assert.Equal(model.GetSparsityReport().Sparsity, trial.Sparsity);
            if (trial.Settings.Method is SweepMethod.GradualMagnitude or SweepMethod.RigL) Assert.Equal(trial.Settings.Sparsity!.Value, trial.Sparsity!.Value, 0.02);
            Assert.Equal(trial.ValidationAccuracy, ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet)).MicroAccuracy, 1e-9);
        }
        Assert.Equal(24 + 6 + 1, reports.Count); // an epoch each, the end of each trial, and the latency measurement
        // The front: no completed trial beats a front member on accuracy, latency and bytes at once; every other trial is beaten by one.
        bool Beats(SweepTrial a, SweepTrial b) => a.ValidationAccuracy >= b.ValidationAccuracy && a.LatencyMicroseconds <= b.LatencyMicroseconds && a.Bytes <= b.Bytes
            && (a.ValidationAccuracy > b.ValidationAccuracy || a.LatencyMicroseconds < b.LatencyMicroseconds || a.Bytes < b.Bytes);
        Assert.All(result.ParetoFront, f => Assert.DoesNotContain(result.Trials, t => Beats(t, f)));
        Assert.All(result.Trials.Except(result.ParetoFront), t => Assert.Contains(result.Trials, f => Beats(f, t)));
        // Best under a constraint is the best of those meeting it; a constraint none meets says so.
        var smallest = result.Trials.Min(t => t.Bytes!.Value);
        Assert.Equal(result.Trials.Where(t => t.Bytes == smallest).Max(t => t.ValidationAccuracy), result.Best(SweepGoal.HighestAccuracy, maxBytes: smallest).ValidationAccuracy);
        Assert.Equal(smallest, result.Best(SweepGoal.SmallestFile).Bytes);
        var none = Assert.Throws<InvalidOperationException>(() => result.Best(SweepGoal.SmallestFile, minAccuracy: 1.0, maxBytes: smallest));
        Assert.StartsWith("No completed trial has accuracy ≥ 100.00% and ≤ ", none.Message);
        Assert.Contains("the front is: #", none.Message);
    }

    [Fact]
    public void LotteryTicketAndChannelExplorationTrialsRunAsTheirMethodsDo()
    {
        var ml = new MLContext(seed: 1);
        var split = ml.Data.TrainTestSplit(MaskedTrainingTests.SyntheticData(600), 0.25, seed: 1);
        var options = new SparsitySweepOptions
        {
            SearchSpace = new SweepSearchSpace { Methods = [SweepMethod.Dense, SweepMethod.LotteryTicket, SweepMethod.ChannelExploration], Sparsities = [0.5], Epochs = [3] },
            Layers = [Layers.Dense(32), Layers.ReLU(), Layers.Dense(32), Layers.ReLU()],
            Tuner = SweepTuner.SuccessiveHalving,
            FirstRungEpochs = 1,
            MaxTrials = 6,
            Objectives = SweepObjectives.Bytes,
        };
        // The first seed whose draws hold both methods (trial 0 is the dense reference).
        options.Seed = Enumerable.Range(1, 100).First(seed =>
        {
            options.Seed = seed;
            var draws = Enumerable.Range(1, 5).Select(i => ml.Sparsity().CreateSweep(options).TrialSettings(i).Method).ToList();
            return draws.Contains(SweepMethod.LotteryTicket) && draws.Contains(SweepMethod.ChannelExploration);
        });
        var result = ml.Sparsity().CreateSweep(options).Run(split.TrainSet, split.TestSet);
        var dense = result.Trials[0];
        var tickets = result.Trials.Where(t => t.Settings.Method == SweepMethod.LotteryTicket).ToList();
        var channels = result.Trials.Where(t => t.Settings.Method == SweepMethod.ChannelExploration).ToList();
        Assert.NotEmpty(tickets);
        Assert.NotEmpty(channels);
        foreach (var ticket in tickets)
        {
            // The dense level and three pruned ones, a curve point each; never stopped (a level is not an epoch); global
            // pruning at 1 − 0.5^(1/3) a level leaves exactly half the weights (up to rounding at each level).
            Assert.Equal((SweepTrialStatus.Completed, 4), (ticket.Status, ticket.ValidationCurve.Count));
            Assert.Equal(0.5, ticket.Sparsity!.Value, 0.01);
            Assert.Equal(ticket.Sparsity!.Value, ticket.GetModel().GetSparsityReport().Sparsity, 12);
        }
        foreach (var trial in channels.Where(t => t.Status == SweepTrialStatus.Completed))
        {
            // Trained channel-sparse, measured compacted: half the hidden channels gone, the network a smaller dense one.
            var model = trial.GetModel();
            Assert.Equal(0, model.GetSparsityReport().Sparsity);
            Assert.True(trial.Sparsity > 0.3, $"sparsity {trial.Sparsity}");
            Assert.True(model.GetSparsityReport().Count < dense.GetModel().GetSparsityReport().Count * 0.6);
            Assert.True(trial.Bytes < dense.Bytes);
        }
    }

    [Fact]
    public void ACrossValidatedTrialsCurveIsTheMeanOfItsFoldsCurves()
    {
        var ml = new MLContext(seed: 1);
        var data = MaskedTrainingTests.SyntheticData(600);
        var options = new SparsitySweepOptions
        {
            SearchSpace = new SweepSearchSpace { Methods = [SweepMethod.Dense, SweepMethod.GradualMagnitude], Sparsities = [0.8], Epochs = [3] },
            Layers = [Layers.Dense(32), Layers.ReLU()],
            Tuner = SweepTuner.Random,
            MaxTrials = 3,
            Objectives = SweepObjectives.Bytes,
            Seed = 6,
        };
        var sweep = ml.Sparsity().CreateSweep(options);
        var result = sweep.Run(data, folds: 3);
        Assert.Equal(3, result.Trials.Count);
        var folds = ml.Data.CrossValidationSplit(data, 3, seed: 6);
        foreach (var trial in result.Trials)
        {
            // Each fold trained on its own, as the trial's settings say: the trial's curve is their mean, epoch by epoch.
            var curves = folds.Select(fold =>
            {
                var curve = new List<double>();
                ml.MulticlassClassification.Trainers.NeuralNetwork(trial.Settings.ToTrainerOptions(ml, options.Layers, threads: 1))
                    .Fit(fold.TrainSet, fold.TestSet, new SynchronousProgress<Microsoft.ML.Sparsity.Training.TrainingProgress>(p => curve.Add(p.ValidationAccuracy!.Value)));
                return curve;
            }).ToList();
            Assert.Equal(SweepTrialStatus.Completed, trial.Status);
            for (int epoch = 0; epoch < 3; epoch++)
                Assert.Equal(curves.Average(c => c[epoch]), trial.ValidationCurve[epoch], 1e-12);
        }
        Assert.Equal("folds", Assert.Throws<ArgumentOutOfRangeException>(() => sweep.Run(data, folds: 1)).ParamName);
    }
}
