namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// Runs one unit of work on the silo it is placed on: a sweep trial, or one copy's round of P-GaP. Each attempt is a new
/// activation (a new key), placed on the worker the coordinator picked.
/// </summary>
internal interface IWorkerGrain : IGrainWithGuidKey
{
    /// <summary>The silo this activation runs on.</summary>
    Task<SiloAddress> Silo();

    /// <summary>Trains a sweep trial, asking <paramref name="epochs"/> after each epoch whether to go on.</summary>
    /// <exception cref="WorkerMismatchException">The worker runs another package version or has other data.</exception>
    [ResponseTimeout("365.00:00:00")]
    Task<TrialWorkResult> RunTrial(TrialWorkItem item, IEpochObserver epochs);

    /// <summary>Trains one copy's round of P-GaP.</summary>
    /// <exception cref="WorkerMismatchException">The worker runs another package version or has other data.</exception>
    [ResponseTimeout("365.00:00:00")]
    Task<GapCopyWorkResult> RunGapCopy(GapCopyWorkItem item);
}

/// <summary>
/// The coordinator's side of a running trial: after each epoch the worker reports the validation accuracy and learns
/// whether to go on (true), stop (false) or ask again (null: the coordinator is still waiting for other trials at the
/// rung, so no call outlives the response timeout).
/// </summary>
internal interface IEpochObserver : IGrainObserver
{
    Task<bool?> Epoch(int epoch, double accuracy);
}

/// <summary>A sweep's journal, kept in the cluster's grain storage and keyed by the sweep's name: its definition and the finished trials' records.</summary>
internal interface ISweepJournalGrain : IGrainWithStringKey
{
    /// <summary>Starts the journal with <paramref name="definition"/>, or checks it is the journal's.</summary>
    /// <exception cref="ArgumentException">The journal holds another sweep; the message names the first line that differs.</exception>
    Task Open(string[] definition);

    /// <summary>The finished trials' records (<c>TrialRecord</c> JSON, as a folder journal's files hold them), by trial.</summary>
    Task<Dictionary<int, string>> Records();

    /// <summary>Adds trial <paramref name="index"/>'s record, unless the trial has one (a trial's result counts once).</summary>
    Task Commit(int index, string record);
}

/// <summary>A completed trial's model file, kept in the cluster's grain storage (key: the sweep's name and the trial's index).</summary>
internal interface ITrialModelGrain : IGrainWithStringKey
{
    /// <summary>Keeps the model's bytes, unless it has some (a trial's result counts once).</summary>
    Task Put(byte[] model);

    /// <summary>The model's bytes, or null.</summary>
    Task<byte[]?> Get();
}
