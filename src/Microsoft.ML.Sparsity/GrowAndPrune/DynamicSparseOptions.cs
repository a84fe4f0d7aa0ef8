using System.Globalization;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>How the fraction of active weights moved at each mask update changes over training.</summary>
public enum DropFractionSchedule
{
    /// <summary>The same fraction at every update (SET).</summary>
    Constant,
    /// <summary>f(t) = α·(1 + cos(π·t / T_end)) / 2, from α at the start to 0 at T_end (RigL).</summary>
    Cosine,
}

/// <summary>
/// Dynamic sparse training: the network is sparse from the first step to the last, starting from a random mask
/// (the same mask <see cref="SparsityCatalog.RandomPruning"/> draws with the same sparsity, allocation and seed), and
/// every few steps each layer drops the fraction f(t) of its active weights closest to zero and grows as many at
/// positions that were inactive before the update, so each layer's count of active weights never changes. The
/// subclasses choose where to grow: <see cref="SetOptions"/> at random, <see cref="RigLOptions"/> where the dense
/// gradient is largest.
/// </summary>
/// <remarks>
/// Between updates training is exact masked training (pruned weights and their optimiser state are exactly 0). A grown
/// weight starts at 0 (or at a draw from <see cref="GrowInitializer"/>) with zero optimiser state: pruned weights'
/// state is kept at 0, so the weight starts afresh. No weight is dropped and grown in the same update.
/// </remarks>
public abstract class DynamicSparseOptions : SparsityMethod
{
    private protected DynamicSparseOptions() { }

    /// <summary>The fraction of weights that are zero, in (0, 1), shared among layers by <see cref="Allocation"/>. Default 0.9.</summary>
    public double TargetSparsity = 0.9;

    /// <summary>
    /// The per-layer densities of the random initial mask, kept through training: uniform, ER or ERK (a global
    /// allocation has no per-layer counts to keep). Default: ER for SET, ERK for RigL, as in their papers.
    /// </summary>
    public LayerAllocation Allocation = LayerAllocation.ErdosRenyi;

    /// <summary>Layers left dense, by name or by index among the dense and convolution layers as a string ("0" first, "-1" last; SET's paper keeps the output layer dense).</summary>
    public IList<string> ExcludedLayers = new List<string>();

    /// <summary>Give the output layer half the target sparsity (uniform, ER and ERK allocations), as the lottery-ticket recipe does. Default false.</summary>
    public bool OutputLayerAtHalfRate;

    /// <summary>Seeds the initial mask and SET's random regrowth; null (default) uses the training seed.</summary>
    public int? Seed;

    /// <summary>ΔT, the optimiser steps between mask updates, &gt; 0. Default 100 (RigL's). Not used when <see cref="UpdateEveryEpoch"/> is true.</summary>
    public int UpdateFrequency = 100;

    /// <summary>Update the masks at the end of every epoch instead of every <see cref="UpdateFrequency"/> steps. Default: true for SET (the paper's setting), false for RigL.</summary>
    public bool UpdateEveryEpoch;

    /// <summary>ζ (SET) or α (RigL): the fraction of each layer's active weights moved at an update (at the first one, for a cosine schedule), in (0, 1). Default 0.3, both papers'.</summary>
    public double DropFraction = 0.3;

    /// <summary>How the drop fraction changes over training. Default: constant for SET, cosine for RigL.</summary>
    public DropFractionSchedule DropFractionSchedule = DropFractionSchedule.Constant;

    /// <summary>
    /// T_end as a fraction of the run's optimiser steps, in (0, 1]: the masks are updated only at steps t &lt; T_end and
    /// stay fixed after. Default: 1 for SET (updates until the last epoch), 0.75 for RigL (the paper's ImageNet setting).
    /// </summary>
    public double EndFraction = 1;

    /// <summary>T_end in optimiser steps, replacing <see cref="EndFraction"/> when set; at most the run's length (checked when training starts). Default null.</summary>
    public long? EndStep;

    /// <summary>
    /// Null (default): grown weights start at 0 (RigL; SET's reference code). Set: they are drawn from this initialiser
    /// with the layer's fans, as SET's paper does; give the trainer's <c>WeightInitializer</c> to draw them as the
    /// layer was initialised.
    /// </summary>
    public WeightInitializer? GrowInitializer;

    /// <summary>The method's name as recorded in model files and sparsity reports.</summary>
    internal abstract string Name { get; }

    /// <summary>Picks <paramref name="k"/> of a layer's <paramref name="inactive"/> positions (ascending) to grow.</summary>
    internal abstract int[] Grow(PrunableLayer layer, int[] inactive, int k, Random random);

    internal override SparsityController CreateController(SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log) =>
        new DynamicSparseController(this, network, optimizer, seed, log);

    /// <summary>The random pruning that makes the initial mask: what <see cref="SparsityCatalog.RandomPruning"/> returns for these settings.</summary>
    internal PruningOptions InitialMask()
    {
        var random = SparsityCatalog.RandomPruningOptions(TargetSparsity, Allocation, Seed);
        random.ExcludedLayers = ExcludedLayers;
        random.OutputLayerAtHalfRate = OutputLayerAtHalfRate;
        return random;
    }

    /// <summary>T_end for a run of <paramref name="totalSteps"/> steps.</summary>
    internal long EndStepFor(long totalSteps)
    {
        if (EndStep is not long end) return (long)Math.Round(EndFraction * totalSteps);
        if (end > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(EndStep), end, $"EndStep (T_end) must be within the run's {totalSteps} optimiser steps.");
        return end;
    }

    /// <summary>f(t), the fraction of active weights moved at update step <paramref name="step"/> of a run whose updates end at <paramref name="end"/>.</summary>
    internal double DropFractionAt(long step, long end) => DropFractionSchedule == DropFractionSchedule.Constant
        ? DropFraction
        : DropFraction * (1 + Math.Cos(Math.PI * step / end)) / 2;

    internal void Validate()
    {
        if (!(TargetSparsity > 0 && TargetSparsity < 1))
            throw new ArgumentOutOfRangeException(nameof(TargetSparsity), TargetSparsity, "The target sparsity must be in (0, 1).");
        if (Allocation is null) throw new ArgumentNullException(nameof(Allocation), "Allocation must be set (uniform, ER or ERK).");
        if (Allocation.IsGlobal)
            throw new ArgumentException($"{Name} keeps each layer's count of active weights; a global allocation has no per-layer counts. Use uniform, ER or ERK.", nameof(Allocation));
        if (ExcludedLayers is null) throw new ArgumentNullException(nameof(ExcludedLayers), "Use an empty list instead of null.");
        if (UpdateFrequency <= 0)
            throw new ArgumentOutOfRangeException(nameof(UpdateFrequency), UpdateFrequency, "UpdateFrequency (ΔT) must be a positive number of steps.");
        if (!(DropFraction > 0 && DropFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(DropFraction), DropFraction, "The drop fraction must be in (0, 1).");
        if (!Enum.IsDefined(DropFractionSchedule))
            throw new ArgumentOutOfRangeException(nameof(DropFractionSchedule), DropFractionSchedule, "Use Constant or Cosine.");
        if (!(EndFraction > 0 && EndFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(EndFraction), EndFraction, "EndFraction (T_end as a fraction of the run) must be in (0, 1].");
        if (EndStep is <= 0)
            throw new ArgumentOutOfRangeException(nameof(EndStep), EndStep, "EndStep (T_end) must be a positive number of steps.");
        if (GrowInitializer is WeightInitializer init && !Enum.IsDefined(init))
            throw new ArgumentOutOfRangeException(nameof(GrowInitializer), init, "Unknown weight initializer.");
    }

    /// <summary>A one-line description, as recorded in model files.</summary>
    public override string ToString()
    {
        var c = CultureInfo.InvariantCulture;
        return $"{Name} to {TargetSparsity.ToString("0.###", c)} sparsity: {Allocation}" +
            (OutputLayerAtHalfRate ? ", output layer at half rate" : "") +
            (ExcludedLayers.Count > 0 ? $", excluding [{string.Join(", ", ExcludedLayers)}]" : "") +
            (UpdateEveryEpoch ? ", updates every epoch" : $", updates every {UpdateFrequency.ToString(c)} steps") +
            $", drop fraction {DropFraction.ToString("0.###", c)} ({DropFractionSchedule.ToString().ToLowerInvariant()})" +
            (EndStep is long end ? $" until step {end.ToString(c)}" : $" until {EndFraction.ToString("0.###", c)} of training") +
            $", grown weights from {(GrowInitializer is WeightInitializer w ? w.ToString() : "0")}" +
            (Seed is int seed ? $", seed {seed.ToString(c)}" : "");
    }
}
