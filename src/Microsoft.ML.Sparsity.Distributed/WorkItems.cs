using System.Text.Json;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// What every unit of work carries besides its own settings: the coordinator's package version, the data by reference
/// (split with <see cref="SplitSeed"/>) with the SHA-256 the worker's copy must have, and how many units a worker runs
/// at once.
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record WorkContext(
    [property: Id(0)] string PackageVersion,
    [property: Id(1)] SweepDataReference Data,
    [property: Id(2)] int SplitSeed,
    [property: Id(3)] string DataHash,
    [property: Id(4)] int UnitsPerWorker)
{
    public static WorkContext Create(SweepDataReference data, int splitSeed, string dataHash, int unitsPerWorker) =>
        new(ModelFile.PackageVersion, data, splitSeed, dataHash, unitsPerWorker);

    /// <summary>The data, on a worker that runs the coordinator's package version and has the same data (counting the unit as started).</summary>
    /// <exception cref="WorkerMismatchException">Another package version, or data this worker cannot load or has with another hash.</exception>
    public (Data.Dataset Train, Data.Dataset Validation) Load(WorkerData data, string worker)
    {
        data.Started();
        WorkerData.CheckVersion(PackageVersion, worker);
        return data.Get(Data, SplitSeed, DataHash, worker);
    }

    /// <summary>A unit's share of the worker's processors.</summary>
    public int Threads => Math.Max(1, Environment.ProcessorCount / Math.Max(1, UnitsPerWorker));
}

/// <summary>
/// One sweep trial as a worker receives it: everything it needs to train the trial as the coordinator's machine would
/// (the settings and the network as JSON, which the journal and the model files use too), and its context.
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record TrialWorkItem(
    [property: Id(0)] WorkContext Context,
    [property: Id(1)] string Layers,
    [property: Id(2)] int BatchSize,
    [property: Id(3)] string Settings,
    [property: Id(4)] int Index)
{
    /// <summary>Trial <paramref name="index"/> of a sweep whose trials train <paramref name="layers"/>.</summary>
    public static TrialWorkItem Create(int index, TrialSettings settings, WorkContext context, IEnumerable<LayerDefinition> layers, int batchSize) =>
        new(context, JsonSerializer.Serialize<LayerDefinition[]>([.. layers], ModelManifest.Json), batchSize, JsonSerializer.Serialize(settings), index);

    public TrialSettings TrialSettings() => JsonSerializer.Deserialize<TrialSettings>(Settings) ?? throw new ArgumentException("The work item has no trial settings.", nameof(Settings));

    /// <summary>The network's hidden layers (as model files write them: JSON with a type discriminator).</summary>
    public LayerDefinition[] LayerDefinitions() => JsonSerializer.Deserialize<LayerDefinition[]>(Layers, ModelManifest.Json)
        ?? throw new ArgumentException("The work item has no layers.", nameof(Layers));
}

/// <summary>
/// What a worker sends back for a trial: the validation accuracy after each epoch, the model file's bytes unless it was
/// stopped, and the seconds its training took on the worker (what the cluster adds is the coordinator's wall time less these).
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record TrialWorkResult([property: Id(0)] double[] Curve, [property: Id(1)] byte[]? Model, [property: Id(2)] double? Sparsity, [property: Id(3)] double Seconds);
