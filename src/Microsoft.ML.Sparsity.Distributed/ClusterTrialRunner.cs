using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// Runs a sweep's trials on the cluster's workers (<see cref="ClusterWork"/>: at least once each, again elsewhere when a
/// worker is lost), answering each trial's worker after every epoch. Errors of the trial's own (options a worker
/// rejects, training that fails) come back as the trial's failure.
/// </summary>
internal sealed class ClusterTrialRunner(IGrainFactory grains, WorkerDispatcher dispatcher, Func<int, TrialSettings, TrialWorkItem> workItem, Engine.WorkerPool pool) : ITrialRunner
{
    /// <summary>How long a worker's question at the end of an epoch waits for an answer before it asks again.</summary>
    internal static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(10);

    /// <summary>How long the coordinator waits for a decision before it lets the trial's worker slot go to others.</summary>
    internal static readonly TimeSpan SlotHeldWhileWaiting = TimeSpan.FromSeconds(1);

    public TrialOutcome Run(int index, TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation)
    {
        var result = RunOnWorker(index, settings, keepGoing, cancellation);
        return new TrialOutcome(result.Curve, result.Model is { } bytes ? Load(bytes) : null, result.Sparsity);
    }

    /// <summary>The trial's result as its worker sent it.</summary>
    internal TrialWorkResult RunOnWorker(int index, TrialSettings settings, Func<int, double, bool> keepGoing, CancellationToken cancellation)
    {
        var item = workItem(index, settings);
        return ClusterWork.Run(dispatcher, index, $"Trial {index}", worker =>
        {
            var observer = new EpochObserver(worker, dispatcher, keepGoing, cancellation);
            var reference = grains.CreateObjectReference<IEpochObserver>(observer);
            return new Attempt(ClusterWork.OnWorker(grains, worker, grain => grain.RunTrial(item, reference)), observer, () => grains.DeleteObjectReference<IEpochObserver>(reference));
        }, cancellation);
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

    internal Microsoft.ML.Sparsity.Models.NeuralNetworkMulticlassModel Load(byte[] bytes)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        return (Microsoft.ML.Sparsity.Models.NeuralNetworkMulticlassModel)Serialization.ModelFile.Load(stream, pool);
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
