using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>Runs sweeps on an Orleans cluster of Microsoft.ML.Sparsity workers.</summary>
public static class ClusterSweepExtensions
{
    /// <summary>
    /// Runs the sweep (or resumes it from the cluster's journal) with its trials on the cluster's workers, and measures the
    /// completed models on this machine. It gives the trials, curves and front the sweep gives on one machine with the
    /// same seed and data (<c>Run(split.TrainSet, split.TestSet)</c> where <c>split</c> is
    /// <c>mlContext.Data.TrainTestSplit(data, ValidationFraction, seed)</c>, the reference's parts): a trial is
    /// the same computation wherever it runs, and successive halving decides in trial order.
    /// </summary>
    /// <remarks>
    /// This process is the coordinator: it hands the trials out (the lowest unfinished first, at most
    /// <see cref="ClusterSweepOptions.TrialsPerWorker"/> of its trials on a worker, more only while some wait at a rung
    /// for lower ones), answers each trial's rungs, and journals each finished trial in the cluster's grain storage,
    /// model first. No trial starts after <see cref="SparsitySweepOptions.MaxTime"/>. A trial whose worker leaves the cluster runs again on
    /// another; a worker that joins takes trials at once; a coordinator killed and started again resumes the journal.
    /// The sweep's <see cref="SparsitySweepOptions.ParallelTrials"/> caps the trials running at once (0: as many as the
    /// workers' slots), and its <see cref="SparsitySweepOptions.JournalFolder"/> must be null: the cluster keeps the journal.
    /// </remarks>
    /// <param name="sweep">The sweep.</param>
    /// <param name="cluster">A client connected to the cluster (<see cref="SparsityCluster.ConnectAsync"/>).</param>
    /// <param name="options">The sweep's name in the cluster and its data.</param>
    /// <param name="progress">Receives a report after each epoch and trial.</param>
    /// <param name="cancellationToken">Stops the sweep; finished trials stay in the journal, and running ones are told to stop.</param>
    /// <exception cref="ArgumentException">Bad options, or the cluster's journal of that name holds another sweep (the message names what differs).</exception>
    /// <exception cref="InvalidOperationException">No worker could run the trials for <see cref="ClusterSweepOptions.WorkerWaitTimeout"/> (the message says why, e.g. each worker's version or data hash against the coordinator's).</exception>
    /// <exception cref="TimeoutException">The cluster's messaging or journal kept failing for a minute; the message says what.</exception>
    public static SweepResult RunOnCluster(this SparsitySweep sweep, IClusterClient cluster, ClusterSweepOptions options,
        IProgress<SweepProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sweep);
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var sweepOptions = sweep.Options;
        if (sweepOptions.JournalFolder is not null)
            throw new ArgumentException("A sweep on a cluster keeps its journal in the cluster (ClusterSweepOptions.SweepName); leave SparsitySweepOptions.JournalFolder null.", nameof(sweep));
        var data = options.Data!;
        var (train, validation) = data.Load(sweepOptions.Seed);
        string hash = SparsitySweep.Fingerprint(train, validation);
        var journal = new ClusterSweepJournal(cluster, options.SweepName, sweep.Definition(SparsitySweep.DescribeData(train, validation, hash)), sweep.Pool);
        var context = WorkContext.Create(data, sweepOptions.Seed, hash, options.TrialsPerWorker);
        using var dispatcher = new WorkerDispatcher(cluster, options.TrialsPerWorker, options.WorkerWaitTimeout);
        // Every trial waits for a worker from the start, so the time budget is checked when a worker is free.
        var deadline = sweepOptions.MaxTime is { } budget ? DateTime.UtcNow + budget : DateTime.MaxValue;
        var runner = new ClusterTrialRunner(cluster, dispatcher,
            (index, settings) => TrialWorkItem.Create(index, settings, context, sweepOptions.Layers, sweepOptions.BatchSize), sweep.Pool,
            () => DateTime.UtcNow < deadline);
        int parallel = sweepOptions.ParallelTrials > 0 ? sweepOptions.ParallelTrials : sweepOptions.MaxTrials;
        var result = sweep.Run(runner, journal, parallel, progress, cancellationToken);
        return sweep.Measured(result, validation.GetFeatures(0).ToArray(), progress, cancellationToken);
    }
}
