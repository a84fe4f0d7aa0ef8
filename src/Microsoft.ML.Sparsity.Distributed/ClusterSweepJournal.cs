using System.Text.Json;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// A sweep's journal in the cluster's grain storage: the folder journal's records and models, kept by grains keyed by
/// the sweep's name, so a coordinator started again (on any machine) resumes the sweep. As in the folder, a trial's
/// model is written before its record, and a trial counts as finished exactly when its record is there.
/// </summary>
internal sealed class ClusterSweepJournal : ISweepJournal
{
    private readonly IGrainFactory _grains;
    private readonly string _name;
    private readonly WorkerPool _pool;

    public ClusterSweepJournal(IGrainFactory grains, string name, IReadOnlyList<string> definition, WorkerPool pool)
    {
        (_grains, _name, _pool) = (grains, name, pool);
        ClusterRetry.Run(() => Journal.Open([.. definition]), $"Opening the journal '{name}'");
    }

    private ISweepJournalGrain Journal => _grains.GetGrain<ISweepJournalGrain>(_name);

    private ITrialModelGrain Model(int index) => _grains.GetGrain<ITrialModelGrain>($"{_name}/{index:D4}");

    public Dictionary<int, SweepTrial> ReadFinished(Func<int, TrialSettings> settingsOf)
    {
        var finished = new Dictionary<int, SweepTrial>();
        foreach (var record in ClusterRetry.Run(() => Journal.Records(), $"Reading the journal '{_name}'"))
        {
            string what = $"The trial record {record.Index} of the cluster's journal '{_name}'";
            TrialSettings settings;
            SweepTrialStatus status;
            try
            {
                settings = JsonSerializer.Deserialize<TrialSettings>(record.Settings) ?? throw new FormatException("no settings");
                status = Enum.Parse<SweepTrialStatus>(record.Status);
            }
            catch (Exception e) when (e is JsonException or FormatException or ArgumentException)
            {
                throw new InvalidDataException($"{what} is damaged ({e.Message}).", e);
            }
            if (settings != settingsOf(record.Index))
                throw new InvalidDataException($"{what} has settings ({settings}) other than this sweep's trial {record.Index} ({settingsOf(record.Index)}); the journal holds another sweep.");
            NeuralNetworkMulticlassModel? model = null;
            if (status == SweepTrialStatus.Completed)
            {
                var bytes = ClusterRetry.Run(() => Model(record.Index).Get(), $"Reading trial {record.Index}'s model from the journal '{_name}'");
                if (bytes is null || bytes.Length != record.Bytes)
                    throw new InvalidDataException($"{what} says its model has {record.Bytes:N0} bytes, but the journal holds {(bytes is null ? "no model" : $"{bytes.Length:N0} bytes")}.");
                model = ModelBytes.Load(bytes, _pool);
            }
            finished[record.Index] = new SweepTrial(record.Index, settings, status, record.Curve, record.Sparsity, record.Bytes,
                TimeSpan.FromSeconds(record.Seconds), record.Error, null, model, _pool);
        }
        return finished;
    }

    public SweepTrial Write(int index, TrialSettings settings, SweepTrialStatus status, TrialOutcome outcome, TimeSpan duration, string? error)
    {
        long? bytes = null;
        double? sparsity = null;
        if (outcome.Model is { } model)
        {
            byte[] file = ModelBytes.Save(model);
            ClusterRetry.Run(() => Model(index).Put(file), $"Writing trial {index}'s model to the journal '{_name}'");
            bytes = file.Length;
            sparsity = outcome.Sparsity ?? model.GetSparsityReport().Sparsity;
        }
        var record = new JournalRecord(index, JsonSerializer.Serialize(settings), status.ToString(), [.. outcome.Curve], sparsity, bytes, duration.TotalSeconds, error);
        ClusterRetry.Run(() => Journal.Commit(record), $"Writing trial {index}'s record to the journal '{_name}'");
        return new SweepTrial(index, settings, status, outcome.Curve, sparsity, bytes, duration, error, null, outcome.Model, _pool);
    }
}
