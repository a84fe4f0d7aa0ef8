using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>
/// Options of <see cref="ParallelGap"/>: parallel scheduled grow-and-prune, P-GaP ("Effective Model Sparsification by
/// Scheduled Grow-and-Prune Methods", Ma, Qin, Sun et al., ICLR 2022). Every field has a documented default.
/// </summary>
/// <remarks>
/// <see cref="Training"/>.Epochs is the length of the run as one machine per partition would see it: <c>Rounds</c>
/// rounds of T epochs, then fine-tuning with the mask fixed for the remaining epochs. Each round trains κ copies for T
/// epochs each (κ·T epochs of compute), one after the other on this machine.
/// </remarks>
public sealed class ParallelGapOptions
{
    /// <summary>
    /// How every copy and the fine-tuning train: layers, epochs, batch size, optimiser, learning-rate schedule,
    /// initialiser, validation split, seed, threads. Its <c>Sparsity</c> must be null (P-GaP sets the masks). Default:
    /// the trainer's defaults with LeNet-300-100.
    /// </summary>
    public NeuralNetworkMulticlassTrainer.Options Training = new() { Layers = Layers.LeNet300100() };

    /// <summary>
    /// The targets, partitions, T and rounds, as for C-GaP (<see cref="GapOptions.Order"/> is not used: every round
    /// grows every partition, one per copy). Default: <see cref="GapOptions"/>'s defaults (90% sparsity, ERK, κ = min(4,
    /// layers)); with neither T nor the rounds set, 3 rounds whose T fills 75% of the epochs.
    /// </summary>
    public GapOptions Gap = new();

    /// <summary>The rounds when neither <see cref="GapOptions.StepEpochs"/> nor <see cref="GapOptions.Rounds"/> is set.</summary>
    internal const int DefaultRounds = 3;

    internal void Validate()
    {
        if (Training is null) throw new ArgumentNullException(nameof(Training), "ParallelGapOptions.Training must be set.");
        if (Gap is null) throw new ArgumentNullException(nameof(Gap), "ParallelGapOptions.Gap must be set.");
        NetworkTraining.ValidateOptions(Training);
        if (Training.Sparsity is not null)
            throw new ArgumentException("Training.Sparsity must be null: P-GaP sets the masks itself (ParallelGapOptions.Gap).", nameof(Training));
        Gap.Validate();
    }

    /// <summary>A one-line description, as recorded in model files.</summary>
    public override string ToString() =>
        FormattableString.Invariant($"P-GaP to {Gap.TargetSparsity:0.###} sparsity: {Gap.Pattern}, {Gap.Allocation}, ") + Gap.DescribeSchedule();
}
