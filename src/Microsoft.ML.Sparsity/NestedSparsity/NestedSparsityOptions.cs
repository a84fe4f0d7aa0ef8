using System.Globalization;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.NestedSparsity;

/// <summary>Which sparsity levels a step of nested training computes a loss at.</summary>
public enum NestedLevelSampling
{
    /// <summary>
    /// The densest and the sparsest level and one other drawn at random each step: the "sandwich rule" of slimmable
    /// networks (Yu &amp; Huang, "Universally Slimmable Networks and Improved Training Techniques", 2019). Three passes a step.
    /// </summary>
    Sandwich,

    /// <summary>Every level every step: one pass per level.</summary>
    All,
}

/// <summary>
/// Nested sparsity: one network trained to serve several sparsity levels, each level's kept weights a subset of the next
/// denser level's, so one set of weights and a few bits per kept weight hold every level and the level can change from
/// one prediction to the next (after "Multi-level sparse neural networks with dynamic rerouting", Alibaba DAMO
/// Academy, 2020; nested masks in one tensor as NestedNet, Kim et al., "NestedNet: Learning Nested Sparse Structures in
/// Deep Neural Networks", 2018).
/// </summary>
/// <remarks>
/// <para>
/// Masks: every level is pruned by magnitude on <see cref="Schedule"/> (gradual magnitude pruning by default, Zhu &amp;
/// Gupta 2017), level s reaching sparsity s in each layer as <see cref="Allocation"/> shares it. All levels rank the
/// weights of a layer (or, with a global allocation, of the network) in one order, |w| with ties broken by position, and
/// level s prunes the lowest of them, so nesting holds exactly after every update. The densest level's pruned weights
/// are 0 for good, as in gradual pruning; within it the sparser levels are re-ranked at every update.
/// </para>
/// <para>
/// Training: each step computes the loss of several levels on the same batch (<see cref="Sampling"/>), each with the
/// weights masked to its level, and the optimiser takes the weighted mean of their gradients, the sparsest level's
/// counting <see cref="SparsestLevelWeight"/> times (a weight's gradient from a level that prunes it is 0). The model's weights are the densest level's; the model predicts at any level
/// (<see cref="Models.NeuralNetworkModel.AtSparsityLevel"/>). Batch-norm running statistics are shared by the levels.
/// </para>
/// <para>
/// N:M levels (<see cref="NMGroupSize"/> = M): level s keeps N = (1 − s)·M weights of every group of M consecutive
/// inputs, e.g. 2:4 and 1:4, or 4:8, 2:8 and 1:8, each level's N kept weights the largest |w| of the group, so they
/// nest, and each level predicts through the N:M formats. On the schedule a level's group keeps fewer weights step by
/// step, M − ⌊s(t)·M⌋ at the schedule's sparsity s(t) (progressive N:M), never fewer than its N.
/// </para>
/// </remarks>
public sealed class NestedSparsityOptions : SparsityMethod
{
    /// <summary>The sparsity levels, strictly increasing, each in [0, 1). Default 0.5, 0.8, 0.9, 0.95, 0.98.</summary>
    public IList<double> Levels = new List<double> { 0.5, 0.8, 0.9, 0.95, 0.98 };

    /// <summary>How each level's sparsity is shared among layers. Default: <see cref="LayerAllocation.Uniform"/>.</summary>
    public LayerAllocation Allocation = LayerAllocation.Uniform;

    /// <summary>When the masks are updated: every level follows it to its own sparsity. Default: <see cref="PruningSchedule.GradualOverTraining"/> (10% to 60% of training, every 100 steps, cubic).</summary>
    public PruningSchedule Schedule = PruningSchedule.GradualOverTraining();

    /// <summary>Which levels each step trains. Default: <see cref="NestedLevelSampling.Sandwich"/>.</summary>
    public NestedLevelSampling Sampling = NestedLevelSampling.Sandwich;

    /// <summary>
    /// How many times the sparsest level's loss counts in the weighted mean of a step's gradients (the others count
    /// once), &gt; 0. Default 2: the sparsest level's few weights must also serve every denser level, and with equal
    /// weights LeNet-300-100's 0.98 level ended 0.56 points below a separately pruned model (see docs/nested-sparsity.md).
    /// </summary>
    public float SparsestLevelWeight = 2;

    /// <summary>
    /// 0 (default): unstructured levels. M ≥ 2: every level is N:M with groups of M consecutive inputs and
    /// N = (1 − level)·M, so each level must be a multiple of 1/M (0.5 and 0.75 for 2:4 and 1:4). A layer whose input
    /// channels M does not divide gets a ragged last group per run, as <see cref="Masks.SparsityPattern.NM"/> does.
    /// <see cref="Allocation"/> must stay uniform (N:M fixes every layer's sparsity).
    /// </summary>
    public int NMGroupSize;

    /// <summary>Layers left dense at every level, by name or by index among the dense and convolution layers as a string ("0" first, "-1" last).</summary>
    public IList<string> ExcludedLayers = new List<string>();

    /// <summary>Prune the output layer at half of each level's sparsity (uniform, ER and ERK allocations), as the lottery-ticket recipe does. Default false.</summary>
    public bool OutputLayerAtHalfRate;

    /// <summary>Seeds the draw of the sandwich's middle level; null (default) uses the training seed.</summary>
    public int? Seed;

    internal override SparsityController CreateController(SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log) =>
        new NestedSparsityController(this, network, optimizer, Seed ?? seed, log);

    /// <summary>The pruning that takes the network to level <paramref name="level"/>: its per-layer sparsities are that level's.</summary>
    /// <remarks>N:M levels: the one-shot N:M pruning to the level, which picks the layers the pattern prunes; the controller moves the groups' counts on <see cref="Schedule"/> itself.</remarks>
    internal PruningOptions PruningTo(double level) => NMGroupSize == 0
        ? new()
        {
            TargetSparsity = level,
            Allocation = Allocation,
            Schedule = Schedule,
            ExcludedLayers = ExcludedLayers,
            OutputLayerAtHalfRate = OutputLayerAtHalfRate,
        }
        : new()
        {
            TargetSparsity = level,
            Pattern = Masks.SparsityPattern.NM(KeptPerGroup(level), NMGroupSize),
            Schedule = PruningSchedule.AtInitialization(),
            ExcludedLayers = ExcludedLayers,
        };

    /// <summary>N:M levels: the N of level <paramref name="level"/>, (1 − level)·M.</summary>
    internal int KeptPerGroup(double level) => (int)Math.Round((1 - level) * NMGroupSize);

    internal void Validate()
    {
        if (Levels is null || Levels.Count == 0)
            throw new ArgumentException("Levels must list at least one sparsity level.", nameof(Levels));
        CheckLevels(Levels, nameof(Levels));
        if (Levels.Count > byte.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(Levels), Levels.Count, $"At most {byte.MaxValue} levels.");
        if (!(SparsestLevelWeight > 0 && float.IsFinite(SparsestLevelWeight)))
            throw new ArgumentOutOfRangeException(nameof(SparsestLevelWeight), SparsestLevelWeight, "SparsestLevelWeight must be a positive number.");
        if (!Enum.IsDefined(Sampling))
            throw new ArgumentOutOfRangeException(nameof(Sampling), Sampling, "Use Sandwich or All.");
        if (NMGroupSize != 0)
        {
            if (NMGroupSize < 2)
                throw new ArgumentOutOfRangeException(nameof(NMGroupSize), NMGroupSize, "NMGroupSize is 0 (unstructured levels) or the group size M ≥ 2 of N:M levels.");
            for (int i = 0; i < Levels.Count; i++)
            {
                double n = (1 - Levels[i]) * NMGroupSize;
                if (Math.Abs(n - Math.Round(n)) > 1e-9 || Math.Round(n) >= NMGroupSize)
                    throw new ArgumentException($"Level {i} ({Levels[i]}) is not an N:{NMGroupSize} sparsity: N:M levels are 1 − N/{NMGroupSize} for N = 1 … {NMGroupSize - 1}.", nameof(Levels));
            }
            if (Allocation != LayerAllocation.Uniform || OutputLayerAtHalfRate)
                throw new ArgumentException($"N:M levels fix every layer's sparsity: leave Allocation uniform (not {Allocation}) and OutputLayerAtHalfRate false.",
                    Allocation != LayerAllocation.Uniform ? nameof(Allocation) : nameof(OutputLayerAtHalfRate));
        }
        PruningTo(Levels[^1]).Validate();
    }

    /// <summary>Checks that <paramref name="levels"/> are strictly increasing sparsities in [0, 1), naming the first that is not.</summary>
    internal static void CheckLevels(IList<double> levels, string argument)
    {
        for (int i = 0; i < levels.Count; i++)
        {
            if (!(levels[i] >= 0 && levels[i] < 1))
                throw new ArgumentOutOfRangeException(argument, levels[i], $"Level {i} ({levels[i]}) is outside [0, 1): a level is the fraction of weights pruned.");
            if (i > 0 && !(levels[i] > levels[i - 1]))
                throw new ArgumentException($"Levels must be strictly increasing: level {i} ({levels[i]}) does not exceed level {i - 1} ({levels[i - 1]}).", argument);
        }
    }

    /// <summary>
    /// The index of <paramref name="level"/> in a model's <paramref name="levels"/> (within 1e-9). A loop, not a lambda: a
    /// prediction that names its level must not allocate.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">No such level; the message lists the levels.</exception>
    internal static int IndexOf(double[] levels, double level, string argument)
    {
        for (int i = 0; i < levels.Length; i++)
            if (Math.Abs(levels[i] - level) < 1e-9) return i;
        throw new ArgumentOutOfRangeException(argument, level,
            $"The model has no sparsity level {level}; its levels are [{string.Join(", ", levels.Select(l => l.ToString(CultureInfo.InvariantCulture)))}].");
    }

    /// <summary>A one-line description, as recorded in model files.</summary>
    public override string ToString()
    {
        var c = CultureInfo.InvariantCulture;
        string levels = NMGroupSize == 0
            ? string.Join(", ", Levels.Select(l => l.ToString("0.###", c)))
            : string.Join(", ", Levels.Select(l => $"{KeptPerGroup(l)}:{NMGroupSize}"));
        return $"nested sparsity at [{levels}]: {(NMGroupSize == 0 ? Allocation.ToString() : "N:M")}, {Schedule}, {Sampling} sampling, sparsest level ×{SparsestLevelWeight.ToString("0.###", c)}" +
            (ExcludedLayers.Count > 0 ? $", excluding [{string.Join(", ", ExcludedLayers)}]" : "") +
            (OutputLayerAtHalfRate ? ", output layer at half rate" : "");
    }
}
