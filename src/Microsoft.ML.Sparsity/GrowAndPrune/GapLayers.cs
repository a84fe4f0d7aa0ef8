using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>
/// The layers GaP prunes, their partitions, and GaP's three mask operations: the initial random mask (the
/// static-random control's <see cref="PruningPlan"/>), growing a partition dense, and pruning it back to its targets.
/// </summary>
internal sealed class GapLayers
{
    private readonly SparsityPattern _pattern;
    private readonly string _method;
    private readonly PruningPlan _initial;

    /// <param name="options">The options (validated here).</param>
    /// <param name="network">The network; nothing is changed but the layers' sparsity notes.</param>
    /// <param name="seed">The training seed (the initial mask's, unless <see cref="GapOptions.MaskSeed"/> is set).</param>
    /// <param name="method">"C-GaP" or "P-GaP", for the sparsity notes.</param>
    public GapLayers(GapOptions options, SequentialNetwork network, int seed, string method)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _pattern = options.Pattern;
        _method = method;
        _initial = new PruningPlan(options.InitialMask(), network, seed);
        // A layer the allocation leaves dense (ERK may) has nothing to grow or prune.
        Layers = _initial.Layers.Where((_, i) => _initial.FinalSparsity[i] != 0).ToArray();
        Partitions = GapPartitions.Resolve(options, _initial.AllLayers, Layers);
    }

    /// <summary>Every prunable layer of the network, pruned by GaP or not.</summary>
    public IReadOnlyList<PrunableLayer> AllLayers => _initial.AllLayers;

    /// <summary>The layers GaP prunes and grows, in network order: those the initial mask prunes, but any whose target sparsity is 0.</summary>
    public IReadOnlyList<PrunableLayer> Layers { get; }

    /// <summary>The partitions, as positions in <see cref="Layers"/>.</summary>
    public int[][] Partitions { get; }

    /// <summary>Prunes every layer with the static-random control's mask (the same seed gives the same mask).</summary>
    public void ApplyInitialMask()
    {
        _initial.Prune(0, PruningSchedule.AtInitialization(), null);
        foreach (var layer in Layers) layer.Weight.SparsityNote = $"{_pattern} ({_method})";
    }

    /// <summary>Each layer's target: the number of pattern units its current mask prunes (all layers must be at their targets).</summary>
    public long[] Targets() => Layers.Select(PrunedUnits).ToArray();

    /// <summary>Removes the masks of a partition's layers; their pruned weights stay at 0. Returns the mask entries that flipped.</summary>
    public long Grow(int partition)
    {
        long flipped = 0;
        foreach (int i in Partitions[partition])
        {
            var weight = Layers[i].Weight;
            if (weight.Mask is { } mask) flipped += mask.LongCount(m => m == 0);
            weight.Mask = null;
            weight.SparsityNote = $"dense ({_method}: grown)";
        }
        return flipped;
    }

    /// <summary>
    /// Prunes a partition's layers back to their targets by magnitude: the <paramref name="targets"/>[i] pattern units of
    /// smallest mean |w| (ties to the earlier unit), or with an N:M pattern the N largest |w| of every group of M.
    /// Returns the mask entries that flipped (from the partition's masks before the call).
    /// </summary>
    public long PruneBack(int partition, long[] targets)
    {
        long flipped = 0;
        foreach (int i in Partitions[partition])
        {
            var layer = Layers[i];
            var before = layer.Weight.Mask;
            var scores = new float[layer.Count];
            ImportanceCriterion.Magnitude.Score(layer, 0, 0, default, scores);
            var mask = new float[layer.Count];
            if (_pattern is SparsityPattern.NMPattern nm) nm.BuildMask(layer, scores, mask);
            else
            {
                var units = new float[_pattern.UnitCount(layer)];
                _pattern.ScoreUnits(layer, scores, units);
                var pruned = new bool[units.Length];
                MaskSelection.SelectLowest(units, targets[i], pruned);
                _pattern.ExpandUnits(layer, pruned, mask);
            }
            for (int j = 0; j < mask.Length; j++) if (mask[j] != (before is null ? 1f : before[j])) flipped++;
            layer.ApplyMask(mask);
            layer.Weight.SparsityNote = $"{_pattern} ({_method})";
        }
        return flipped;
    }

    /// <summary>The pattern units a layer's mask prunes (N:M: the pruned weights).</summary>
    private long PrunedUnits(PrunableLayer layer)
    {
        if (layer.Weight.Mask is not { } mask) return 0;
        if (_pattern is SparsityPattern.NMPattern) return mask.LongCount(m => m == 0);
        var pruned = new bool[_pattern.UnitCount(layer)];
        _pattern.PrunedUnits(layer, mask, pruned);
        return pruned.LongCount(p => p);
    }
}
