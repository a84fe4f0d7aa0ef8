namespace Microsoft.ML.Sparsity.Training;

/// <summary>A snapshot of training, reported through <see cref="IProgress{T}"/> at the end of every epoch.</summary>
public sealed class TrainingProgress
{
    internal TrainingProgress(int epoch, int epochs, long step, double trainingLoss, double? validationLoss, double? validationAccuracy,
        double samplesPerSecond, float learningRate, TimeSpan elapsed, double? sparsity, int pruningEvents, long? maskChanges)
    {
        PruningEvents = pruningEvents;
        Sparsity = sparsity;
        MaskChanges = maskChanges;
        Epoch = epoch;
        Epochs = epochs;
        Step = step;
        TrainingLoss = trainingLoss;
        ValidationLoss = validationLoss;
        ValidationAccuracy = validationAccuracy;
        SamplesPerSecond = samplesPerSecond;
        LearningRate = learningRate;
        Elapsed = elapsed;
    }

    /// <summary>The epoch just finished, 1-based.</summary>
    public int Epoch { get; }

    /// <summary>The number of epochs the run was asked for.</summary>
    public int Epochs { get; }

    /// <summary>Optimiser steps taken so far.</summary>
    public long Step { get; }

    /// <summary>The mean training loss over the epoch's batches.</summary>
    public double TrainingLoss { get; }

    /// <summary>The loss on the validation set, when there is one.</summary>
    public double? ValidationLoss { get; }

    /// <summary>The accuracy on the validation set, for classifiers with a validation set.</summary>
    public double? ValidationAccuracy { get; }

    /// <summary>Training throughput over the epoch (validation excluded).</summary>
    public double SamplesPerSecond { get; }

    /// <summary>The learning rate of the epoch's last step.</summary>
    public float LearningRate { get; }

    /// <summary>The fraction of prunable weights that are zero, when the trainer has a sparsity method.</summary>
    public double? Sparsity { get; }

    /// <summary>
    /// How many times the sparsity method pruned during the epoch (a gradual schedule prunes every few steps; the
    /// events are summarised here rather than reported one by one). Pruning at initialisation counts in epoch 1.
    /// </summary>
    public int PruningEvents { get; }

    /// <summary>
    /// For methods that recompute masks while training (N:M from scratch): how many mask entries changed during the
    /// epoch, the sparse architecture divergence (SAD) of Zhou et al. (2021) between consecutive epochs. For SET and
    /// RigL: the entries the epoch's updates flipped (each update drops k and grows k per layer: 2k).
    /// </summary>
    public long? MaskChanges { get; }

    /// <summary>Wall-clock time since training started.</summary>
    public TimeSpan Elapsed { get; }

    /// <inheritdoc/>
    public override string ToString() =>
        $"epoch {Epoch}/{Epochs}  loss {TrainingLoss:F4}" +
        (ValidationLoss is double vl ? $"  val-loss {vl:F4}" : "") +
        (ValidationAccuracy is double va ? $"  val-acc {va:P2}" : "") +
        (Sparsity is double s ? $"  sparsity {s:P1}" + (PruningEvents > 0 ? $" ({PruningEvents} pruning events)" : "") : "") +
        (MaskChanges is long sad ? $"  SAD {sad:N0}" : "") +
        $"  lr {LearningRate:G3}  {SamplesPerSecond:F0} samples/s";
}
