using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>One attempt at a unit of work on a worker: the call, and what ends the attempt (it frees the worker's slot).</summary>
internal interface IWorkerAttempt<T>
{
    Task<T> Call { get; }

    /// <summary>The attempt is given up (its worker was lost, or the work was cancelled): the worker is told to stop if it asks.</summary>
    void Abandon();

    /// <summary>The attempt ended, however: its slot is freed.</summary>
    void Done();
}

/// <summary>
/// Runs units of work on the cluster's workers, at least once each: a unit whose worker leaves the cluster (or whose
/// call fails in the cluster's messaging) runs again on another worker from its start; only the attempt that returns
/// counts. A worker that refuses the work (another package version or data) gets no more of it. Errors of the unit's
/// own (options a worker rejects, training that fails) are rethrown as they are.
/// </summary>
internal static class ClusterWork
{
    /// <summary>Runs unit <paramref name="index"/> (lower ones get free workers first) to its result.</summary>
    /// <exception cref="SweepHaltException">No worker could take it, or the messaging kept failing for <see cref="ClusterRetry.Patience"/>.</exception>
    public static T Run<T>(WorkerDispatcher dispatcher, int index, string what, Func<SiloAddress, IWorkerAttempt<T>> start, CancellationToken cancellation)
    {
        DateTime? failingSince = null; // since when the attempts have been failing in the messaging
        while (true)
        {
            var worker = dispatcher.Acquire(index, cancellation);
            var attempt = start(worker);
            try
            {
                var call = attempt.Call;
                while (!call.Wait(WorkerDispatcher.Interval, CancellationToken.None))
                {
                    if (cancellation.IsCancellationRequested)
                    {
                        attempt.Abandon();
                        throw new OperationCanceledException(cancellation);
                    }
                    if (!dispatcher.IsAlive(worker)) break; // lost with its worker: run it again elsewhere
                }
                if (!call.IsCompleted)
                {
                    attempt.Abandon();
                    failingSince = null;
                    continue;
                }
                // Work told to stop because it was cancelled (or its sweep halted) did not end by itself: no result.
                cancellation.ThrowIfCancellationRequested();
                return call.Result;
            }
            catch (AggregateException e) when (e.InnerException is WorkerMismatchException refused)
            {
                dispatcher.Refuse(worker, refused.Message);
            }
            catch (AggregateException e) when (e.InnerException is { } failure && ClusterRetry.IsMessaging(failure))
            {
                // A messaging failure (a worker dying but not yet declared dead, a dropped connection): try again, on
                // whichever worker is free, for a while.
                failingSince ??= DateTime.UtcNow;
                if (DateTime.UtcNow - failingSince > ClusterRetry.Patience)
                    throw new SweepHaltException(new TimeoutException($"{what} kept failing in the cluster's messaging for {ClusterRetry.Patience.TotalSeconds:0} s; the last failure: {failure.Message}", failure));
                Thread.Sleep(500);
            }
            catch (AggregateException e) when (e.InnerException is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }
            finally
            {
                attempt.Done();
            }
        }
    }

    /// <summary>Calls a new activation of the worker grain, placed on <paramref name="worker"/> by Orleans' placement hint (which the call's request context carries).</summary>
    public static Task<T> OnWorker<T>(IGrainFactory grains, SiloAddress worker, Func<IWorkerGrain, Task<T>> call)
    {
        RequestContext.Set(Orleans.Runtime.Placement.IPlacementDirector.PlacementHintKey, worker);
        try
        {
            return call(grains.GetGrain<IWorkerGrain>(Guid.NewGuid()));
        }
        finally
        {
            RequestContext.Remove(Orleans.Runtime.Placement.IPlacementDirector.PlacementHintKey);
        }
    }
}
