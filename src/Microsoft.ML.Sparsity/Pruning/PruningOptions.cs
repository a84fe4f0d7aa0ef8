using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Pruning;

/// <summary>
/// Pruning: a <see cref="SparsityPattern"/>, an <see cref="ImportanceCriterion"/>, a <see cref="LayerAllocation"/> and a
/// <see cref="PruningSchedule"/>. Give it to a trainer (<c>Options.Sparsity</c>) to prune while training, or to
/// <see cref="SparsityCatalog.Prune"/> to prune a trained model. The defaults are gradual magnitude pruning
/// (Zhu &amp; Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model compression", 2017) of
/// every dense and convolution weight to 90% sparsity.
/// </summary>
/// <remarks>
/// Masked training is exact: pruned weights are 0 in the forward pass and after every optimiser step (weight decay and
/// momentum / Adam state included), because the optimiser multiplies each update by the mask in the same pass.
/// Biases and normalisation parameters are never pruned unless <see cref="PruneBiases"/> asks.
/// </remarks>
public sealed class PruningOptions : SparsityMethod
{
    /// <summary>The fraction of weights to remove, in [0, 1). Default 0.9. Ignored by N:M patterns, whose sparsity is 1 − N/M.</summary>
    public double TargetSparsity = 0.9;

    /// <summary>
    /// With <see cref="SparsityPattern.OutputChannels"/> and the uniform allocation: remove at least this fraction of the
    /// network's multiply-adds instead of <see cref="TargetSparsity"/> of the channels. Every pruned layer loses the same
    /// fraction of its channels, the smallest that reaches the reduction, counting that a removed channel also removes
    /// the next layer's inputs from it. That count holds once the channels are gone (<c>Compact</c>), so it needs
    /// <see cref="PruneBiases"/>: a channel that still outputs its bias cannot leave before a padded convolution. In (0, 1);
    /// default null (use <see cref="TargetSparsity"/>). A reduction that would take every channel of a layer raises an
    /// <see cref="ArgumentOutOfRangeException"/> saying the most that can go.
    /// </summary>
    public double? FlopsReduction;

    /// <summary>Which weights are pruned together. Default: <see cref="SparsityPattern.Unstructured"/>.</summary>
    public SparsityPattern Pattern = SparsityPattern.Unstructured;

    /// <summary>How weights are ranked. Default: <see cref="ImportanceCriterion.Magnitude"/>.</summary>
    public ImportanceCriterion Criterion = ImportanceCriterion.Magnitude;

    /// <summary>How the target is shared among layers. Default: <see cref="LayerAllocation.Uniform"/>.</summary>
    public LayerAllocation Allocation = LayerAllocation.Uniform;

    /// <summary>When pruning happens. Default: <see cref="PruningSchedule.GradualOverTraining"/> (10% to 60% of training, every 100 steps, cubic).</summary>
    public PruningSchedule Schedule = PruningSchedule.GradualOverTraining();

    /// <summary>
    /// Per-layer sparsities that replace the allocation's, keyed by layer name (e.g. <c>"dense1"</c>) or by index among
    /// the prunable (dense and convolution) layers as a string (<c>"0"</c> first, <c>"-1"</c> last).
    /// </summary>
    public IDictionary<string, double> LayerSparsity = new Dictionary<string, double>();

    /// <summary>Layers left dense, by name or prunable-layer index as in <see cref="LayerSparsity"/> (e.g. <c>"-1"</c> keeps the output layer dense).</summary>
    public IList<string> ExcludedLayers = new List<string>();

    /// <summary>Prune the last prunable layer (the output layer) at half the target sparsity, as "The Lottery Ticket Hypothesis" (Frankle &amp; Carbin, 2019) does. Uniform, ER and ERK allocations only. Default false.</summary>
    public bool OutputLayerAtHalfRate;

    /// <summary>
    /// What to do with a layer the pattern does not fit (e.g. 8×8 blocks on a layer with 10 inputs): false (default)
    /// raises an <see cref="ArgumentException"/> naming the layer and the constraint; true leaves the layer dense and says
    /// so in the sparsity report. An N:M pattern fits every layer: where M does not divide the input-channel count C, the
    /// last group of each run of C inputs is ragged and keeps ⌈N·r/M⌉ of its r = C mod M weights; true keeps such layers
    /// dense instead (the behaviour before ragged groups).
    /// </summary>
    public bool LeaveMisfitLayersDense;

    /// <summary>
    /// With an N:M pattern, when pruning a trained model (<see cref="SparsityCatalog.Prune"/>): first permute each
    /// layer's input channels, together with the producing layer's outputs, to raise the magnitude N:M pruning keeps
    /// (Pool &amp; Yu, "Channel Permutations for N:M Sparsity", 2021). The network's function is unchanged. Default false.
    /// </summary>
    public bool PermuteChannels;

    /// <summary>
    /// With <see cref="SparsityPattern.OutputChannels"/>, also prune what else a removed channel owns: its bias and the γ
    /// and β of the batch norm that normalises it (after activations, dropout or pooling), so it outputs exactly 0 and
    /// <c>Compact</c> can remove it everywhere, even before a padded convolution (through ReLU, leaky ReLU or tanh; a
    /// sigmoid turns the 0 into 0.5, a constant such a channel keeps there). Default false.
    /// </summary>
    public bool PruneBiases;

    /// <summary>
    /// With <see cref="SparsityPattern.OutputChannels"/> and a per-layer allocation: every pruned layer keeps a multiple
    /// of this many channels (all of them when it has no more), by pruning fewer: its kept count is rounded up. A
    /// compacted layer whose channel count is a whole number of vector registers leaves no lane idle (an AVX-512 register
    /// holds 16 channels, an AVX2 one 8), so 8 or 16 give compact models more speed per multiply-add removed.
    /// Torch-Pruning's <c>round_to</c> does the same. The sparsity reached is therefore below the target (ER and ERK
    /// included); with <see cref="FlopsReduction"/> the channel fraction rises until the rounded counts reach the
    /// reduction, which they may pass. Channels a layer has already lost stay pruned, even where that leaves it a count
    /// that is not a multiple (pruning again a model pruned without the option). At least 1; default 1 (no rounding).
    /// </summary>
    public int ChannelMultiple = 1;

    internal override SparsityController CreateController(SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log) =>
        new PruningController(this, network, optimizer, seed, log);

    /// <summary>A one-line description, as recorded in model files.</summary>
    public override string ToString() =>
        $"pruning to {(FlopsReduction is double f ? $"{f:0.###} of the multiply-adds removed" : $"{TargetSparsity:0.###} sparsity")}: {Pattern}, {Criterion}, {Allocation}, {Schedule}" +
        (ExcludedLayers.Count > 0 ? $", excluding [{string.Join(", ", ExcludedLayers)}]" : "") +
        (LayerSparsity.Count > 0 ? $", overrides [{string.Join(", ", LayerSparsity.Select(kv => $"{kv.Key}: {kv.Value}"))}]" : "") +
        (OutputLayerAtHalfRate ? ", output layer at half rate" : "") +
        (ChannelMultiple > 1 ? $", channels kept in multiples of {ChannelMultiple}" : "");

    internal void Validate()
    {
        if (!(TargetSparsity >= 0 && TargetSparsity < 1))
            throw new ArgumentOutOfRangeException(nameof(TargetSparsity), TargetSparsity, "The target sparsity must be in [0, 1).");
        if (Pattern is null) throw new ArgumentNullException(nameof(Pattern), "PruningOptions.Pattern must be set.");
        if (Criterion is null) throw new ArgumentNullException(nameof(Criterion), "PruningOptions.Criterion must be set.");
        if (Allocation is null) throw new ArgumentNullException(nameof(Allocation), "PruningOptions.Allocation must be set.");
        if (Schedule is null) throw new ArgumentNullException(nameof(Schedule), "PruningOptions.Schedule must be set.");
        if (LayerSparsity is null || ExcludedLayers is null)
            throw new ArgumentNullException(LayerSparsity is null ? nameof(LayerSparsity) : nameof(ExcludedLayers), "Use an empty collection instead of null.");
        foreach (var (layer, s) in LayerSparsity)
            if (!(s >= 0 && s < 1))
                throw new ArgumentOutOfRangeException(nameof(LayerSparsity), s, $"The sparsity of layer '{layer}' must be in [0, 1).");
        if (OutputLayerAtHalfRate && Allocation.IsGlobal)
            throw new ArgumentException("OutputLayerAtHalfRate sets a per-layer rate; it cannot be combined with a global allocation. Use LayerSparsity instead.", nameof(OutputLayerAtHalfRate));
        if (FlopsReduction is double flops)
        {
            if (!(flops > 0 && flops < 1))
                throw new ArgumentOutOfRangeException(nameof(FlopsReduction), flops, "The fraction of multiply-adds removed must be in (0, 1).");
            if (Pattern != SparsityPattern.OutputChannels || Allocation != LayerAllocation.Uniform || LayerSparsity.Count > 0 || OutputLayerAtHalfRate)
                throw new ArgumentException("FlopsReduction sets every pruned layer's channel fraction: it needs Pattern = SparsityPattern.OutputChannels and " +
                    $"Allocation = LayerAllocation.Uniform, without LayerSparsity or OutputLayerAtHalfRate (here {Pattern}, {Allocation}).", nameof(FlopsReduction));
            if (!PruneBiases)
                throw new ArgumentException("FlopsReduction counts a pruned channel's multiply-adds as removed, which holds only when its bias and batch-norm " +
                    "γ and β go with it (a channel that still outputs a constant stays before a padded convolution): set PruneBiases = true.", nameof(PruneBiases));
        }
        if (PruneBiases && Pattern != SparsityPattern.OutputChannels)
            throw new ArgumentException("PruneBiases applies to the OutputChannels pattern (the bias of a removed channel); other patterns never prune biases.", nameof(PruneBiases));
        if (ChannelMultiple < 1)
            throw new ArgumentOutOfRangeException(nameof(ChannelMultiple), ChannelMultiple, "A layer's kept channels are rounded up to a multiple of ChannelMultiple: it must be at least 1.");
        if (ChannelMultiple > 1 && (Pattern != SparsityPattern.OutputChannels || Allocation.IsGlobal))
            throw new ArgumentException("ChannelMultiple rounds each layer's kept channel count: it needs Pattern = SparsityPattern.OutputChannels and a " +
                $"per-layer allocation (uniform, ER, ERK), not {Pattern} with {Allocation}.", nameof(ChannelMultiple));
        if (PermuteChannels && Pattern is not SparsityPattern.NMPattern)
            throw new ArgumentException("PermuteChannels applies to N:M patterns.", nameof(PermuteChannels));
        if (Criterion is ChannelPruning.ChannelCriterion channels)
        {
            if (Pattern != SparsityPattern.OutputChannels)
                throw new ArgumentException($"The {Criterion} criterion scores whole output channels; it needs Pattern = SparsityPattern.OutputChannels, not {Pattern}.", nameof(Criterion));
            if (channels.NeedsKeptCount && Allocation.IsGlobal)
                throw new ArgumentException($"The {Criterion} criterion scores a layer's channels for the number the layer keeps; it needs a per-layer allocation (uniform, ER, ERK), not a global threshold.", nameof(Criterion));
        }
        if (Pattern.FixedSparsity is not null && !Schedule.IsOneShot)
            throw new ArgumentException($"The {Pattern} pattern has a fixed sparsity; use PruningSchedule.OneShot or AtInitialization with it.", nameof(Schedule));
    }
}
