using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>What running a trial gave: the validation accuracy after each epoch, and the model unless it was stopped.</summary>
internal sealed record TrialOutcome(IReadOnlyList<double> Curve, NeuralNetworkMulticlassModel? Model);

/// <summary>
/// Runs one trial from its settings alone: the unit of work a sweep hands out (to its own threads now, to other machines
/// later). After each epoch it calls <c>keepGoing(epoch, validation accuracy)</c>; false stops the trial there.
/// </summary>
internal interface ITrialRunner
{
    TrialOutcome Run(TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation);
}

/// <summary>Trains the package's network on data read once.</summary>
internal sealed class NetworkTrialRunner(MLContext context, Dataset train, Dataset validation, IReadOnlyList<LayerDefinition> layers, int batchSize) : ITrialRunner
{
    public TrialOutcome Run(TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation)
    {
        var curve = new List<double>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var progress = new EpochCallback(p =>
        {
            curve.Add(p.ValidationAccuracy ?? double.NaN);
            if (!keepGoing(p.Epoch, curve[^1])) stop.Cancel();
        });
        var trainer = context.MulticlassClassification.Trainers.NeuralNetwork(settings.ToTrainerOptions(context, layers, threads, batchSize));
        try
        {
            return new TrialOutcome(curve, trainer.Fit(train, validation, progress, stop.Token));
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            return new TrialOutcome(curve, null);
        }
    }

    /// <summary>Called on the training thread at the end of each epoch (<see cref="Progress{T}"/> would post it elsewhere, too late to stop).</summary>
    private sealed class EpochCallback(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
