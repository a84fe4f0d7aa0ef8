namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// How a sweep runs on an Orleans cluster (<see cref="ClusterSweepExtensions.RunOnCluster"/>): its name in the cluster,
/// where the workers find the data, and how many trials a worker runs at once.
/// </summary>
public sealed class ClusterSweepOptions
{
    /// <summary>
    /// The sweep's name in the cluster: its journal is kept under it in the cluster's grain storage, and a coordinator
    /// started again with the same name (and the same sweep) resumes it. Required: letters, digits, '-', '_' and '.'.
    /// </summary>
    public string SweepName = "";

    /// <summary>Where every worker (and the coordinator) loads the data. Required.</summary>
    public SweepDataReference? Data;

    /// <summary>Trials a worker runs at once, splitting its processors among them. Default 1 (each trial uses all of them).</summary>
    public int TrialsPerWorker = 1;

    /// <summary>How long the sweep waits for a worker that can run trials before it stops with an error. Default 2 minutes.</summary>
    public TimeSpan WorkerWaitTimeout = TimeSpan.FromMinutes(2);

    internal void Validate()
    {
        if (string.IsNullOrEmpty(SweepName) || SweepName.Length > 200 || !SweepName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw new ArgumentException($"The sweep name \"{SweepName}\" must be 1 to 200 letters, digits, '-', '_' or '.'.", nameof(SweepName));
        if (Data is null) throw new ArgumentNullException(nameof(Data), "Say where the workers load the data (a SweepDataReference).");
        Data.Validate();
        if (TrialsPerWorker < 1) throw new ArgumentOutOfRangeException(nameof(TrialsPerWorker), TrialsPerWorker, "A worker runs at least one trial at once.");
        if (!(WorkerWaitTimeout > TimeSpan.Zero)) throw new ArgumentOutOfRangeException(nameof(WorkerWaitTimeout), WorkerWaitTimeout, "The wait for workers must be positive.");
    }
}
