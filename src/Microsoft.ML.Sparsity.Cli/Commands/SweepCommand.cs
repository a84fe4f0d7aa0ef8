using System.CommandLine;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary><c>sweep</c>: a sparsity sweep with successive halving; prints the trials and the front and saves the best model for a goal and constraints.</summary>
internal static class SweepCommand
{
    public static System.CommandLine.Command Create()
    {
        var data = new DataArguments();
        var architecture = CliOptions.Architecture();
        var methods = new Option<string>("--methods") { Description = $"Comma-separated methods to try: {CliOptions.MethodHelp}.", DefaultValueFactory = _ => "dense,gmp,random,nm,rigl,set" };
        var sparsities = new Option<string>("--sparsities") { Description = "Comma-separated target sparsities.", DefaultValueFactory = _ => "0.9,0.95,0.98" };
        var epochs = new Option<string>("--epochs") { Description = "Comma-separated epoch counts.", DefaultValueFactory = _ => "20" };
        var widths = new Option<string>("--widths") { Description = "Comma-separated width multipliers of the hidden layers.", DefaultValueFactory = _ => "1" };
        var trials = new Option<int>("--trials") { Description = "The budget in trials.", DefaultValueFactory = _ => 16 };
        var minutes = new Option<double?>("--minutes") { Description = "A wall-time budget: no trial starts after it." };
        var tuner = new Option<string>("--tuner") { Description = "successive-halving or random.", DefaultValueFactory = _ => "successive-halving" }
            .AcceptOnlyFromAmong("successive-halving", "random");
        var folds = new Option<int?>("--folds") { Description = "Cross-validate each trial on this many folds of the training data (2 to 20) instead of holding out a sixth of it." };
        var journal = new Option<string?>("--journal") { Description = "A folder the trials are journaled to; run the same command again to resume a killed sweep." };
        var parallel = new Option<int>("--parallel") { Description = "Trials at once (0: one per processor).", DefaultValueFactory = _ => 0 };
        var seed = CliOptions.Seed();
        var goal = new Option<string>("--goal") { Description = "What the saved model is best at: accuracy, latency or size.", DefaultValueFactory = _ => "accuracy" }
            .AcceptOnlyFromAmong("accuracy", "latency", "size");
        var minAccuracy = new Option<double?>("--min-accuracy") { Description = "Constraint: validation accuracy at least this (e.g. 0.89)." };
        var maxLatency = new Option<double?>("--max-latency") { Description = "Constraint: single-prediction latency at most this many microseconds." };
        var maxBytes = new Option<long?>("--max-bytes") { Description = "Constraint: model file at most this many bytes." };
        var output = CliOptions.Output("Where to save the best model.");
        var project = CliOptions.Project();
        var report = new Option<string?>("--report") { Description = "Also write an HTML report there (index.html with the Pareto plots, learning curves and the trials' table)." };
        var cluster = WorkerCommand.Cluster(required: false);
        cluster.Description = "Run the trials on this cluster's workers (mlnet-sparsity worker) instead of here: localhost or redis://HOST:PORT. --data must then be fashion-mnist or a folder of IDX files every worker can read.";
        var sweepName = new Option<string?>("--sweep-name") { Description = "With --cluster: the sweep's name in the cluster, under which its journal is kept; run the same command again to resume." };
        var trialsPerWorker = new Option<int>("--trials-per-worker") { Description = "With --cluster: trials a worker runs at once.", DefaultValueFactory = _ => 1 };
        var connectTimeout = new Option<double>("--connect-timeout") { Description = "With --cluster: seconds to try reaching the cluster.", DefaultValueFactory = _ => 30 };
        var examples = new Option<int?>("--examples") { Description = "Only the first this many training examples (a quick sweep)." };
        var command = new System.CommandLine.Command("sweep", "Sweeps sparsity methods, sparsities, epochs and widths, prints every trial and the Pareto front of accuracy, latency and bytes, and saves the best model for a goal under constraints.")
        {
            architecture, methods, sparsities, epochs, widths, trials, minutes, tuner, folds, journal, parallel, seed, goal, minAccuracy, maxLatency, maxBytes, output, project, report,
            cluster, sweepName, trialsPerWorker, connectTimeout, examples,
        };
        data.AddTo(command);
        command.SetAction((parse, cancellation) => Task.FromResult(Program.Run(token =>
        {
            var ml = new MLContext(parse.GetValue(seed));
            string saveTo = CliOptions.CheckedOutput(parse.GetValue(output)!);
            var options = new SparsitySweepOptions
            {
                SearchSpace = new SweepSearchSpace
                {
                    Methods = [.. parse.GetValue(methods)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(CliOptions.Method)],
                    Sparsities = CliOptions.List<double>(parse.GetValue(sparsities)!, "--sparsities", s => s is > 0 and < 1, "a sparsity in (0, 1)"),
                    Allocations = [LayerAllocation.ErdosRenyiKernel],
                    Epochs = CliOptions.List<int>(parse.GetValue(epochs)!, "--epochs", e => e >= 1, "an epoch count of at least 1"),
                    Widths = CliOptions.List<double>(parse.GetValue(widths)!, "--widths", w => w > 0, "a positive width multiplier"),
                },
                Layers = [.. CliOptions.Layers(parse.GetValue(architecture)!)],
                Tuner = parse.GetValue(tuner) == "random" ? SweepTuner.Random : SweepTuner.SuccessiveHalving,
                MaxTrials = parse.GetValue(trials),
                MaxTime = parse.GetValue(minutes) is { } m ? (m > 0 && m <= SparsitySweepOptions.LongestMaxTime.TotalMinutes ? TimeSpan.FromMinutes(m) : throw new ArgumentException($"--minutes must be in (0, {SparsitySweepOptions.LongestMaxTime.TotalMinutes}] (a year), not {m}.", "--minutes")) : null,
                ParallelTrials = parse.GetValue(parallel),
                JournalFolder = parse.GetValue(journal),
                Seed = parse.GetValue(seed),
            };
            if (options.SearchSpace.Methods.Count == 0) throw new ArgumentException("--methods lists no method.", "--methods");
            // Where the results go is checked before hours of training.
            string? reportFolder = parse.GetValue(report) is { } r ? CliOptions.CheckedFolder(r, "--report") : null;
            string? projectFolder = parse.GetValue(project) is { } pr ? CliOptions.CheckedFolder(pr, "--project") : null;
            var sweep = ml.Sparsity().CreateSweep(options);
            var dataOptions = data.Read(parse);
            var loaded = DataSource.ForTraining(ml, dataOptions, parse.GetValue(seed));
            int? foldCount = parse.GetValue(folds);
            if (parse.GetValue(examples) is { } count)
                loaded = loaded with { Train = ml.Data.TakeRows(loaded.Train, count >= 2 ? count : throw new ArgumentOutOfRangeException("--examples", count, "--examples must be at least 2.")) };
            var split = ml.Data.TrainTestSplit(loaded.Train, testFraction: 1.0 / 6, seed: parse.GetValue(seed));
            var onCluster = parse.GetValue(cluster) is { } address
                ? new ClusterRun(address, ClusterSweep(parse.GetValue(sweepName), dataOptions, foldCount, options.JournalFolder, parse.GetValue(trialsPerWorker), parse.GetValue(examples)), parse.GetValue(connectTimeout))
                : null;
            CliConsole.Line(onCluster is not null
                ? $"Sweeping on {loaded.Description} on the cluster {onCluster.Address}: 5/6 of the training data trains, 1/6 compares the trials (each worker loads and checks it), the test data judges the saved model."
                : foldCount is { } k
                ? $"Sweeping on {loaded.Description}: each trial is cross-validated on {k} folds of the training data; the test data judges the saved model."
                : $"Sweeping on {loaded.Description}: 5/6 of the training data trains, 1/6 compares the trials, the test data judges the saved model.");
            var reporter = (Action<int, string> report) => new Training.SynchronousProgress<SweepProgress>(p =>
            {
                if (p.Trial < 0) report(p.FinishedTrials, "measuring latency");
                else if (p.Status is { } status) report(p.FinishedTrials, $"trial {p.Trial} {status}: {Sweeps.Percentages.Format(p.ValidationAccuracy)} ({p.Settings})");
            });
            using var client = onCluster is not null ? Distributed.SparsityCluster.ConnectAsync(onCluster.Address, TimeSpan.FromSeconds(onCluster.ConnectSeconds), token).GetAwaiter().GetResult() : null;
            var result = CliConsole.WithProgress("sweep", options.MaxTrials, report => client is not null
                ? Distributed.ClusterSweepExtensions.RunOnCluster(sweep, Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<IClusterClient>(client.Services), onCluster!.Options, reporter(report), token)
                : foldCount is { } k
                ? sweep.Run(loaded.Train, k, reporter(report), token)
                : sweep.Run(split.TrainSet, split.TestSet, reporter(report), token));

            var table = CliConsole.Table("#", "settings", "status", "epochs", "validation", "sparsity", "µs", "bytes", "front");
            foreach (var t in result.Trials)
                CliConsole.Row(table, t.Index, t.Settings, t.Status, t.ValidationCurve.Count, $"{Sweeps.Percentages.Format(t.ValidationAccuracy)}", t.Sparsity is { } s ? $"{Sweeps.Percentages.Format(s, "0.0")}" : "",
                    t.LatencyMicroseconds is { } l ? $"{l:0.00}" : "", t.Bytes is { } b ? $"{b:N0}" : "", result.ParetoFront.Contains(t) ? "*" : "");
            CliConsole.Write(table);
            foreach (var failed in result.Trials.Where(t => t.Status == SweepTrialStatus.Failed))
                CliConsole.Line($"trial {failed.Index} failed: {failed.Error}");
            if (!result.Trials.Any(t => t.Status == SweepTrialStatus.Completed))
                throw new InvalidOperationException($"No trial completed ({result.Trials.Count} ran), so there is no model to save.");

            SweepTrial best;
            try
            {
                best = result.Best(parse.GetValue(goal) switch { "latency" => SweepGoal.LowestLatency, "size" => SweepGoal.SmallestFile, _ => SweepGoal.HighestAccuracy },
                    parse.GetValue(minAccuracy), parse.GetValue(maxLatency), parse.GetValue(maxBytes));
            }
            catch (InvalidOperationException e)
            {
                throw new NoModelException(e.Message, e);
            }
            CliConsole.Line($"Best for {parse.GetValue(goal)}: trial {best.Index} ({best.Settings}).");
            var model = best.GetModel();
            TrainCommand.Report(ml, model, loaded.Test);
            TrainCommand.Save(ml, model, loaded, saveTo, projectFolder);
            // The report last: the best model is saved whatever happens to it.
            if (reportFolder is not null)
            {
                var tests = result.Trials.Where(t => t.Status == SweepTrialStatus.Completed)
                    .ToDictionary(t => t.Index, t => ml.MulticlassClassification.Evaluate(t.GetModel().Transform(loaded.Test)).MicroAccuracy);
                string page = Plots.SweepReport.Write(result, reportFolder, $"Sparsity sweep on {loaded.Description}", tests);
                CliConsole.Line($"Wrote the report '{page}'.");
            }
            return ExitCodes.Success;
        }, cancellation)));
        return command;
    }

    /// <summary>A sweep on a cluster: where, and its cluster options.</summary>
    private sealed record ClusterRun(string Address, Distributed.ClusterSweepOptions Options, double ConnectSeconds);

    /// <summary>The cluster options of <c>--cluster</c>, after checking the options that go with it.</summary>
    private static Distributed.ClusterSweepOptions ClusterSweep(string? name, DataOptions data, int? folds, string? journal, int trialsPerWorker, int? examples)
    {
        if (name is null) throw new ArgumentException("--cluster needs --sweep-name: the name the cluster keeps the sweep's journal under.", "--sweep-name");
        if (folds is not null) throw new ArgumentException("--folds does not run on a cluster; leave out --folds or --cluster.", "--folds");
        if (journal is not null) throw new ArgumentException("A sweep on a cluster keeps its journal in the cluster (--sweep-name); leave out --journal.", "--journal");
        if (!DataSource.IsIdx(data.Data, out string? folder))
            throw new ArgumentException($"--cluster takes --data fashion-mnist or a folder of IDX files every worker can read, not \"{data.Data}\".", "--data");
        var options = new Distributed.ClusterSweepOptions
        {
            SweepName = name,
            Data = new Distributed.SweepDataReference(folder is null ? Distributed.SweepDataReference.FashionMnist : Path.GetFullPath(folder), Examples: examples),
            TrialsPerWorker = trialsPerWorker,
        };
        return options;
    }
}
