using System.Globalization;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>How a sweep picks which trials to finish.</summary>
public enum SweepTuner
{
    /// <summary>Random search: every trial trains all its epochs.</summary>
    Random,

    /// <summary>
    /// Random search with asynchronous successive halving (ASHA, Li et al., MLSys 2020): a trial whose validation accuracy
    /// at a rung is not in the top 1/η of its rung stops there (see <see cref="SparsitySweepOptions.ReductionFactor"/>).
    /// </summary>
    SuccessiveHalving,
}

/// <summary>What a sweep measures besides validation accuracy; the Pareto front trades accuracy against these.</summary>
[Flags]
public enum SweepObjectives
{
    /// <summary>Validation accuracy alone.</summary>
    Accuracy = 0,

    /// <summary>Single-prediction latency on this machine, through the sparse formats (measured after the last trial, in alternating rounds).</summary>
    Latency = 1,

    /// <summary>The model file's size.</summary>
    Bytes = 2,
}

/// <summary>
/// Options of a sparsity sweep (<see cref="SparsityCatalog.CreateSweep"/>): the search space, the tuner, the budget and
/// where trials are journaled. Trials train the multiclass network with SGD (momentum 0.9) on a cosine schedule.
/// </summary>
public sealed class SparsitySweepOptions
{
    /// <summary>The longest <see cref="MaxTime"/> accepted: a year (a leap one).</summary>
    internal static readonly TimeSpan LongestMaxTime = TimeSpan.FromDays(366);

    /// <summary>What trials are drawn from. Default: <see cref="SweepSearchSpace"/>'s defaults.</summary>
    public SweepSearchSpace SearchSpace = new();

    /// <summary>The hidden layers (the trainer adds the output layer); widths scale them. Default: LeNet-300-100's.</summary>
    public IList<LayerDefinition> Layers = Network.Layers.LeNet300100();

    /// <summary>Examples per step. Default 64.</summary>
    public int BatchSize = 64;

    /// <summary>The tuner. Default <see cref="SweepTuner.SuccessiveHalving"/>.</summary>
    public SweepTuner Tuner = SweepTuner.SuccessiveHalving;

    /// <summary>η of successive halving: a trial goes on from a rung if it is in the top 1/η there. Default 3.</summary>
    public int ReductionFactor = 3;

    /// <summary>The first rung in epochs (then ×η); 0 (default): a quarter of the smallest epoch count, at least 1.</summary>
    public int FirstRungEpochs;

    /// <summary>The budget in trials, ≥ 1. Default 16. A sweep resumed with a larger budget goes on where it stopped.</summary>
    public int MaxTrials = 16;

    /// <summary>A wall-time budget: no trial starts after it (those running finish). Null (default): trials only.</summary>
    public TimeSpan? MaxTime;

    /// <summary>What is measured besides accuracy. Default: latency and bytes.</summary>
    public SweepObjectives Objectives = SweepObjectives.Latency | SweepObjectives.Bytes;

    /// <summary>Trials run at once, splitting the threads; 0 (default): one per processor.</summary>
    public int ParallelTrials;

    /// <summary>The folder trials are journaled to (and a killed sweep resumed from); null (default): no journal.</summary>
    public string? JournalFolder;

    /// <summary>Seeds the draws and the trials' training. Default 1.</summary>
    public int Seed = 1;

    internal int Parallel => ParallelTrials > 0 ? ParallelTrials : Environment.ProcessorCount;

    internal int FirstRung => FirstRungEpochs > 0 ? FirstRungEpochs : Math.Max(1, SearchSpace.Epochs.Min() / 4);

    internal void Validate()
    {
        if (SearchSpace is null) throw new ArgumentNullException(nameof(SearchSpace), "Set a search space.");
        SearchSpace.Validate();
        if (Layers is null || Layers.Any(l => l is null)) throw new ArgumentNullException(nameof(Layers), "List the hidden layers; no entry may be null.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "The batch size must be at least 1.");
        if (!Enum.IsDefined(Tuner)) throw new ArgumentOutOfRangeException(nameof(Tuner), Tuner, "Use Random or SuccessiveHalving.");
        if (ReductionFactor < 2) throw new ArgumentOutOfRangeException(nameof(ReductionFactor), ReductionFactor, "η must be at least 2.");
        if (FirstRungEpochs < 0) throw new ArgumentOutOfRangeException(nameof(FirstRungEpochs), FirstRungEpochs, "Use 0 (a quarter of the epochs) or a positive epoch count.");
        if (MaxTrials < 1) throw new ArgumentOutOfRangeException(nameof(MaxTrials), MaxTrials, "The budget must allow at least one trial.");
        if (MaxTime is { } time && !(time > TimeSpan.Zero && time <= LongestMaxTime))
            throw new ArgumentOutOfRangeException(nameof(MaxTime), time, "The time budget must be positive and at most a year (or null for none).");
        if (ParallelTrials < 0) throw new ArgumentOutOfRangeException(nameof(ParallelTrials), ParallelTrials, "Use 0 (one per processor) or a positive count.");
        if ((Objectives & ~(SweepObjectives.Latency | SweepObjectives.Bytes)) != 0) throw new ArgumentOutOfRangeException(nameof(Objectives), Objectives, "Combine Latency and Bytes.");
    }

    /// <summary>What makes two sweeps the same (not the budgets nor the parallelism): a journal resumes only its own.</summary>
    internal IReadOnlyList<string> Definition() =>
    [
        "sparsity sweep, journal version 1",
        // Trials trained by another version of the package (whose methods may have changed) are not compared with this one's.
        $"package: {Serialization.ModelFile.PackageVersion}",
        $"seed: {Seed}",
        // JSON, not the records' ToString: numbers in any culture's journal read the same.
        $"layers: {string.Join(", ", Layers.Select(l => l.GetType().Name + System.Text.Json.JsonSerializer.Serialize(l, l.GetType())))}",
        $"batch size: {BatchSize}",
        Tuner == SweepTuner.Random ? "tuner: random" : $"tuner: successive halving within brackets of pattern and sparsity, η {ReductionFactor}, first rung {FirstRung.ToString(CultureInfo.InvariantCulture)} epochs",
        .. SearchSpace.Describe(),
    ];
}
