using System.Globalization;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>How CHEX shares the pruned channels among layers at each update.</summary>
public enum ChannelAllocation
{
    /// <summary>
    /// The paper's: the batch-norm scales |γ| of all explored layers are ranked together and the smallest are counted
    /// as pruned; each layer's count is how many of its channels fall below that global threshold. A pruned channel
    /// ranks by the |γ| it last had (its initial γ if it was never active), so it can win its place back. Every
    /// explored layer needs a batch norm after it (through an activation).
    /// </summary>
    BatchNormScale,

    /// <summary>Every explored layer keeps the same fraction of its channels (for networks without batch norm).</summary>
    Uniform,
}

/// <summary>How CHEX picks the channels it regrows among the pruned ones.</summary>
public enum ChannelRegrowth
{
    /// <summary>
    /// The paper's importance sampling: a pruned channel's score is the distance of its most recently used filter from
    /// the span of the kept filters, and channels are drawn without replacement with probabilities softmax(scores).
    /// </summary>
    Orthogonality,

    /// <summary>Uniformly at random among the pruned channels (the paper's ablation).</summary>
    Uniform,
}

/// <summary>
/// CHEX, channel exploration ("CHEX: CHannel EXploration for CNN Model Compression", Hou, Qin, Sun, Ma et al., CVPR
/// 2022): trains a channel-sparse network from scratch, repeatedly pruning channels and regrowing others while it
/// trains. Give it to a trainer as <c>Options.Sparsity</c>; create it with <c>mlContext.Sparsity().ChannelExploration(...)</c>.
/// </summary>
/// <remarks>
/// <para>
/// A pruned channel is removed whole: its filter (the weight row), its bias, the γ and β of the batch norm after it,
/// and its input slices in the next layer are held at exactly 0, so the trained model can be compacted into a smaller
/// dense one. At the start each explored layer loses a fraction S − δ₀ of its channels, those of smallest filter L1
/// norm. Then, every <see cref="UpdateEpochs"/> epochs until <see cref="ExplorationEnd"/> of the run: the regrowth
/// budget δ_t = δ₀·(1 + cos(π·t/T_max))/2 shrinks; the layers' pruned counts are allocated at sparsity S (and at
/// S − δ_t, for the count kept after regrowth); each layer keeps the filters its column subset selection ranks
/// highest (leverage scores of the filter matrix's top right singular vectors; filter L1 norm when a layer has more
/// channels than a filter has weights); and it regrows the difference among its pruned channels, which get back the
/// values they last had (filters, next layer's slices, batch-norm parameters and running statistics) with zero
/// optimiser state. The allocation ranks a pruned channel by the |γ| it last had while active (as mmrazor's CHEX, which
/// keeps masked parameters, ranks it; the authors' code ranks it at its zeroed γ), and column subset selection and the
/// regrowth scores read each filter as it will compute after the update. After T_max the masks stay fixed at S.
/// </para>
/// <para>
/// The output layer is never explored (its channels are the model's outputs). Layers listed in
/// <see cref="ExcludedLayers"/> keep every channel.
/// </para>
/// </remarks>
public sealed class ChexOptions : SparsityMethod
{
    /// <summary>
    /// S, the fraction of the explored layers' channels removed at the end, in (0, 1). Default 0.5 (the paper sweeps
    /// S per FLOPs budget; its code's default is 0.7). Ignored when <see cref="FlopsReduction"/> is set.
    /// </summary>
    public double ChannelSparsity = 0.5;

    /// <summary>
    /// The fraction of the prunable layers' multiply-adds (every dense and convolution layer's, the output layer's too)
    /// to remove, in (0, 1), instead of a channel fraction: the allocation then lowers the batch-norm threshold (or the
    /// uniform fraction) until the channels below it remove this much. S is then the uniform fraction that would: δ₀
    /// is a share of it, and each update regrows that share of the channels the allocation prunes. Null (default): use
    /// <see cref="ChannelSparsity"/>.
    /// </summary>
    public double? FlopsReduction;

    /// <summary>
    /// δ₀, the initial regrowth budget as a fraction of channels, in [0, S). Null (default): 3/7 of S, the paper's
    /// ratio (δ₀ = 0.3 at its S = 0.7); a fixed 0.3 would not fit below the lower channel sparsities a FLOPs target
    /// gives (removing half the multiply-adds of a convolution chain prunes about 30% of its channels).
    /// </summary>
    public double? InitialRegrowth;

    /// <summary>
    /// ΔT, epochs between updates. Null (default): the paper's 2 epochs of 250 scaled to the run, at least 1.
    /// </summary>
    public int? UpdateEpochs;

    /// <summary>
    /// T_max, the end of exploration as a fraction of the epochs, in (0, 1]. Default 0.72 (the paper's 180 of 250). At 1
    /// the final update (which may bring channels back with their last used values) comes after the last step, with no
    /// training left to adjust the network to it.
    /// </summary>
    public double ExplorationEnd = 0.72;

    /// <summary>How the pruned channels are shared among layers. Default <see cref="ChannelAllocation.BatchNormScale"/> (the paper's).</summary>
    public ChannelAllocation Allocation = ChannelAllocation.BatchNormScale;

    /// <summary>How regrown channels are chosen. Default <see cref="ChannelRegrowth.Orthogonality"/> (the paper's).</summary>
    public ChannelRegrowth Regrowth = ChannelRegrowth.Orthogonality;

    /// <summary>
    /// Every explored layer keeps a multiple of this many channels (or all of them), at every update and at the end: each
    /// count is rounded to keep more. The batch-norm allocation goes on down its ranking until the rounded counts meet
    /// its target, which they may pass; the uniform one rounds each layer at S, so it stays below a channel sparsity,
    /// and at a FLOPs target S is the uniform fraction whose rounded counts meet it. Regrowth comes in whole multiples
    /// too, so late updates, whose budget is smaller, may regrow nothing. A compacted layer whose channel count is a
    /// whole number of vector registers leaves no lane idle (an AVX-512 register holds 16 channels, an AVX2 one 8), so
    /// 8 or 16 give more speed per multiply-add removed. Not in the paper (Torch-Pruning's <c>round_to</c> does the same
    /// for its pruners). At least 1; default 1 (no rounding, the paper's allocation).
    /// </summary>
    public int ChannelMultiple = 1;

    /// <summary>Layers that keep all their channels, by name or prunable-layer index as a string (e.g. <c>"0"</c>, the first layer).</summary>
    public IList<string> ExcludedLayers = new List<string>();

    /// <summary>The seed of the regrowth draws; null (default) uses the training seed.</summary>
    public int? Seed;

    internal override SparsityController CreateController(SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log)
    {
        Validate();
        return new ChexController(this, network, optimizer, Seed ?? seed, log);
    }

    /// <summary>A one-line description, as recorded in model files.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"CHEX to {(FlopsReduction is double f ? Number(f) + " of the multiply-adds removed" : Number(ChannelSparsity) + " channel sparsity")}: " +
            $"δ₀ = {(InitialRegrowth is double d ? Number(d) : "3/7 of S")}, ΔT = {(UpdateEpochs is int t ? $"{t} epochs" : "auto")}, T_max = {ExplorationEnd:0.###} of training, " +
            $"{(Allocation == ChannelAllocation.BatchNormScale ? "batch-norm scale" : "uniform")} allocation, {Regrowth.ToString().ToLowerInvariant()} regrowth") +
        (ChannelMultiple > 1 ? string.Create(CultureInfo.InvariantCulture, $", channels kept in multiples of {ChannelMultiple}") : "") +
        (ExcludedLayers.Count > 0 ? $", excluding [{string.Join(", ", ExcludedLayers)}]" : "") +
        (Seed is int s ? string.Create(CultureInfo.InvariantCulture, $", seed {s}") : "");

    /// <summary>A fraction as model files record it, in any culture.</summary>
    private static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>δ₀ for a run whose target channel sparsity is <paramref name="sparsity"/>.</summary>
    internal double InitialRegrowthAt(double sparsity) => InitialRegrowth ?? 3.0 / 7 * sparsity;

    /// <summary>Checks what can be checked without the network.</summary>
    internal void Validate()
    {
        if (FlopsReduction is double flops && !(flops > 0 && flops < 1))
            throw new ArgumentOutOfRangeException(nameof(FlopsReduction), flops, "The fraction of multiply-adds removed must be in (0, 1).");
        if (FlopsReduction is null && !(ChannelSparsity > 0 && ChannelSparsity < 1))
            throw new ArgumentOutOfRangeException(nameof(ChannelSparsity), ChannelSparsity, "The channel sparsity S must be in (0, 1).");
        if (InitialRegrowth is double d && !(d >= 0 && d < 1))
            throw new ArgumentOutOfRangeException(nameof(InitialRegrowth), InitialRegrowth, "δ₀ must be in [0, 1) and below the channel sparsity.");
        if (FlopsReduction is null && InitialRegrowth >= ChannelSparsity)
            throw new ArgumentOutOfRangeException(nameof(InitialRegrowth), InitialRegrowth, $"δ₀ must be below the channel sparsity S = {ChannelSparsity}.");
        if (UpdateEpochs is < 1) throw new ArgumentOutOfRangeException(nameof(UpdateEpochs), UpdateEpochs, "ΔT must be at least 1 epoch.");
        if (!(ExplorationEnd > 0 && ExplorationEnd <= 1))
            throw new ArgumentOutOfRangeException(nameof(ExplorationEnd), ExplorationEnd, "T_max must be a fraction of the run in (0, 1].");
        if (ChannelMultiple < 1)
            throw new ArgumentOutOfRangeException(nameof(ChannelMultiple), ChannelMultiple, "Each explored layer keeps a multiple of ChannelMultiple channels: it must be at least 1.");
        if (!Enum.IsDefined(Allocation)) throw new ArgumentOutOfRangeException(nameof(Allocation), Allocation, "Unknown allocation.");
        if (!Enum.IsDefined(Regrowth)) throw new ArgumentOutOfRangeException(nameof(Regrowth), Regrowth, "Unknown regrowth.");
        if (ExcludedLayers is null) throw new ArgumentNullException(nameof(ExcludedLayers), "Use an empty list instead of null.");
    }
}
