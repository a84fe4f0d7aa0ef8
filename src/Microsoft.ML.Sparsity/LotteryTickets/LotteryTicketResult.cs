using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Serialization;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>
/// What iterative magnitude pruning found: the results of every level (ticket and controls), the last level's ticket
/// and its trained model. Write the results as a Markdown table, CSV, JSON or an SVG plot of accuracy against weights
/// remaining; the static methods combine several runs (seeds, reset targets).
/// </summary>
public sealed class LotteryTicketResult
{
    internal LotteryTicketResult(int seed, LotteryTicketReset reset, long rewindStep, IReadOnlyList<LotteryTicketLevelResult> levels,
        LotteryTicket ticket, NeuralNetworkMulticlassModel model)
    {
        Seed = seed;
        Reset = reset;
        RewindStep = rewindStep;
        Levels = levels;
        Ticket = ticket;
        Model = model;
    }

    /// <summary>The training seed.</summary>
    public int Seed { get; }

    /// <summary>The reset target of the run.</summary>
    public LotteryTicketReset Reset { get; }

    /// <summary>The rewind step (weight rewinding).</summary>
    public long RewindStep { get; }

    /// <summary>One entry per training run, in the order they ran (level by level; within a level the controls, then the ticket).</summary>
    public IReadOnlyList<LotteryTicketLevelResult> Levels { get; }

    /// <summary>The last level's ticket: its mask and starting weights.</summary>
    public LotteryTicket Ticket { get; }

    /// <summary>The last level's trained ticket.</summary>
    public NeuralNetworkMulticlassModel Model { get; }

    /// <summary>A short name of the reset target, as tables and plots show it.</summary>
    public string ResetName => NameOf(Reset, RewindStep);

    /// <summary>The short name of a reset target (<see cref="ResetName"/>), e.g. for results read back from <see cref="SaveJson(string)"/>'s file.</summary>
    public static string NameOf(LotteryTicketReset reset, long rewindStep) => reset switch
    {
        LotteryTicketReset.InitialWeights => "reset to θ0",
        LotteryTicketReset.WeightRewinding => $"rewind to step {rewindStep}",
        LotteryTicketReset.LearningRateRewinding => "LR rewinding",
        _ => "fine-tuning",
    };

    /// <summary>A Markdown table of this run's results.</summary>
    public string ToMarkdown() => ToMarkdown([this]);

    /// <summary>
    /// A Markdown table of several runs: one row per (reset target, variant, level) with the mean over the runs (seeds)
    /// of the test accuracy at the early-stop point and at the end, and of the early-stop iteration.
    /// </summary>
    public static string ToMarkdown(IEnumerable<LotteryTicketResult> runs)
    {
        var list = Check(runs);
        var text = new StringBuilder();
        text.AppendLine(Invariant($"Seeds: {string.Join(", ", list.Select(r => r.Seed).Distinct())}"));
        text.AppendLine();
        text.AppendLine("| reset | variant | level | weights remaining | early-stop iteration | test acc. at early stop | final test acc. | runs |");
        text.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var g in Groups(list))
        {
            var rows = g.Rows;
            text.AppendLine(Invariant(
                $"| {g.Reset} | {g.Variant} | {g.Level} | {rows.Average(r => r.WeightsRemaining):P2} | {rows.Average(r => r.EarlyStopIteration):F0} | {Mean(rows.Select(r => r.EarlyStopTestAccuracy))} | {Mean(rows.Select(r => r.FinalTestAccuracy))} | {rows.Count} |"));
        }
        return text.ToString();
    }

    /// <summary>Writes this run's results as CSV (atomically).</summary>
    public void SaveCsv(string filePath) => SaveCsv(filePath, [this]);

    /// <summary>Writes the results of several runs as one CSV file (atomically), one line per training run.</summary>
    public static void SaveCsv(string filePath, IEnumerable<LotteryTicketResult> runs)
    {
        var list = Check(runs);
        var text = new StringBuilder("seed,reset,rewindStep,level,variant,weightsRemaining,earlyStopIteration,earlyStopValidationLoss,earlyStopTestAccuracy,finalValidationLoss,finalTestAccuracy,seconds\n");
        foreach (var run in list)
        foreach (var r in run.Levels)
            text.Append(Invariant(
                $"{run.Seed},{run.Reset},{run.RewindStep},{r.Level},{r.Variant},{r.WeightsRemaining:R},{r.EarlyStopIteration},{r.EarlyStopValidationLoss:R},{r.EarlyStopTestAccuracy:R},{r.FinalValidationLoss:R},{r.FinalTestAccuracy:R},{r.Seconds:F2}\n"));
        AtomicFile.Write(filePath, s => s.Write(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>Writes this run's results as JSON (atomically).</summary>
    public void SaveJson(string filePath) => SaveJson(filePath, [this]);

    /// <summary>Writes the results of several runs as one JSON array (atomically).</summary>
    public static void SaveJson(string filePath, IEnumerable<LotteryTicketResult> runs)
    {
        var list = Check(runs).Select(r => new JsonRun(r.Seed, r.Reset, r.RewindStep, [.. r.Levels])).ToList();
        AtomicFile.Write(filePath, s => JsonSerializer.Serialize(s, list, ModelManifest.Json));
    }

    /// <summary>One run as <see cref="SaveJson(string, IEnumerable{LotteryTicketResult})"/> writes it (and the plots read it back).</summary>
    internal sealed record JsonRun(int Seed, LotteryTicketReset Reset, long RewindStep, List<LotteryTicketLevelResult>? Levels);

    private static List<LotteryTicketResult> Check(IEnumerable<LotteryTicketResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var list = runs.ToList();
        if (list.Count == 0 || list.Any(r => r is null)) throw new ArgumentException("Give at least one run, and no null.", nameof(runs));
        return list;
    }

    private sealed record Group(string Reset, LotteryTicketVariant Variant, int Level, List<LotteryTicketLevelResult> Rows);

    private static IEnumerable<Group> Groups(List<LotteryTicketResult> runs) =>
        runs.SelectMany(run => run.Levels.Select(l => (Reset: run.ResetName, Row: l)))
            .GroupBy(x => (x.Reset, x.Row.Variant, x.Row.Level))
            .OrderBy(g => runs.FindIndex(r => r.ResetName == g.Key.Reset)).ThenBy(g => g.Key.Variant).ThenBy(g => g.Key.Level)
            .Select(g => new Group(g.Key.Reset, g.Key.Variant, g.Key.Level, g.Select(x => x.Row).ToList()));

    private static string Mean(IEnumerable<double?> values)
    {
        var present = values.Where(v => v is not null).Select(v => v!.Value).ToList();
        return present.Count == 0 ? "–" : Invariant($"{present.Average():P2}");
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
