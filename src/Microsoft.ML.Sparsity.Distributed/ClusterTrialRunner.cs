using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// Runs a sweep's trials on the cluster's workers (<see cref="ClusterWork"/>: at least once each, again elsewhere when a
/// worker is lost), answering each trial's worker after every epoch. Errors of the trial's own (options a worker
/// rejects, training that fails) come back as the trial's failure.
/// </summary>
/// <param name="grains">The cluster.</param>
/// <param name="dispatcher">Hands out the workers.</param>
/// <param name="workItem">Trial i's work item.</param>
/// <param name="pool">The pool the returned models predict on.</param>
/// <param name="mayStart">Checked when a worker is free for a trial (the sweep's time budget); null: always.</param>
internal sealed class ClusterTrialRunner(IGrainFactory grains, WorkerDispatcher dispatcher, Func<int, TrialSettings, TrialWorkItem> workItem, Engine.WorkerPool pool,
    Func<bool>? mayStart = null) : ITrialRunner
{
    /// <summary>How long a worker's question at the end of an epoch waits for an answer before it asks again.</summary>
    internal static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(10);

    /// <summary>How long the coordinator waits for a decision before it lets the trial's worker slot go to others.</summary>
    internal static readonly TimeSpan SlotHeldWhileWaiting = TimeSpan.FromSeconds(1);

    public TrialOutcome Run(int index, TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation)
    {
        var result = RunOnWorker(index, settings, keepGoing, cancellation);
        return new TrialOutcome(result.Curve, result.Model is { } bytes ? (Models.NeuralNetworkMulticlassModel)Serialization.ModelFile.FromBytes(bytes, pool) : null, result.Sparsity, result.Model);
    }

    /// <summary>The trial's result as its worker sent it.</summary>
    internal TrialWorkResult RunOnWorker(int index, TrialSettings settings, Func<int, double, bool> keepGoing, CancellationToken cancellation)
    {
        var item = workItem(index, settings);
        return ClusterWork.Run(dispatcher, grains, index, $"Trial {index}", (worker, grain) =>
        {
            var observer = new EpochObserver(index, worker, dispatcher, keepGoing, cancellation);
            var reference = grains.CreateObjectReference<IEpochObserver>(observer);
            try
            {
                return new Attempt(grain.RunTrial(item, reference), observer, () => grains.DeleteObjectReference<IEpochObserver>(reference));
            }
            catch
            {
                grains.DeleteObjectReference<IEpochObserver>(reference);
                throw;
            }
        }, mayStart, cancellation);
    }

    /// <summary>A trial's attempt: its observer holds the worker's slot (and lends it while a rung decision waits).</summary>
    private sealed class Attempt(Task<TrialWorkResult> call, EpochObserver observer, Action deleteReference) : IWorkerAttempt<TrialWorkResult>
    {
        public Task<TrialWorkResult> Call => call;

        public void Abandon() => observer.Abandon();

        public void Done()
        {
            observer.Done();
            deleteReference();
        }
    }


    /// <summary>
    /// Answers a trial's worker after each epoch. The decision (which may wait at a rung for other trials) runs once per
    /// epoch; the worker asks until it has it. While the decision waits, the trial's slot is lent to other trials (a
    /// trial waiting for a lower one that lost its worker must not hold the slot that trial needs), but only to a lower
    /// trial waiting for one, so a worker runs more trials than its slots only while they wait for lower ones.
    /// </summary>
    private sealed class EpochObserver(int index, SiloAddress worker, WorkerDispatcher dispatcher, Func<int, double, bool> keepGoing, CancellationToken cancellation) : IEpochObserver
    {
        private readonly object _gate = new();
        private int _epoch;
        private Task<bool>? _decision;
        private bool _abandoned, _deciding, _holdsSlot = true;

        public async Task<bool?> Epoch(int epoch, double accuracy)
        {
            Task<bool> decision;
            lock (_gate)
            {
                if (_abandoned) return false;
                if (_decision is null || _epoch != epoch)
                {
                    _epoch = epoch;
                    _deciding = true;
                    _decision = Task.Factory.StartNew(() => Decide(epoch, accuracy), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                }
                decision = _decision;
            }
            if (await Task.WhenAny(decision, Task.Delay(AnswerWithin)).ConfigureAwait(false) != decision) return null;
            return await decision.ConfigureAwait(false);
        }

        private bool Decide(int epoch, double accuracy)
        {
            // While the decision waits (at a rung, for lower trials), a lower trial waiting for a slot gets this one.
            using var lend = new Timer(_ => Lend(), null, SlotHeldWhileWaiting, SlotHeldWhileWaiting);
            try
            {
                return keepGoing(epoch, accuracy) && !cancellation.IsCancellationRequested;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return false; // the sweep halted, was cancelled or has ended; it says which
            }
            finally
            {
                lock (_gate)
                {
                    _deciding = false; // a lend callback still queued does nothing now
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
                if (!_deciding || !_holdsSlot || _abandoned || !dispatcher.LowerWaiting(index)) return;
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
