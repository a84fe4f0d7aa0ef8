using System.Globalization;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>The order in which C-GaP grows its partitions within a round.</summary>
public enum GapPartitionOrder
{
    /// <summary>Partition 0, 1, …, κ − 1 in every round (the paper's <c>cyclic</c> partition type).</summary>
    Cyclic,

    /// <summary>
    /// Every round grows each partition once, in a permutation drawn afresh per round from the training seed (the
    /// paper's <c>random</c> partition type). The last partition of a round may come first in the next one: it is then
    /// pruned back and grown again.
    /// </summary>
    Random,
}

/// <summary>
/// Cyclic scheduled grow-and-prune, C-GaP ("Effective Model Sparsification by Scheduled Grow-and-Prune Methods", Ma,
/// Qin, Sun et al., ICLR 2022). Give it to a trainer as <c>Options.Sparsity</c>, or to
/// <see cref="ParallelGapOptions.Gap"/> for the parallel variant, P-GaP. Create it with <c>mlContext.Sparsity().GrowAndPrune(...)</c>.
/// </summary>
/// <remarks>
/// <para>
/// The model is sparse from the first step: it starts from the random mask of
/// <c>mlContext.Sparsity().RandomPruning(TargetSparsity, Allocation, MaskSeed)</c> (with this object's pattern, layer
/// overrides and exclusions), exactly the static-random control's mask for the same seed. The pruned layers are split
/// into κ = <see cref="PartitionCount"/> partitions. One step lasts <see cref="StepEpochs"/> epochs: the partition grown
/// during the previous step is pruned back to its target by magnitude (per layer; with an N:M pattern, to the N largest
/// |w| of every group of M), the next partition is grown fully dense (its pruned weights restart from their value, 0,
/// with zero optimiser state), and the whole model trains. A round is κ steps; after <see cref="Rounds"/> rounds the
/// last grown partition is pruned and the model trains with its mask fixed for the remaining epochs.
/// </para>
/// <para>
/// A layer's target is the number of (pattern) units its initial random mask prunes: every layer ends exactly there,
/// and every layer not grown is exactly there at every step. Layers whose target sparsity is 0 (ERK keeps small
/// layers dense) belong to no partition, like excluded ones. Biases and normalisation parameters are never pruned.
/// </para>
/// </remarks>
public sealed class GapOptions : SparsityMethod
{
    /// <summary>The fraction of weights removed, in [0, 1). Default 0.9. Ignored by N:M patterns, whose sparsity is 1 − N/M.</summary>
    public double TargetSparsity = 0.9;

    /// <summary>
    /// The sparsity pattern of the targets. Default <see cref="SparsityPattern.Unstructured"/>; with
    /// <see cref="SparsityPattern.NM"/> the initial mask is a random N:M mask and every pruned-back partition is projected to N:M.
    /// </summary>
    public SparsityPattern Pattern = SparsityPattern.Unstructured;

    /// <summary>
    /// How <see cref="TargetSparsity"/> is shared among layers. Default <see cref="LayerAllocation.ErdosRenyiKernel"/>,
    /// the default of <c>RandomPruning</c>, so that C-GaP and the static-random control start from the same mask.
    /// </summary>
    public LayerAllocation Allocation = LayerAllocation.ErdosRenyiKernel;

    /// <summary>Per-layer sparsities replacing the allocation's, keyed by layer name or prunable-layer index as a string, as <see cref="PruningOptions.LayerSparsity"/>.</summary>
    public IDictionary<string, double> LayerSparsity = new Dictionary<string, double>();

    /// <summary>Layers left dense and outside every partition, by name or prunable-layer index (e.g. <c>"-1"</c>, the output layer).</summary>
    public IList<string> ExcludedLayers = new List<string>();

    /// <summary>Prune the output layer at half the target sparsity ("The Lottery Ticket Hypothesis", Frankle &amp; Carbin, 2019). Default false.</summary>
    public bool OutputLayerAtHalfRate;

    /// <summary>Leave layers the pattern does not fit dense (and outside every partition) instead of raising an <see cref="ArgumentException"/>. Default false.</summary>
    public bool LeaveMisfitLayersDense;

    /// <summary>The seed of the initial random mask; null (default) uses the training seed, as <c>RandomPruning</c> does.</summary>
    public int? MaskSeed;

    /// <summary>
    /// κ, the number of partitions, from 1 to the number of pruned layers (those with a non-zero target). Null (default): 4 (the paper's ResNet-50
    /// setting) or the number of pruned layers if fewer. Unless <see cref="Partitions"/> gives them, the partitions are
    /// runs of consecutive layers whose largest weight count is as small as possible.
    /// </summary>
    public int? PartitionCount;

    /// <summary>
    /// The partitions, each a list of layer names or prunable-layer indices; together they must name every pruned layer
    /// exactly once (excluded and misfit layers not at all). A partition need not be consecutive layers. Empty (default):
    /// balanced consecutive partitions (see <see cref="PartitionCount"/>).
    /// </summary>
    public IList<IList<string>> Partitions = new List<IList<string>>();

    /// <summary>
    /// T, the epochs of one step (one partition grown). Null (default): the longest T such that <see cref="Rounds"/>
    /// rounds fit in 75% of the epochs, at least 1. (On LeNet-300-100 for 20 epochs, one round of 5–7-epoch steps beat
    /// seven rounds of 1-epoch steps by 0.7 points at 90% sparsity: docs/grow-and-prune.md.)
    /// </summary>
    public int? StepEpochs;

    /// <summary>
    /// Rounds of κ steps (P-GaP: rounds of one step, each copy growing its own partition). Null (default): with
    /// <see cref="StepEpochs"/> set, as many rounds as fit in 75% of the epochs, at least one; with both null, one round
    /// (P-GaP: three, or fewer if 75% of the epochs is fewer, since each round's merge joins layers that trained apart
    /// and one long round measured worst).
    /// The epochs left after the rounds fine-tune the model with its mask fixed.
    /// </summary>
    public int? Rounds;

    /// <summary>The order partitions are grown in within a round. Default <see cref="GapPartitionOrder.Cyclic"/>. Not used by P-GaP, which grows every partition every round.</summary>
    public GapPartitionOrder Order = GapPartitionOrder.Cyclic;

    internal override SparsityController CreateController(SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log) =>
        new GapController(this, network, optimizer, seed, log);

    /// <summary>A one-line description, as recorded in model files.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"C-GaP to {TargetSparsity:0.###} sparsity: {Pattern}, {Allocation}, ") + DescribeSchedule() +
        $", {Order.ToString().ToLowerInvariant()} order";

    /// <summary>The partitions, step length and rounds (shared by C-GaP's and P-GaP's descriptions).</summary>
    internal string DescribeSchedule() =>
        (Partitions.Count > 0 ? $"partitions [{string.Join("; ", Partitions.Select(p => string.Join(", ", p)))}]" : $"κ = {PartitionCount?.ToString(CultureInfo.InvariantCulture) ?? "min(4, layers)"}") +
        $", T = {(StepEpochs is int t ? $"{t} epochs" : "auto")}, {Rounds?.ToString(CultureInfo.InvariantCulture) ?? "auto"} rounds" +
        (MaskSeed is int s ? $", mask seed {s}" : "") +
        (ExcludedLayers.Count > 0 ? $", excluding [{string.Join(", ", ExcludedLayers)}]" : "") +
        (LayerSparsity.Count > 0 ? $", overrides [{string.Join(", ", LayerSparsity.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}: {kv.Value}")))}]" : "") +
        (OutputLayerAtHalfRate ? ", output layer at half rate" : "");

    /// <summary>The static-random control's options: the initial mask is made by exactly this pruning.</summary>
    internal PruningOptions InitialMask()
    {
        var random = SparsityCatalog.RandomPruningOptions(TargetSparsity, Allocation, MaskSeed);
        random.Pattern = Pattern;
        random.LayerSparsity = LayerSparsity;
        random.ExcludedLayers = ExcludedLayers;
        random.OutputLayerAtHalfRate = OutputLayerAtHalfRate;
        random.LeaveMisfitLayersDense = LeaveMisfitLayersDense;
        return random;
    }

    /// <summary>Checks what can be checked without the network and the run's length.</summary>
    internal void Validate()
    {
        InitialMask().Validate();
        if (Partitions is null) throw new ArgumentNullException(nameof(Partitions), "Use an empty list instead of null.");
        if (PartitionCount is < 1)
            throw new ArgumentOutOfRangeException(nameof(PartitionCount), PartitionCount, "κ, the number of partitions, must be at least 1.");
        if (Partitions.Count > 0 && PartitionCount is int k && k != Partitions.Count)
            throw new ArgumentException($"PartitionCount is {k} but Partitions lists {Partitions.Count} partitions; set one of them.", nameof(PartitionCount));
        if (StepEpochs is < 1) throw new ArgumentOutOfRangeException(nameof(StepEpochs), StepEpochs, "T, the epochs of one step, must be at least 1.");
        if (Rounds is < 1) throw new ArgumentOutOfRangeException(nameof(Rounds), Rounds, "Rounds must be at least 1.");
        if (!Enum.IsDefined(Order)) throw new ArgumentOutOfRangeException(nameof(Order), Order, "Unknown partition order.");
    }

    /// <summary>
    /// T and the number of rounds for a run of <paramref name="epochs"/> epochs whose rounds are
    /// <paramref name="stepsPerRound"/> steps long (κ for C-GaP, 1 for P-GaP), with <paramref name="defaultRounds"/>
    /// rounds when neither is set; throws when the rounds do not fit.
    /// </summary>
    internal (int StepEpochs, int Rounds) ResolveSchedule(int epochs, int stepsPerRound, int defaultRounds)
    {
        int budget = (int)(0.75 * epochs);
        if (StepEpochs is int t)
        {
            int rounds = Rounds ?? Math.Max(1, budget / (stepsPerRound * t));
            if ((long)rounds * stepsPerRound * t > epochs)
                throw new ArgumentException(
                    $"{(Rounds is null ? nameof(StepEpochs) : nameof(Rounds))}: {rounds} rounds of {stepsPerRound} steps of T = {t} epochs need " +
                    $"{(long)rounds * stepsPerRound * t} epochs; the run has {epochs}. Lower Rounds, StepEpochs or the number of partitions, or train for more epochs.",
                    Rounds is null ? nameof(StepEpochs) : nameof(Rounds));
            return (t, rounds);
        }
        int r = Rounds ?? Math.Clamp(budget, 1, defaultRounds);
        if ((long)r * stepsPerRound > epochs)
            throw new ArgumentException(
                $"Rounds: {r} rounds of {stepsPerRound} steps of at least 1 epoch need {(long)r * stepsPerRound} epochs; the run has {epochs}. " +
                "Lower Rounds or the number of partitions, or train for more epochs.", nameof(Rounds));
        return (Math.Max(1, budget / (r * stepsPerRound)), r);
    }
}
