using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.NMSparsity;

/// <summary>
/// N:M structured sparsity trained from scratch: in every group of M consecutive inputs of a dense or convolution
/// weight (for a convolution, M consecutive input channels at one kernel position) only N weights are non-zero.
/// The model keeps dense weights while training and projects them to N:M at every forward pass; the trained model is
/// N:M sparse with the mask fixed. Subclasses choose how gradients reach the pruned weights.
/// </summary>
public abstract class NMTrainingOptions : SparsityMethod
{
    private protected NMTrainingOptions() { }

    /// <summary>Weights kept per group. Default 2.</summary>
    public int N = 2;

    /// <summary>
    /// The group size. Default 4. When M does not divide a layer's input-channel count C, the last group of each run of
    /// C inputs is ragged and keeps ⌈N·r/M⌉ of its r = C mod M weights (see <see cref="LeaveMisfitLayersDense"/>).
    /// </summary>
    public int M = 4;

    /// <summary>Layers left dense, by name or by index among the dense and convolution layers as a string ("0" first, "-1" last).</summary>
    public IList<string> ExcludedLayers = new List<string>();

    /// <summary>
    /// False (default): a layer whose input-channel count is not a multiple of M is trained N:M with a ragged last group
    /// per run of input channels (see <see cref="M"/>). True: such layers stay dense, and the sparsity report says why
    /// (the behaviour before ragged groups, for models that must run on kernels that need whole groups).
    /// </summary>
    public bool LeaveMisfitLayersDense;

    internal abstract string Describe();

    internal override SparsityController CreateController(SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log) =>
        new NMTrainingController(this, network, optimizer, log);

    /// <summary>The N of the pattern at a step (null = dense), and whether the mask is fixed from then on.</summary>
    internal virtual (int? N, bool Fixed) PatternAt(long step, int stepsPerEpoch, long totalSteps) => (N, false);

    /// <summary>β_t, the factor pruned weights keep in the forward pass (0 for SR-STE and STE).</summary>
    internal virtual float PrunedScaleAt(long step) => 0f;

    /// <summary>λ_W, the decay added to the gradient of pruned weights.</summary>
    internal virtual float PrunedDecay => 0f;

    internal virtual void Validate()
    {
        if (M < 2) throw new ArgumentOutOfRangeException(nameof(M), M, "The group size M must be at least 2.");
        if (N <= 0 || N >= M) throw new ArgumentOutOfRangeException(nameof(N), N, $"N must satisfy 0 < N < M = {M}.");
        if (ExcludedLayers is null) throw new ArgumentNullException(nameof(ExcludedLayers), "Use an empty list instead of null.");
    }

    /// <inheritdoc/>
    public override string ToString() => $"{N}:{M} {Describe()}";
}

/// <summary>
/// SR-STE (Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From Scratch", ICLR 2021): the
/// forward pass uses W ⊙ E, where E keeps the N largest |w| of every group of M and is recomputed from the dense
/// weights at every step; the gradient passes straight through to the dense weights, plus λ_W·(1 − E) ⊙ W on the
/// pruned entries. <see cref="Decay"/> = 0 is the plain straight-through estimator (STE).
/// </summary>
public sealed class SrSteOptions : NMTrainingOptions
{
    /// <summary>λ_W, the sparse-refined decay on pruned weights. Default 2e-4 (the paper's); 0 gives plain STE.</summary>
    public float Decay = 2e-4f;

    internal override float PrunedDecay => Decay;

    internal override string Describe() => Decay == 0 ? "STE" : $"SR-STE (λ = {Decay:G3})";

    internal override void Validate()
    {
        base.Validate();
        if (!(Decay >= 0) || !float.IsFinite(Decay)) throw new ArgumentOutOfRangeException(nameof(Decay), Decay, "The decay must be zero or positive.");
    }
}

/// <summary>How the pruned weights' forward factor β_t decays in <see cref="MaskDecayNMOptions"/>.</summary>
public enum MaskDecayShape
{
    /// <summary>β_t = max(0, 1 − c·t).</summary>
    Linear,
    /// <summary>β_t = exp(−c·t).</summary>
    Exponential,
}

/// <summary>
/// Mask-decay gradient flow (MDGF; Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity Training in
/// Transformers", 2024): the forward pass uses W ⊙ (E + (1 − E)·β_t), so pruned weights fade out instead of vanishing at
/// once; the backward pass is plain STE. t counts optimiser steps.
/// </summary>
public sealed class MaskDecayNMOptions : NMTrainingOptions
{
    /// <summary>The decay's shape. Default exponential.</summary>
    public MaskDecayShape Shape = MaskDecayShape.Exponential;

    /// <summary>c, the decay rate per step. Default 1e-3 (the paper uses 1e-4 for ViT-B's much longer runs; scale it to your run's length).</summary>
    public double Rate = 1e-3;

    internal override float PrunedScaleAt(long step) =>
        (float)(Shape == MaskDecayShape.Linear ? Math.Max(0, 1 - Rate * step) : Math.Exp(-Rate * step));

    internal override string Describe() => $"mask decay ({Shape.ToString().ToLowerInvariant()}, c = {Rate:G3})";

    internal override void Validate()
    {
        base.Validate();
        if (!(Rate > 0) || !double.IsFinite(Rate)) throw new ArgumentOutOfRangeException(nameof(Rate), Rate, "The decay rate must be positive.");
    }
}

/// <summary>
/// Structure-decay gradient flow, stepwise (SDGF; Bambhaniya et al., 2024): dense for <see cref="DenseEpochs"/>, then
/// (M/2):M, (M/4):M, … down to N:M in stages spread evenly over the middle epochs (each stage trained with STE and the
/// mask recomputed every step), then <see cref="FineTuneEpochs"/> with the N:M mask fixed.
/// </summary>
public sealed class StepwiseNMOptions : NMTrainingOptions
{
    /// <summary>Epochs trained dense at the start. Default 1.</summary>
    public int DenseEpochs = 1;

    /// <summary>Epochs at the end with the final mask fixed. Default 1.</summary>
    public int FineTuneEpochs = 1;

    internal override string Describe() => $"stepwise (dense {DenseEpochs}, fine-tune {FineTuneEpochs} epochs)";

    /// <summary>The N of each stage: M/2, M/4, … while above N, then N.</summary>
    internal IReadOnlyList<int> Stages()
    {
        var stages = new List<int>();
        for (int n = M / 2; n > N; n /= 2) stages.Add(n);
        stages.Add(N);
        return stages;
    }

    internal override (int? N, bool Fixed) PatternAt(long step, int stepsPerEpoch, long totalSteps)
    {
        long dense = (long)DenseEpochs * stepsPerEpoch, fineTune = (long)FineTuneEpochs * stepsPerEpoch;
        if (step < dense) return (null, false);
        if (step >= totalSteps - fineTune) return (N, true);
        var stages = Stages();
        long span = Math.Max(1, totalSteps - fineTune - dense);
        int stage = (int)Math.Min(stages.Count - 1, (step - dense) * stages.Count / span);
        return (stages[stage], false);
    }

    internal override void Validate()
    {
        base.Validate();
        if (DenseEpochs < 0) throw new ArgumentOutOfRangeException(nameof(DenseEpochs), DenseEpochs, "Must not be negative.");
        if (FineTuneEpochs < 0) throw new ArgumentOutOfRangeException(nameof(FineTuneEpochs), FineTuneEpochs, "Must not be negative.");
    }
}
