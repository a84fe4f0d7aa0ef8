using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Masks;

/// <summary>
/// A way of making a network sparse during training, given to a trainer through its <c>Options.Sparsity</c> field.
/// <see cref="Pruning.PruningOptions"/> combines a pattern, an importance criterion, a layer allocation and a schedule;
/// other methods (N:M training, lottery tickets, grow-and-prune) plug in the same way.
/// </summary>
public abstract class SparsityMethod
{
    private protected SparsityMethod() { }

    internal abstract SparsityController CreateController(SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log);
}

/// <summary>The training loop's view of a sparsity method: hooks around each optimiser step.</summary>
internal abstract class SparsityController
{
    /// <summary>Called once before the first step.</summary>
    public virtual void Start(int stepsPerEpoch, long totalSteps) { }

    /// <summary>Called before the forward pass of step <paramref name="step"/> (0-based).</summary>
    public virtual void BeforeForward(long step) { }

    /// <summary>
    /// Forward and backward passes the step just begun makes over its batch (read after <see cref="BeforeForward"/>):
    /// 1 but for methods that train several sub-networks at once (nested sparsity levels).
    /// </summary>
    public virtual int Passes => 1;

    /// <summary>Called before the forward pass <paramref name="pass"/> (0-based) of every step, after <see cref="BeforeForward"/>.</summary>
    public virtual void BeforePass(long step, int pass) { }

    /// <summary>Called after the backward pass <paramref name="pass"/> of every step; after the last, the gradients must be the step's.</summary>
    public virtual void AfterPass(long step, int pass) { }

    /// <summary>Called after the backward pass of step <paramref name="step"/> (0-based), before the optimiser update.</summary>
    public virtual void AfterBackward(long step) { }

    /// <summary>Called after the optimiser update; <paramref name="completedSteps"/> updates have been made.</summary>
    public virtual void AfterStep(long completedSteps) { }

    /// <summary>Called before the network is evaluated (validation) between steps: the weights must be the model's.</summary>
    public virtual void BeforeEvaluation() { }

    /// <summary>Called at the end of every epoch; returns what the method did to the masks during it.</summary>
    public virtual EpochMaskActivity EndEpoch() => default;

    /// <summary>Called once after the last step: leaves the network as the trained sparse model.</summary>
    public virtual void Finish() { }

    /// <summary>True once the masks will not change again; early stopping only keeps weights from such epochs.</summary>
    public virtual bool MasksFinal(long completedSteps) => true;

    /// <summary>The fraction of prunable weights that are zero now.</summary>
    public abstract double Sparsity { get; }
}

/// <summary>What a sparsity method did to the masks during one epoch.</summary>
/// <param name="PruningEvents">How many times it pruned (gradual schedules prune many times an epoch).</param>
/// <param name="MaskChanges">Mask entries that changed since the previous epoch (SAD), for methods that recompute masks; else null.</param>
internal readonly record struct EpochMaskActivity(int PruningEvents, long? MaskChanges);
