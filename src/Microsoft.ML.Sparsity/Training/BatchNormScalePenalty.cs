using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// Network slimming's sparsity penalty λ·Σ|γ| over the scales of every batch-norm layer (Liu et al., "Learning
/// Efficient Convolutional Networks through Network Slimming", 2017). It drives the scales of unneeded channels
/// towards 0, so that <see cref="Masks.ImportanceCriterion.BatchNormScale"/> separates them. Its subgradient
/// λ·sign(γ) (0 at γ = 0, as the paper's) is added to γ's gradient after the backward pass.
/// </summary>
internal sealed class BatchNormScalePenalty
{
    private readonly Parameter[] _scales;
    private readonly float _lambda;

    /// <summary>The penalty of <paramref name="lambda"/> on <paramref name="network"/>'s batch-norm scales; null when λ = 0.</summary>
    /// <exception cref="ArgumentException">λ &gt; 0 and the network has no batch-norm layer.</exception>
    public static BatchNormScalePenalty? For(SequentialNetwork network, float lambda)
    {
        if (lambda == 0) return null;
        var scales = network.Layers.OfType<BatchNormLayer>().Select(b => b.Gamma).ToArray();
        if (scales.Length == 0)
            throw new ArgumentException(
                $"BatchNormScaleL1 = {lambda} penalises batch-norm scales, but the network has no batch-norm layer; add Layers.BatchNorm() or set it to 0.",
                nameof(NeuralNetworkTrainerOptions.BatchNormScaleL1));
        return new BatchNormScalePenalty(scales, lambda);
    }

    private BatchNormScalePenalty(Parameter[] scales, float lambda) => (_scales, _lambda) = (scales, lambda);

    /// <summary>λ·Σ|γ| at the current scales.</summary>
    public double Loss()
    {
        double sum = 0;
        foreach (var gamma in _scales) sum += TensorPrimitives.SumOfMagnitudes(gamma.Value);
        return _lambda * sum;
    }

    /// <summary>Adds λ·sign(γ) to each scale's gradient.</summary>
    public void AddGradient()
    {
        foreach (var gamma in _scales)
        {
            var value = gamma.Value;
            var gradient = gamma.Gradient;
            for (int i = 0; i < value.Length; i++) gradient[i] += _lambda * MathF.Sign(value[i]);
        }
    }
}
