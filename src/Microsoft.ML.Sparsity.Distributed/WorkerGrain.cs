using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// A worker's unit of work. The training runs on a thread of its own (not Orleans' scheduler), with the worker's
/// processors split among <see cref="WorkContext.UnitsPerWorker"/> units; the activation ends with its call.
/// </summary>
internal sealed class WorkerGrain(ILocalSiloDetails silo, WorkerData data) : Grain, IWorkerGrain
{
    public Task<SiloAddress> Silo() => Task.FromResult(silo.SiloAddress);

    public Task<TrialWorkResult> RunTrial(TrialWorkItem item, IEpochObserver epochs) => OffScheduler(() => Trial(item, epochs));

    public Task<GapCopyWorkResult> RunGapCopy(GapCopyWorkItem item) => OffScheduler(() => GapCopyWorker.Run(item, data, silo.SiloAddress.ToString()));

    private async Task<T> OffScheduler<T>(Func<T> work)
    {
        try
        {
            return await Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            DeactivateOnIdle();
        }
    }

    private TrialWorkResult Trial(TrialWorkItem item, IEpochObserver epochs)
    {
        var (train, validation) = item.Context.Load(data, silo.SiloAddress.ToString());
        var settings = item.TrialSettings();
        data.Log($"trial {item.Index} started: {settings}");
        var context = new MLContext(item.Context.SplitSeed);
        var runner = new NetworkTrialRunner(context, train, validation, item.LayerDefinitions(), item.BatchSize);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var outcome = runner.Run(item.Index, settings, item.Context.Threads, (epoch, accuracy) =>
        {
            bool? goOn;
            do goOn = epochs.Epoch(epoch, accuracy).GetAwaiter().GetResult();
            while (goOn is null);
            return goOn.Value;
        }, CancellationToken.None);
        double seconds = clock.Elapsed.TotalSeconds;
        byte[]? model = outcome.ModelFileBytes();
        data.Log($"trial {item.Index} {(model is null ? "stopped" : "completed")} after {outcome.Curve.Count} epochs");
        return new TrialWorkResult([.. outcome.Curve], model, outcome.Sparsity, seconds);
    }
}
