using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// Runs a sweep's trials on the cluster's workers, at least once each: a trial whose worker leaves the cluster (or whose
/// call fails in the cluster's messaging) runs again on another worker from its start; only the attempt that returns
/// counts. A worker that refuses the work (another package version or data) gets no more of it. Errors of the trial's
/// own (options a worker rejects, training that fails) come back as the trial's failure.
/// </summary>
internal sealed class ClusterTrialRunner(IGrainFactory grains, WorkerDispatcher dispatcher, Func<int, TrialSettings, TrialWorkItem> workItem, Engine.WorkerPool pool) : ITrialRunner
{
    /// <summary>How long a worker's question at the end of an epoch waits for an answer before it asks again.</summary>
    internal static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(10);

    /// <summary>How long the coordinator waits for a decision before it lets the trial's worker slot go to others.</summary>
    internal static readonly TimeSpan SlotHeldWhileWaiting = TimeSpan.FromSeconds(1);

    public TrialOutcome Run(int index, TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation)
    {
        var item = workItem(index, settings);
        DateTime? failingSince = null; // since when the attempts have been failing in the messaging
        while (true)
        {
            var worker = dispatcher.Acquire(index, cancellation);
            var observer = new EpochObserver(worker, dispatcher, keepGoing, cancellation);
            var reference = grains.CreateObjectReference<IEpochObserver>(observer);
            try
            {
                var call = OnWorker(worker, grain => grain.RunTrial(item, reference));
                while (!call.Wait(WorkerDispatcher.Interval, CancellationToken.None))
                {
                    if (cancellation.IsCancellationRequested)
                    {
                        observer.Abandon();
                        throw new OperationCanceledException(cancellation);
                    }
                    if (!dispatcher.IsAlive(worker)) break; // lost with its worker: run it again elsewhere
                }
                if (!call.IsCompleted)
                {
                    observer.Abandon();
                    failingSince = null;
                    continue;
                }
                // A trial told to stop because the sweep was cancelled or halted did not stop at a rung: nothing is journaled.
                cancellation.ThrowIfCancellationRequested();
                var result = call.Result;
                return new TrialOutcome(result.Curve, result.Model is { } bytes ? Load(bytes) : null, result.Sparsity);
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
                    throw new SweepHaltException(new TimeoutException($"Trial {index} kept failing in the cluster's messaging for {ClusterRetry.Patience.TotalSeconds:0} s; the last failure: {failure.Message}", failure));
                Thread.Sleep(500);
            }
            catch (AggregateException e) when (e.InnerException is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }
            finally
            {
                observer.Done();
                grains.DeleteObjectReference<IEpochObserver>(reference);
                GC.KeepAlive(observer);
            }
        }
    }

    private Microsoft.ML.Sparsity.Models.NeuralNetworkMulticlassModel Load(byte[] bytes)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        return (Microsoft.ML.Sparsity.Models.NeuralNetworkMulticlassModel)Serialization.ModelFile.Load(stream, pool);
    }

    /// <summary>Calls a new activation of the worker grain, placed on <paramref name="worker"/> by Orleans' placement hint (which the call's request context carries).</summary>
    internal Task<T> OnWorker<T>(SiloAddress worker, Func<IWorkerGrain, Task<T>> call)
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

    /// <summary>
    /// Answers a trial's worker after each epoch. The decision (which may wait at a rung for other trials) runs once per
    /// epoch; the worker asks until it has it. While the decision waits, the trial's slot is lent to other trials (a
    /// trial waiting for a lower one that lost its worker must not hold the slot that trial needs).
    /// </summary>
    private sealed class EpochObserver(SiloAddress worker, WorkerDispatcher dispatcher, Func<int, double, bool> keepGoing, CancellationToken cancellation) : IEpochObserver
    {
        private readonly object _gate = new();
        private int _epoch;
        private Task<bool>? _decision;
        private bool _abandoned, _holdsSlot = true;

        public async Task<bool?> Epoch(int epoch, double accuracy)
        {
            Task<bool> decision;
            lock (_gate)
            {
                if (_abandoned) return false;
                if (_decision is null || _epoch != epoch)
                {
                    _epoch = epoch;
                    _decision = Task.Factory.StartNew(() => Decide(epoch, accuracy), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                }
                decision = _decision;
            }
            if (await Task.WhenAny(decision, Task.Delay(AnswerWithin)) != decision) return null;
            return await decision;
        }

        private bool Decide(int epoch, double accuracy)
        {
            using var lend = new Timer(_ => Lend(), null, SlotHeldWhileWaiting, Timeout.InfiniteTimeSpan);
            try
            {
                return keepGoing(epoch, accuracy) && !cancellation.IsCancellationRequested;
            }
            catch (OperationCanceledException)
            {
                return false; // the sweep halted or was cancelled; it says which
            }
            finally
            {
                lend.Dispose();
                lock (_gate)
                {
                    if (!_holdsSlot && !_abandoned)
                    {
                        dispatcher.Resume(worker);
                        _holdsSlot = true;
                    }
                }
            }
        }

        private void Lend()
        {
            lock (_gate)
            {
                if (!_holdsSlot || _abandoned) return;
                dispatcher.Release(worker);
                _holdsSlot = false;
            }
        }

        /// <summary>The attempt was given up: the worker is told to stop at its next question.</summary>
        public void Abandon()
        {
            lock (_gate) _abandoned = true;
        }

        /// <summary>The attempt ended: its slot is freed.</summary>
        public void Done()
        {
            lock (_gate)
            {
                _abandoned = true;
                if (!_holdsSlot) return;
                _holdsSlot = false;
                dispatcher.Release(worker);
            }
        }
    }
}
