// Lottery tickets on Fashion-MNIST (LeNet-300-100): iterative magnitude pruning with its controls, the reset targets
// compared, and the time of a full 10-level run. Writes tables (Markdown on the console), CSV, JSON and SVG plots.
// Usage: dotnet run -c Release --project samples/LotteryTicket -- [--experiment controls|rewinding|timed]
//        [--levels L] [--epochs E] [--seeds 1,2] [--rewind-step K] [--eval-interval N] [--threads T] [--out DIR]
//        [--checkpoints DIR] [--data DIR] [--quiet]
//        or: --replot RESULTS.json FILE.svg|FILE.png (the plot of saved results)
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.LotteryTickets;

if (args is ["--replot", var json, var output])
{
    // Draws the plot of results a run saved (lottery-tickets-<experiment>.json), e.g. to refresh the docs' pictures.
    Microsoft.ML.Sparsity.Plots.LotteryTicketPlots.SaveFromJson(json, output, $"LeNet-300-100 on Fashion-MNIST: {Path.GetFileNameWithoutExtension(json).Replace("lottery-tickets-", "", StringComparison.Ordinal)}");
    Console.WriteLine($"Wrote {output}.");
    return;
}
var a = Arguments.Parse(args);
var ml = new MLContext(seed: a.Seeds[0]);
// The context's informational messages and above (ML.NET also logs trace messages: channels opening and closing).
if (!a.Quiet) ml.Log += (_, e) => { if (e.Kind != Microsoft.ML.Runtime.ChannelMessageKind.Trace) Console.WriteLine($"  {e.RawMessage}"); };
var train = ml.Data.LoadFashionMnist(FashionMnistSplit.Train, a.DataDirectory);
var test = ml.Data.LoadFashionMnist(FashionMnistSplit.Test, a.DataDirectory);
int threads = a.Threads > 0 ? a.Threads : Environment.ProcessorCount;
Directory.CreateDirectory(a.OutputDirectory);

// Each experiment is a list of (reset target, controls) runs for every seed.
var runs = a.Experiment switch
{
    "controls" => new[] { (LotteryTicketReset.InitialWeights, LotteryTicketControls.All) },
    "rewinding" => [(LotteryTicketReset.InitialWeights, LotteryTicketControls.None), (LotteryTicketReset.WeightRewinding, LotteryTicketControls.None),
                    (LotteryTicketReset.LearningRateRewinding, LotteryTicketControls.None), (LotteryTicketReset.FineTuning, LotteryTicketControls.None)],
    _ => [(LotteryTicketReset.InitialWeights, LotteryTicketControls.None)],
};
var options0 = Recipe(a, a.Seeds[0], runs[0].Item1, runs[0].Item2);
Console.WriteLine($"Lottery tickets, experiment '{a.Experiment}': LeNet-300-100 on Fashion-MNIST ({train.GetRowCount():N0} training images, 5,000 held out for validation; " +
    $"{test.GetRowCount():N0} test images), Adam {((Microsoft.ML.Sparsity.Training.AdamOptimizerOptions)options0.Training.Optimizer).LearningRate}, batch {options0.Training.BatchSize}, " +
    $"{options0.Training.Epochs} epochs per level ({options0.Training.LearningRateSchedule} schedule), {options0.Levels} levels at p = {options0.PruningRate} " +
    $"(output layer at half rate), seeds {string.Join(", ", a.Seeds)}, {threads} threads.");

if (MachineLoad.Probe(TimeSpan.FromSeconds(0.5)) is string machine) Console.WriteLine($"Before training, {machine}.");
var results = new List<LotteryTicketResult>();
var total = Stopwatch.StartNew();
var load = MachineLoad.Start();
foreach (var (reset, controls) in runs)
foreach (int seed in a.Seeds)
{
    var options = Recipe(a, seed, reset, controls);
    if (a.CheckpointDirectory is not null)
    {
        options.CheckpointDirectory = Path.Combine(a.CheckpointDirectory, $"{a.Experiment}-{reset}-seed{seed}");
        Directory.CreateDirectory(options.CheckpointDirectory);
    }
    var clock = Stopwatch.StartNew();
    var result = ml.Sparsity().LotteryTicket(options).Run(train, test);
    Console.WriteLine($"\n{reset}, seed {seed}: {result.Levels.Count} training runs in {clock.Elapsed.TotalSeconds:F1} s ({clock.Elapsed.TotalMinutes:F2} min, {threads} threads)");
    Console.WriteLine(result.ToMarkdown());
    results.Add(result);
}
Console.WriteLine($"All runs: {total.Elapsed.TotalSeconds:F1} s ({total.Elapsed.TotalMinutes:F2} min) with {threads} threads" +
    (load?.OtherCores() is double others ? $"; meanwhile {MachineLoad.Describe(others)}." : "."));
Console.WriteLine($"\n{LotteryTicketResult.ToMarkdown(results)}");
string stem = Path.Combine(a.OutputDirectory, $"lottery-tickets-{a.Experiment}");
LotteryTicketResult.SaveCsv(stem + ".csv", results);
LotteryTicketResult.SaveJson(stem + ".json", results);
Microsoft.ML.Sparsity.Plots.LotteryTicketPlots.Save(results, stem + ".svg", $"LeNet-300-100 on Fashion-MNIST: {a.Experiment} (seeds {string.Join(", ", a.Seeds)})");
results[0].Ticket.Save(stem + "-ticket.zip");
Console.WriteLine($"Wrote {stem}.csv, .json, .svg and the last level's ticket {stem}-ticket.zip.");

static IterativeMagnitudePruningOptions Recipe(Arguments a, int seed, LotteryTicketReset reset, LotteryTicketControls controls)
{
    // The defaults are the recipe: LeNet-300-100, Glorot normal, Adam 1.2e-3, batch 60, 5,000 images held out.
    var options = new IterativeMagnitudePruningOptions
    {
        Levels = a.Levels,
        PruningRate = 0.2,
        Reset = reset,
        RewindStep = reset == LotteryTicketReset.WeightRewinding ? a.RewindStep : 0,
        Controls = controls,
        EvaluationInterval = a.EvaluationInterval,
    };
    options.Training.Epochs = a.Epochs;
    options.Training.Seed = seed;
    options.Training.NumberOfThreads = a.Threads > 0 ? a.Threads : null;
    options.Training.LearningRateSchedule = Microsoft.ML.Sparsity.Training.LearningRateSchedule.Cosine(0.01f);
    return options;
}

internal sealed record Arguments(string Experiment, int Levels, int Epochs, int[] Seeds, long RewindStep, int EvaluationInterval, int Threads,
    string OutputDirectory, string? CheckpointDirectory, string? DataDirectory, bool Quiet)
{
    public static Arguments Parse(string[] args)
    {
        var a = new Arguments("controls", 14, 6, [1, 2], 250, 250, 0, "lottery-tickets", null, null, false);
        bool levelsGiven = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--experiment": a = a with { Experiment = Value() }; break;
                case "--levels": a = a with { Levels = Int() }; levelsGiven = true; break;
                case "--epochs": a = a with { Epochs = Int() }; break;
                case "--seeds": a = a with { Seeds = Value().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray() }; break;
                case "--rewind-step": a = a with { RewindStep = Int() }; break;
                case "--eval-interval": a = a with { EvaluationInterval = Int() }; break;
                case "--threads": a = a with { Threads = Int() }; break;
                case "--out": a = a with { OutputDirectory = Value() }; break;
                case "--checkpoints": a = a with { CheckpointDirectory = Value() }; break;
                case "--data": a = a with { DataDirectory = Value() }; break;
                case "--quiet": a = a with { Quiet = true }; break;
                default: throw new ArgumentException($"Unknown argument '{args[i]}'. {Usage}");
            }
        }
        if (a.Experiment is not ("controls" or "rewinding" or "timed")) throw new ArgumentException($"--experiment must be controls, rewinding or timed. {Usage}");
        if (!levelsGiven) a = a with { Levels = a.Experiment == "controls" ? 14 : 10 };
        if (a.Experiment == "timed" && a.Seeds.Length > 1) a = a with { Seeds = [a.Seeds[0]] };
        return a;
    }

    private const string Usage = "Options: --experiment controls (ticket, random reinit, random mask; default) | rewinding (reset to θ0, rewind to step K, " +
        "LR rewinding, fine-tuning) | timed (one 10-level run), --levels L (default 14 for controls, else 10), --epochs E per level (default 6), " +
        "--seeds 1,2, --rewind-step K (default 250), --eval-interval N steps (default 250), --threads T (default: every processor), --out DIR (default ./lottery-tickets; docs/ holds the published runs), " +
        "--checkpoints DIR (resumable runs), --data DIR, --quiet.";
}
