using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>
/// What running a trial gave: the validation accuracy after each epoch (a lottery ticket: after each level), and the
/// model unless it was stopped, with the sparsity it was trained to (a compacted model's own is 0) and, when it came
/// as a file (from a cluster's worker), the file's bytes.
/// </summary>
internal sealed record TrialOutcome(IReadOnlyList<double> Curve, NeuralNetworkMulticlassModel? Model, double? Sparsity = null, byte[]? File = null)
{
    /// <summary>The completed model's sparsity: the one it was trained to, else its own.</summary>
    public double? ModelSparsity => Model is null ? null : Sparsity ?? Model.GetSparsityReport().Sparsity;

    /// <summary>The completed model's file: the bytes it came as, or the model saved now.</summary>
    public byte[]? ModelFileBytes() => Model is null ? null : File ?? Serialization.ModelFile.ToBytes(Model);
}

/// <summary>
/// Runs one trial from its settings alone: the unit of work a sweep hands out (to its own threads, or to a cluster's workers
/// with Microsoft.ML.Sparsity.Distributed). After each epoch it calls <c>keepGoing(epoch, validation accuracy)</c>; false
/// stops the trial there. <c>index</c> is the trial's number in the sweep (a cluster serves lower numbers first).
/// </summary>
internal interface ITrialRunner
{
    TrialOutcome Run(int index, TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation);
}

/// <summary>Trains the package's network on data read once.</summary>
internal sealed class NetworkTrialRunner(MLContext context, Dataset train, Dataset validation, IReadOnlyList<LayerDefinition> layers, int batchSize) : ITrialRunner
{
    public TrialOutcome Run(int index, TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation)
    {
        var curve = new List<double>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var progress = new SynchronousProgress<TrainingProgress>(p =>
        {
            curve.Add(p.ValidationAccuracy ?? double.NaN);
            if (!keepGoing(p.Epoch, curve[^1])) stop.Cancel();
        });
        try
        {
            if (settings.Method == SweepMethod.LotteryTicket) return LotteryTicket(settings, threads, curve, keepGoing, stop);
            var model = context.MulticlassClassification.Trainers.NeuralNetwork(settings.ToTrainerOptions(context, layers, threads, batchSize))
                .Fit(train, validation, progress, stop.Token);
            double sparsity = model.GetSparsityReport().Sparsity;
            // Channel exploration's point is a smaller dense network: the trial measures it compacted.
            return new TrialOutcome(curve, settings.Method == SweepMethod.ChannelExploration ? context.Sparsity().Compact(model) : model, sparsity);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            return new TrialOutcome(curve, null);
        }
    }

    /// <summary>Iterative magnitude pruning, each level's ticket accuracy on the validation data one point of the curve.</summary>
    private TrialOutcome LotteryTicket(TrialSettings settings, int threads, List<double> curve, Func<int, double, bool> keepGoing, CancellationTokenSource stop)
    {
        var imp = context.Sparsity().LotteryTicket(settings.LotteryTicketOptions(context, layers, threads, batchSize));
        var levels = new SynchronousProgress<LotteryTickets.LotteryTicketLevelResult>(level =>
        {
            if (level.Variant != LotteryTickets.LotteryTicketVariant.Ticket) return;
            curve.Add(level.FinalTestAccuracy ?? double.NaN);
            if (!keepGoing(curve.Count, curve[^1])) stop.Cancel();
        });
        var result = imp.RunOnDatasets(train, validation, validation, levels, stop.Token);
        return new TrialOutcome(curve, result.Model, result.Model.GetSparsityReport().Sparsity);
    }
}

/// <summary>
/// One trial on k folds at once: each fold trains on its own thread(s), the folds wait for each other at the end of
/// every epoch, and the trial reports the mean of their accuracies (so a rung decides on the mean and stops every fold).
/// The outcome's model is the first fold's.
/// </summary>
internal sealed class CrossValidationTrialRunner(IReadOnlyList<NetworkTrialRunner> folds) : ITrialRunner
{
    public TrialOutcome Run(int index, TrialSettings settings, int threads, Func<int, double, bool> keepGoing, CancellationToken cancellation)
    {
        int k = folds.Count;
        var curves = folds.Select(_ => new List<double>()).ToArray();
        var mean = new List<double>();
        bool goOn = true;
        Exception? failure = null;
        using var barrier = new Barrier(k, _ =>
        {
            // Every fold still training has reported the epoch; a failed fold has left, and the trial stops.
            int epoch = mean.Count + 1;
            var reached = curves.Where(c => c.Count >= epoch).ToList();
            if (reached.Count == 0 || Volatile.Read(ref failure) is not null || cancellation.IsCancellationRequested)
            {
                goOn = false;
                return;
            }
            mean.Add(reached.Average(c => c[epoch - 1]));
            goOn = keepGoing(epoch, mean[^1]);
        });
        var outcomes = new TrialOutcome?[k];
        var tasks = Enumerable.Range(0, k).Select(f => Task.Factory.StartNew(() =>
        {
            try
            {
                outcomes[f] = folds[f].Run(index, settings, Math.Max(1, threads / k), (_, accuracy) =>
                {
                    curves[f].Add(accuracy);
                    barrier.SignalAndWait(CancellationToken.None);
                    return goOn;
                }, cancellation);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
            }
            finally
            {
                try
                {
                    barrier.RemoveParticipant(); // may end the phase and run its action, whose failure is the trial's too
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, e, null);
                }
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        Task.WaitAll(tasks, CancellationToken.None);
        if (failure is not null)
        {
            if (failure is BarrierPostPhaseException { InnerException: { } inner }) failure = inner;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }
        return outcomes.All(o => o?.Model is not null) ? new TrialOutcome(mean, outcomes[0]!.Model, outcomes[0]!.Sparsity) : new TrialOutcome(mean, null);
    }
}
