using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>
/// Everything iterative magnitude pruning needs to go on from where it is, and so what a checkpoint holds. Runs are
/// pure functions of this state, the options, the seed and the data: a run resumed from a checkpoint ends with
/// bit-identical weights to one never interrupted.
/// </summary>
internal sealed class ImpState
{
    /// <summary>The level being trained (0 = dense).</summary>
    public int Level { get; set; }

    /// <summary>The position in the level's list of runs (<see cref="ImpRun.Variants"/>).</summary>
    public int Phase { get; set; }

    /// <summary>
    /// The weights the level's runs start from before masking (θ₀, θ_k, or the last trained ticket), with the optimiser
    /// state and step to start from in <see cref="NeuralNetworkModel.Training"/> (null: a fresh optimiser at step 0).
    /// </summary>
    public required NeuralNetworkMulticlassModel Source { get; set; }

    /// <summary>The level's ticket masks, one per pruned layer; null at level 0.</summary>
    public float[][]? Masks { get; set; }

    /// <summary>θ_k and the optimiser state of step k, once level 0 has passed step k (weight resets only).</summary>
    public NeuralNetworkMulticlassModel? Rewind { get; set; }

    /// <summary>The run in progress, if one has started: its network, optimiser state and step.</summary>
    public NeuralNetworkMulticlassModel? Current { get; set; }

    /// <summary>The early-stopping record of the run in progress.</summary>
    public RunTracking Tracking { get; set; } = new();

    public List<LotteryTicketLevelResult> Results { get; } = [];
}

/// <summary>The minimum validation loss of a run so far, where it was, and the test accuracy there.</summary>
internal sealed class RunTracking
{
    public double? BestValidationLoss { get; set; }
    public long BestStep { get; set; }
    public double? BestTestAccuracy { get; set; }
}
