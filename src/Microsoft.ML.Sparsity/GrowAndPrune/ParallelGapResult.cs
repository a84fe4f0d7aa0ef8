using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>One P-GaP round: κ copies trained and merged.</summary>
public sealed class ParallelGapRound
{
    internal ParallelGapRound(int round, long maskChanges, double? validationLoss, double? validationAccuracy, double seconds)
    {
        Round = round;
        MaskChanges = maskChanges;
        ValidationLoss = validationLoss;
        ValidationAccuracy = validationAccuracy;
        Seconds = seconds;
    }

    /// <summary>The round, 0-based.</summary>
    public int Round { get; }

    /// <summary>Mask entries of the merged model that differ from the round's starting masks.</summary>
    public long MaskChanges { get; }

    /// <summary>The merged model's validation loss, when there is validation data.</summary>
    public double? ValidationLoss { get; }

    /// <summary>The merged model's validation accuracy, when there is validation data.</summary>
    public double? ValidationAccuracy { get; }

    /// <summary>Wall-clock seconds of the round (all κ copies).</summary>
    public double Seconds { get; }

    /// <inheritdoc/>
    public override string ToString() =>
        FormattableString.Invariant($"P-GaP round {Round + 1}: {MaskChanges:N0} mask entries changed") +
        (ValidationAccuracy is double a ? FormattableString.Invariant($", merged model val-loss {ValidationLoss:F4} val-acc {a:P2}") : "") +
        FormattableString.Invariant($", {Seconds:F1} s");
}

/// <summary>What a P-GaP run gives: the sparse model after fine-tuning and a record of every round.</summary>
public sealed class ParallelGapResult
{
    internal ParallelGapResult(int seed, IReadOnlyList<ParallelGapRound> rounds, NeuralNetworkMulticlassModel model) =>
        (Seed, Rounds, Model) = (seed, rounds, model);

    /// <summary>The training seed.</summary>
    public int Seed { get; }

    /// <summary>The rounds, in order.</summary>
    public IReadOnlyList<ParallelGapRound> Rounds { get; }

    /// <summary>The trained sparse model; its <c>TrainingHistory</c> holds the fine-tuning epochs.</summary>
    public NeuralNetworkMulticlassModel Model { get; }
}
