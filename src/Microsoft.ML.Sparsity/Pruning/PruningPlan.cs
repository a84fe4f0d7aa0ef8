using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.ChannelPruning;
using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.Pruning;

/// <summary>
/// Which layers a <see cref="PruningOptions"/> prunes and to what final sparsity, and the pruning operation itself:
/// score, pick exactly the units to remove, write masks, zero the weights.
/// </summary>
internal sealed class PruningPlan
{
    private readonly PruningOptions _options;
    private readonly double[] _finalSparsity;      // per pruned layer; NaN = chosen by the global threshold
    private readonly int _seed;

    public PruningPlan(PruningOptions options, SequentialNetwork network, int seed)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _seed = seed;
        AllLayers = PrunableLayer.From(network);
        if (AllLayers.Count == 0) throw new ArgumentException("The network has no dense or convolution layer to prune.", nameof(network));
        var overrides = options.LayerSparsity.ToDictionary(
            kv => LayerSelection.Resolve(AllLayers, kv.Key, nameof(PruningOptions.LayerSparsity)), kv => kv.Value);
        var pruned = LayerSelection.Select(AllLayers, options.ExcludedLayers, nameof(PruningOptions.ExcludedLayers),
            options.Pattern, options.LeaveMisfitLayersDense, nameof(PruningOptions.Pattern));
        Layers = pruned;
        if (options.Criterion is ChannelCriterion channels)
            foreach (var layer in pruned) channels.Check(layer);
        var fixedSparsity = pruned.Select(l => overrides.TryGetValue(l.Index, out double s) ? s : double.NaN).ToArray();
        if (options.FlopsReduction is double flops)
        {
            // The smallest uniform channel fraction that removes that share of the multiply-adds (as CHEX's uniform allocation).
            bool[] explored = [.. AllLayers.Select(l => pruned.Contains(l))];
            int[] counts = new ChexAllocation([.. AllLayers.Select(l => l.OutChannels)], [.. AllLayers.Select(l => l.Layer.MultiplyAdds)], explored, options.ChannelMultiple, [.. AllLayers.Select(l => l.Name)])
                .AtFlopsReduction(flops, null, nameof(PruningOptions.FlopsReduction));
            for (int i = 0; i < pruned.Count; i++) fixedSparsity[i] = (double)counts[pruned[i].Index] / pruned[i].OutChannels;
        }
        if (options.OutputLayerAtHalfRate && pruned.Count > 0 && pruned[^1].Index == AllLayers.Count - 1 && double.IsNaN(fixedSparsity[^1]))
            fixedSparsity[^1] = options.TargetSparsity / 2;
        if (options.Pattern is SparsityPattern.NMPattern nm) _finalSparsity = pruned.Select(l => 1 - (double)nm.KeptCount(l) / l.Count).ToArray();
        else if (options.Allocation.IsGlobal) _finalSparsity = fixedSparsity;
        else _finalSparsity = options.Allocation.Allocate(pruned, options.TargetSparsity, fixedSparsity);
        if (options.Pattern == SparsityPattern.OutputChannels)
        {
            // The counts the last step prunes, rounded as the plan rounds them (a total matched over the layers included).
            var (final, _) = PrunedUnitsAt(s => s);
            for (int i = 0; i < pruned.Count; i++)
                if (final[i] >= pruned[i].OutChannels)
                    throw new ArgumentOutOfRangeException(overrides.ContainsKey(pruned[i].Index) ? nameof(PruningOptions.LayerSparsity) : nameof(PruningOptions.TargetSparsity), _finalSparsity[i],
                        $"Layer '{pruned[i].Name}' has {pruned[i].OutChannels} output channels: a sparsity of {_finalSparsity[i]:0.###} would remove all of them. " +
                        "At least one must stay; lower the sparsity or exclude the layer.");
        }
    }

    public IReadOnlyList<PrunableLayer> AllLayers { get; }

    /// <summary>The layers pruned (not excluded, pattern fits), in network order.</summary>
    public IReadOnlyList<PrunableLayer> Layers { get; }

    /// <summary>The final sparsity of each pruned layer (NaN where the global threshold decides).</summary>
    public IReadOnlyList<double> FinalSparsity => _finalSparsity;

    /// <summary>Prunes every layer to its sparsity at <paramref name="step"/> of <paramref name="schedule"/>; already pruned units stay pruned.</summary>
    /// <param name="step">The step (for the schedule and seeded criteria).</param>
    /// <param name="schedule">The resolved schedule.</param>
    /// <param name="taylorSums">Σ|w·g| per pruned layer, for the Taylor criterion.</param>
    public void Prune(long step, PruningSchedule schedule, float[][]? taylorSums)
    {
        var pattern = _options.Pattern;
        int n = Layers.Count;
        if (pattern is SparsityPattern.NMPattern nmPattern)
        {
            for (int l = 0; l < n; l++)
            {
                var nmMask = new float[Layers[l].Count];
                nmPattern.BuildMask(Layers[l], WeightScores(l, step, taylorSums), nmMask);
                Apply(Layers[l], nmMask);
            }
            return;
        }
        var unitScores = Layers.Select(pattern.UnitCount).Select(u => new float[u]).ToArray();
        var alreadyPruned = unitScores.Select(s => new bool[s.Length]).ToArray();
        for (int l = 0; l < n; l++)
            if (Layers[l].Weight.Mask is { } mask) pattern.PrunedUnits(Layers[l], mask, alreadyPruned[l]);

        var prunedUnits = unitScores.Select(s => new bool[s.Length]).ToArray();
        var free = Enumerable.Range(0, n).Where(l => double.IsNaN(_finalSparsity[l])).ToArray();
        // Per-layer targets (uniform, ER, ERK, overrides), known before scoring: a channel criterion may score for the
        // count a layer keeps.
        var (counts, globalCount) = PrunedUnitsAt(step, schedule);
        var prunedCount = new long?[n];
        for (int l = 0; l < n; l++)
            if (counts[l] is long count) prunedCount[l] = Math.Max(count, alreadyPruned[l].Count(p => p));

        for (int l = 0; l < n; l++)
        {
            if (_options.Criterion is ChannelCriterion channels)
                channels.ScoreChannels(Layers[l], unitScores[l].Length - (int?)prunedCount[l], unitScores[l]);
            else
                pattern.ScoreUnits(Layers[l], WeightScores(l, step, taylorSums), unitScores[l]);
            for (int u = 0; u < unitScores[l].Length; u++) if (alreadyPruned[l][u]) unitScores[l][u] = float.NegativeInfinity;
        }
        for (int l = 0; l < n; l++)
            if (prunedCount[l] is long count) MaskSelection.SelectLowest(unitScores[l], count, prunedUnits[l]);
        // Global threshold over the remaining layers: one selection over their concatenated units. Whole channels: each
        // layer keeps its best one, so the threshold never empties a layer.
        if (free.Length > 0)
        {
            if (pattern == SparsityPattern.OutputChannels)
                foreach (int l in free) unitScores[l][System.Numerics.Tensors.TensorPrimitives.IndexOfMax(unitScores[l])] = float.PositiveInfinity;
            var all = free.SelectMany(l => unitScores[l]).ToArray();
            long k = Math.Max(globalCount, free.Sum(l => (long)alreadyPruned[l].Count(p => p)));
            if (pattern == SparsityPattern.OutputChannels) k = Math.Min(k, all.Length - free.Length);
            var selected = new bool[all.Length];
            MaskSelection.SelectLowest(all, k, selected);
            int offset = 0;
            foreach (int l in free)
            {
                selected.AsSpan(offset, prunedUnits[l].Length).CopyTo(prunedUnits[l]);
                offset += prunedUnits[l].Length;
            }
        }
        for (int l = 0; l < n; l++)
        {
            var mask = new float[Layers[l].Count];
            pattern.ExpandUnits(Layers[l], prunedUnits[l], mask);
            Apply(Layers[l], mask);
            if (_options.PruneBiases)
            {
                var owned = new List<Parameter>();
                if (Layers[l].Bias is { } bias) owned.Add(bias);
                if (ChannelPruning.ChannelChain.BatchNormOf(Layers[l]) is { } norm) owned.AddRange([norm.Gamma, norm.Beta]);
                foreach (var parameter in owned)
                {
                    parameter.Mask = prunedUnits[l].Select(p => p ? 0f : 1f).ToArray();
                    System.Numerics.Tensors.TensorPrimitives.Multiply(parameter.Value, parameter.Mask, parameter.Value);
                }
            }
        }
    }

    /// <summary>
    /// The units the schedule prunes at <paramref name="step"/>: per pruned layer with a target of its own (null for the
    /// layers a global threshold decides), and the units that threshold prunes over those layers together (0 without
    /// one). Units already pruned are not counted in; callers keep at least those.
    /// </summary>
    public (long?[] PerLayer, long Global) PrunedUnitsAt(long step, PruningSchedule schedule) => PrunedUnitsAt(s => schedule.SparsityAt(step, s));

    /// <summary>As <see cref="PrunedUnitsAt(long, PruningSchedule)"/>, with <paramref name="now"/> mapping a final sparsity to the one to prune to.</summary>
    private (long?[] PerLayer, long Global) PrunedUnitsAt(Func<double, double> now)
    {
        var pattern = _options.Pattern;
        var free = Enumerable.Range(0, Layers.Count).Where(l => double.IsNaN(_finalSparsity[l])).ToArray();
        var perLayer = Enumerable.Range(0, Layers.Count).Where(l => !double.IsNaN(_finalSparsity[l])).ToArray();
        var units = perLayer.Select(l => pattern.UnitCount(Layers[l])).ToArray();
        var sparsityNow = perLayer.Select(l => now(_finalSparsity[l])).ToArray();
        long? total = _options.Allocation.MatchesTotal && free.Length == 0
            ? MaskSelection.PrunedCount(now(_options.TargetSparsity), units.Sum(u => (long)u))
            : null;
        var counts = LayerAllocation.PrunedCounts(sparsityNow, units, total);
        var result = new long?[Layers.Count];
        for (int i = 0; i < perLayer.Length; i++)
            result[perLayer[i]] = ChexAllocation.KeepMultiple(units[i], (int)counts[i], _options.ChannelMultiple);
        long global = free.Length == 0 ? 0 : MaskSelection.PrunedCount(now(_options.TargetSparsity), free.Sum(l => (long)pattern.UnitCount(Layers[l])));
        return (result, global);
    }

    private float[] WeightScores(int l, long step, float[][]? taylorSums)
    {
        var scores = new float[Layers[l].Count];
        _options.Criterion.Score(Layers[l], step, _seed, taylorSums is null ? default : taylorSums[l], scores);
        return scores;
    }

    private void Apply(PrunableLayer layer, float[] mask)
    {
        layer.ApplyMask(mask);
        layer.Weight.SparsityNote = _options.Pattern.ToString();
    }
}
