using System.Numerics.Tensors;

namespace Microsoft.ML.Sparsity.Masks;

/// <summary>Scores a layer's weights: writes one importance score per weight into <paramref name="scores"/>; the lowest are pruned first.</summary>
/// <param name="layerName">The layer, e.g. <c>dense0</c>.</param>
/// <param name="shape">The weight's shape: [out, in] for dense layers, [out, kh, kw, in] for convolutions.</param>
/// <param name="weights">The current weights, row-major.</param>
/// <param name="scores">Receives the scores, one per weight.</param>
public delegate void ImportanceScorer(string layerName, IReadOnlyList<int> shape, ReadOnlySpan<float> weights, Span<float> scores);

/// <summary>How important each weight is; pruning removes the least important units first.</summary>
public abstract class ImportanceCriterion
{
    private protected ImportanceCriterion() { }

    /// <summary>|w| (Han et al., "Learning both Weights and Connections for Efficient Neural Networks", 2015).</summary>
    /// <remarks>
    /// With <see cref="SparsityPattern.OutputChannels"/> a channel's score is the mean |w| of its filter: its L1 norm
    /// Σ|w| divided by the filter length, which is the same for every channel of a layer. Within a layer channels
    /// therefore rank by filter L1 norm (Li et al., "Pruning Filters for Efficient ConvNets", 2017); across layers (a
    /// global allocation) the mean makes filters of different lengths comparable.
    /// </remarks>
    public static ImportanceCriterion Magnitude { get; } = new MagnitudeCriterion();

    /// <summary>
    /// Network slimming: each output channel scores |γ| of the batch-norm layer that follows its layer, directly or
    /// after an activation (Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", 2017).
    /// Batch norm removes the channel's own scale, so γ alone sets how much the channel passes on. Use it with
    /// <see cref="SparsityPattern.OutputChannels"/>; the paper ranks all layers' |γ| together
    /// (<see cref="LayerAllocation.Global"/>) after training with an L1 penalty on γ
    /// (<see cref="Training.NeuralNetworkTrainerOptions.BatchNormScaleL1"/>). A pruned layer without a following batch-norm
    /// layer (such as the output layer, which <see cref="Pruning.PruningOptions.ExcludedLayers"/> can leave dense) is an
    /// <see cref="ArgumentException"/> naming it.
    /// </summary>
    public static ImportanceCriterion BatchNormScale { get; } = new ChannelPruning.BatchNormScaleCriterion();

    /// <summary>
    /// CHEX's column subset selection (Hou et al., "CHEX: CHannel EXploration for CNN Model Compression", 2022): the
    /// filter matrix X = Wᵀ has one column per output channel; with V_k the right singular vectors of X's k largest
    /// singular values, k being the number of channels the layer keeps, channel j scores its leverage ‖V_k[j, :]‖² and
    /// the k highest are kept. Leverage prefers filters that carry directions the others do not: two identical filters
    /// split their shared direction's leverage, while a filter orthogonal to the rest keeps all of its own, however small.
    /// Where a layer has more channels than filter values (X wider than tall) the scores are filter L1 norms, as in the
    /// paper. Use it with <see cref="SparsityPattern.OutputChannels"/>
    /// and a per-layer allocation (uniform, ER, ERK or <see cref="Pruning.PruningOptions.LayerSparsity"/>), which fixes k.
    /// </summary>
    public static ImportanceCriterion ColumnSubsetSelection { get; } = new ChannelPruning.ColumnSubsetSelectionCriterion();

    /// <summary>
    /// Uniform random scores: random pruning, the baseline of Liu et al., "The Unreasonable Effectiveness of Random
    /// Pruning", 2022. The scores of a pruning event depend only on the seed, the layer and the step.
    /// </summary>
    /// <param name="seed">The seed; null uses the training seed.</param>
    public static ImportanceCriterion Random(int? seed = null) => new RandomCriterion(seed);

    /// <summary>
    /// First-order Taylor importance Σ_b |w · ∂L_b/∂w| accumulated over the last <paramref name="batches"/> training
    /// batches before each pruning event (Molchanov et al., "Importance Estimation for Neural Network Pruning", 2019,
    /// per weight). Pruning a trained model with it needs data to compute the gradients.
    /// </summary>
    /// <param name="batches">How many batches to accumulate, ≥ 1. Default 10.</param>
    public static ImportanceCriterion Taylor(int batches = 10)
    {
        if (batches < 1) throw new ArgumentOutOfRangeException(nameof(batches), batches, "The Taylor criterion needs at least 1 batch.");
        return new TaylorCriterion(batches);
    }

    /// <summary>Scores computed by your own function.</summary>
    public static ImportanceCriterion Custom(ImportanceScorer scorer)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        return new CustomCriterion(scorer);
    }

    /// <summary>Batches of gradients the criterion needs before an event (0 for criteria that only look at weights).</summary>
    internal virtual int GradientBatches => 0;

    /// <summary>Scores <paramref name="layer"/>'s weights; <paramref name="taylorSums"/> holds Σ|w·g| when <see cref="GradientBatches"/> &gt; 0.</summary>
    internal abstract void Score(PrunableLayer layer, long step, int trainingSeed, ReadOnlySpan<float> taylorSums, Span<float> scores);

    private sealed class MagnitudeCriterion : ImportanceCriterion
    {
        internal override void Score(PrunableLayer layer, long step, int trainingSeed, ReadOnlySpan<float> taylorSums, Span<float> scores) =>
            TensorPrimitives.Abs(layer.Weight.Value, scores);

        public override string ToString() => "magnitude";
    }

    private sealed class RandomCriterion(int? seed) : ImportanceCriterion
    {
        internal override void Score(PrunableLayer layer, long step, int trainingSeed, ReadOnlySpan<float> taylorSums, Span<float> scores)
        {
            var random = new System.Random(Engine.Seeds.Derive(seed ?? trainingSeed, layer.Index, step));
            for (int i = 0; i < scores.Length; i++) scores[i] = random.NextSingle();
        }

        public override string ToString() => "random";
    }

    private sealed class TaylorCriterion(int batches) : ImportanceCriterion
    {
        internal override int GradientBatches => batches;

        internal override void Score(PrunableLayer layer, long step, int trainingSeed, ReadOnlySpan<float> taylorSums, Span<float> scores) =>
            taylorSums.CopyTo(scores);

        public override string ToString() => $"Taylor ({batches} batches)";
    }

    private sealed class CustomCriterion(ImportanceScorer scorer) : ImportanceCriterion
    {
        internal override void Score(PrunableLayer layer, long step, int trainingSeed, ReadOnlySpan<float> taylorSums, Span<float> scores)
        {
            scores.Fill(float.NaN);
            scorer(layer.Name, layer.Weight.Shape, layer.Weight.Value, scores);
            int bad = scores.IndexOfAnyExceptInRange(float.MinValue, float.MaxValue);
            if (bad >= 0)
                throw new InvalidOperationException(
                    $"The custom importance scorer left score {bad} of layer '{layer.Name}' as {scores[bad]}; every weight needs a finite score.");
        }

        public override string ToString() => "custom";
    }
}
