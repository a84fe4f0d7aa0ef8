using Microsoft.ML.Sparsity.GrowAndPrune;
using Microsoft.ML.Sparsity.Sweeps;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>Runs parallel grow-and-prune (P-GaP) with each round's copies on an Orleans cluster's workers.</summary>
public static class ClusterGapExtensions
{
    /// <summary>
    /// Runs every round of P-GaP with its κ copies on the cluster's workers at once, merging each round here, then the
    /// fine-tuning here. The weights equal those of <c>Run(split.TrainSet, split.TestSet)</c> on one machine, bit for bit,
    /// where <c>split</c> is <c>mlContext.Data.TrainTestSplit(data, data.ValidationFraction, splitSeed)</c> (the
    /// reference's parts): each copy is the same computation wherever it runs.
    /// </summary>
    /// <remarks>
    /// A copy whose worker leaves the cluster runs again on another; a worker refusing the work (another package version
    /// or data) gets no more of it. Each worker loads the data itself and checks its SHA-256 (the reference's data, in
    /// <c>Training.InputShape</c> when set; the options' column names do not apply). Cancelling stops this machine: a
    /// copy already running on a worker runs to its end unused.
    /// </remarks>
    /// <param name="gap">The P-GaP estimator (<c>mlContext.Sparsity().ParallelGrowAndPrune(options)</c>).</param>
    /// <param name="cluster">A client connected to the cluster (<see cref="SparsityCluster.ConnectAsync"/>).</param>
    /// <param name="data">Where every worker (and this machine) loads the data.</param>
    /// <param name="splitSeed">Seeds the split of the data into training and validation parts. Default 1.</param>
    /// <param name="copiesPerWorker">Copies a worker trains at once, splitting its processors. Default 1.</param>
    /// <param name="workerWaitTimeout">How long to wait for a worker that can run copies before stopping with an error. Default 2 minutes.</param>
    /// <param name="progress">Receives the fine-tuning epochs' progress.</param>
    /// <param name="cancellationToken">Stops the run.</param>
    /// <exception cref="ArgumentException">Bad options or data; the message names the option.</exception>
    /// <exception cref="InvalidOperationException">No worker could run the copies (the message says why).</exception>
    /// <exception cref="TimeoutException">The cluster's messaging kept failing for a minute; the message says what.</exception>
    public static ParallelGapResult RunOnCluster(this ParallelGap gap, IClusterClient cluster, SweepDataReference data, int splitSeed = 1, int copiesPerWorker = 1,
        TimeSpan? workerWaitTimeout = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(gap);
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(data);
        data.Validate();
        if (copiesPerWorker < 1) throw new ArgumentOutOfRangeException(nameof(copiesPerWorker), copiesPerWorker, "A worker trains at least one copy at once.");
        var patience = workerWaitTimeout ?? TimeSpan.FromMinutes(2);
        if (!(patience > TimeSpan.Zero)) throw new ArgumentOutOfRangeException(nameof(workerWaitTimeout), patience, "The wait for workers must be positive.");
        gap.Options.Validate();
        string options = GapOptionsJson.Write(gap.Options);
        var (train, validation) = data.Load(splitSeed);
        string hash = SparsitySweep.Fingerprint(train, validation);
        if (gap.Options.Training.InputShape is { } shape) (train, validation) = (train.Reshape(shape), validation.Reshape(shape));
        var context = WorkContext.Create(data, splitSeed, hash, copiesPerWorker);
        using var dispatcher = new WorkerDispatcher(cluster, copiesPerWorker, patience);
        try
        {
            return gap.Run(train, validation, (copies, _, cancellation) =>
            {
                var runs = copies.Select(copy => Task.Factory.StartNew(() => ClusterWork.Run(dispatcher, cluster, copy.Round * copies.Count + copy.Partition,
                    $"P-GaP round {copy.Round}, copy {copy.Partition}", (worker, grain) => new Attempt(dispatcher, worker,
                        grain.RunGapCopy(GapCopyWorkItem.Create(copy, options, context))), null, cancellation),
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
                Task.WaitAll(runs, CancellationToken.None);
                return [.. runs.Select(r => r.Result.ToResult())];
            }, progress, cancellationToken);
        }
        catch (AggregateException e) when (e.InnerException is { } inner)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner is SweepHaltException { InnerException: { } cause } ? cause : inner).Throw();
            throw;
        }
    }

    /// <summary>A copy's attempt: it holds its worker's slot until it ends.</summary>
    private sealed class Attempt(WorkerDispatcher dispatcher, SiloAddress worker, Task<GapCopyWorkResult> call) : IWorkerAttempt<GapCopyWorkResult>
    {
        private int _done;

        public Task<GapCopyWorkResult> Call => call;

        public void Abandon() { } // a lost worker's copy cannot be reached; one on a living worker runs to its end unused

        public void Done()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) dispatcher.Release(worker);
        }
    }
}
