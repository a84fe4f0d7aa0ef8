using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>One attempt at a unit of work on a worker: the call, and what ends the attempt (it frees the worker's slot).</summary>
internal interface IWorkerAttempt<T>
{
    Task<T> Call { get; }

    /// <summary>The attempt is given up (its worker was lost, or the work was cancelled): a trial's worker is told to stop at its next question (or finds the question fails); a P-GaP copy runs to its end unused.</summary>
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
    /// <param name="dispatcher">Hands out the workers.</param>
    /// <param name="grains">The cluster.</param>
    /// <param name="index">The unit's priority: lower first.</param>
    /// <param name="what">The unit's name in errors.</param>
    /// <param name="start">Starts an attempt on a worker grain activated on the given worker.</param>
    /// <param name="mayStart">Checked once a worker is free (e.g. a sweep's time budget); false: the unit does not start.</param>
    /// <param name="cancellation">Stops waiting; a running attempt is abandoned.</param>
    /// <exception cref="TrialNotStartedException"><paramref name="mayStart"/> said no.</exception>
    /// <exception cref="SweepHaltException">No worker could take it, or the messaging kept failing for <see cref="ClusterRetry.Patience"/>.</exception>
    public static T Run<T>(WorkerDispatcher dispatcher, IGrainFactory grains, int index, string what, Func<SiloAddress, IWorkerGrain, IWorkerAttempt<T>> start,
        Func<bool>? mayStart, CancellationToken cancellation)
    {
        DateTime? failingSince = null; // since when attempts have been failing quickly in the messaging
        while (true)
        {
            var worker = dispatcher.Acquire(index, cancellation);
            if (mayStart?.Invoke() == false)
            {
                dispatcher.Release(worker);
                throw new TrialNotStartedException();
            }
            var begun = DateTime.UtcNow;
            IWorkerAttempt<T>? attempt = null;
            try
            {
                // Orleans places the activation on the hinted worker only if it knows that worker yet (one that has
                // just joined may be unknown to the placing gateway): the activation says where it is, and the slot
                // and the watch follow it.
                var grain = Placed(grains, worker, out var placing);
                var actual = placing.GetAwaiter().GetResult();
                if (!actual.Equals(worker))
                {
                    dispatcher.Move(worker, actual);
                    worker = actual;
                }
                attempt = start(worker, grain);
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
            catch (Exception e) when (Unwrapped(e) is WorkerMismatchException refused)
            {
                dispatcher.Refuse(worker, refused.Message);
            }
            catch (Exception e) when (Unwrapped(e) is { } failure && ClusterRetry.IsMessaging(failure))
            {
                // A messaging failure (a worker dying but not yet declared dead, a dropped connection): try again, on
                // whichever worker is free. Quick failures in a row for longer than the patience halt; an attempt that
                // ran longer than that starts a new count.
                if (DateTime.UtcNow - begun > ClusterRetry.Patience) failingSince = null;
                failingSince ??= begun;
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
                if (attempt is not null) attempt.Done();
                else dispatcher.Release(worker);
            }
        }
    }

    private static Exception Unwrapped(Exception e) => e is AggregateException { InnerException: { } inner } ? inner : e;

    /// <summary>
    /// A new activation of the worker grain, placed on <paramref name="worker"/> by Orleans' placement hint (which the
    /// first call's request context carries); <paramref name="actual"/> is where it was placed.
    /// </summary>
    private static IWorkerGrain Placed(IGrainFactory grains, SiloAddress worker, out Task<SiloAddress> actual)
    {
        RequestContext.Set(Orleans.Runtime.Placement.IPlacementDirector.PlacementHintKey, worker);
        try
        {
            var grain = grains.GetGrain<IWorkerGrain>(Guid.NewGuid());
            actual = grain.Silo();
            return grain;
        }
        finally
        {
            RequestContext.Remove(Orleans.Runtime.Placement.IPlacementDirector.PlacementHintKey);
        }
    }
}
