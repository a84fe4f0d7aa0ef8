using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Serialization;
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
        foreach (var (index, json) in ClusterRetry.Run(() => Journal.Records(), $"Reading the journal '{_name}'"))
        {
            string what = $"The trial record {index} of the cluster's journal '{_name}'", remedy = "start the sweep under another name";
            var record = TrialRecord.Parse(json, index, settingsOf(index), what, remedy);
            NeuralNetworkMulticlassModel? model = null;
            if (record.Status == SweepTrialStatus.Completed)
            {
                var bytes = ClusterRetry.Run(() => Model(index).Get(), $"Reading trial {index}'s model from the journal '{_name}'");
                if (bytes is null || bytes.Length != record.Bytes)
                    throw new InvalidDataException($"{what} says its model has {record.Bytes:N0} bytes, but the journal holds {(bytes is null ? "no model" : $"{bytes.Length:N0} bytes")}; {remedy}.");
                model = (NeuralNetworkMulticlassModel)ModelFile.FromBytes(bytes, _pool);
            }
            finished[index] = record.ToTrial(index, null, model, _pool);
        }
        return finished;
    }

    public SweepTrial Write(int index, TrialSettings settings, SweepTrialStatus status, TrialOutcome outcome, TimeSpan duration, string? error)
    {
        var file = outcome.ModelFileBytes(); // as the worker sent it
        if (file is not null) ClusterRetry.Run(() => Model(index).Put(file), $"Writing trial {index}'s model to the journal '{_name}'");
        var record = TrialRecord.Of(settings, status, outcome, file?.Length, duration, error);
        ClusterRetry.Run(() => Journal.Commit(index, record.ToJson()), $"Writing trial {index}'s record to the journal '{_name}'");
        return record.ToTrial(index, null, outcome.Model, _pool);
    }
}
