using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>The optimiser that updates a network's parameters from their gradients. Weight decay applies to every parameter, as in PyTorch.</summary>
public abstract class OptimizerOptions
{
    private protected OptimizerOptions() { }

    /// <summary>The base learning rate; the learning-rate schedule scales it.</summary>
    public float LearningRate;

    /// <summary>The weight-decay coefficient (0 = none).</summary>
    public float WeightDecay;

    internal abstract Optimizer Create(IReadOnlyList<Parameter> parameters, WorkerPool pool);

    internal virtual void Validate()
    {
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "The learning rate must be a positive finite number.");
        if (!(WeightDecay >= 0) || !float.IsFinite(WeightDecay))
            throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "Weight decay must be zero or positive.");
    }
}

/// <summary>
/// Stochastic gradient descent with momentum, with PyTorch's semantics: g ← g + λw; v ← μv + g;
/// w ← w − η·v (or w ← w − η·(g + μv) with Nesterov momentum).
/// </summary>
public sealed class SgdOptimizerOptions : OptimizerOptions
{
    /// <summary>Creates SGD options with learning rate 0.01 and momentum 0.9.</summary>
    public SgdOptimizerOptions() => LearningRate = 0.01f;

    /// <summary>The momentum μ, in [0, 1). Default 0.9.</summary>
    public float Momentum = 0.9f;

    /// <summary>Use Nesterov momentum (Sutskever et al., "On the importance of initialization and momentum in deep learning", 2013). Default false.</summary>
    public bool Nesterov;

    internal override void Validate()
    {
        base.Validate();
        if (!(Momentum >= 0 && Momentum < 1)) throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "Momentum must be in [0, 1).");
        if (Nesterov && Momentum == 0) throw new ArgumentException("Nesterov momentum needs a positive Momentum.", nameof(Nesterov));
    }

    internal override Optimizer Create(IReadOnlyList<Parameter> parameters, WorkerPool pool) => new SgdOptimizer(parameters, pool, this);
}

/// <summary>
/// Adam (Kingma &amp; Ba, "Adam: A Method for Stochastic Optimization", 2015), with bias correction. With
/// <see cref="DecoupledWeightDecay"/> it is AdamW (Loshchilov &amp; Hutter, "Decoupled Weight Decay Regularization", 2019).
/// </summary>
public sealed class AdamOptimizerOptions : OptimizerOptions
{
    /// <summary>Creates Adam options with learning rate 0.001.</summary>
    public AdamOptimizerOptions() => LearningRate = 0.001f;

    /// <summary>The decay of the first-moment estimate. Default 0.9.</summary>
    public float Beta1 = 0.9f;

    /// <summary>The decay of the second-moment estimate. Default 0.999.</summary>
    public float Beta2 = 0.999f;

    /// <summary>Added to the denominator for numerical stability. Default 1e-8.</summary>
    public float Epsilon = 1e-8f;

    /// <summary>
    /// False (default): weight decay is an L2 term added to the gradient (Adam). True: the weights shrink by
    /// η·λ·w outside the adaptive update (AdamW).
    /// </summary>
    public bool DecoupledWeightDecay;

    internal override void Validate()
    {
        base.Validate();
        if (!(Beta1 >= 0 && Beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(Beta1), Beta1, "Must be in [0, 1).");
        if (!(Beta2 >= 0 && Beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(Beta2), Beta2, "Must be in [0, 1).");
        if (!(Epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, "Must be positive.");
    }

    internal override Optimizer Create(IReadOnlyList<Parameter> parameters, WorkerPool pool) => new AdamOptimizer(parameters, pool, this);
}
