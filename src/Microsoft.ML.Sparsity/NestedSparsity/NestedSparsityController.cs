using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.NestedSparsity;

/// <summary>
/// Runs a <see cref="NestedSparsityOptions"/> during training: the levels' codes updated on the schedule, and each
/// step's passes at several levels (weights masked to the level, gradients masked to it and averaged over the passes,
/// the sparsest level's weighted).
/// </summary>
internal sealed class NestedSparsityController : SparsityController
{
    private readonly NestedSparsityOptions _options;
    private readonly SequentialNetwork _network;
    private readonly Optimizer _optimizer;
    private readonly int _seed;
    private readonly double[] _levels;
    private readonly IReadOnlyList<PrunableLayer> _allLayers;
    private readonly IReadOnlyList<PrunableLayer> _layers;    // the pruned ones
    private readonly PruningPlan[] _plans;                    // per level: its per-layer targets and counts
    private readonly byte[][] _codes;                         // per pruned layer: how many levels keep each weight
    private readonly long[][] _pruned;                        // [level][pruned layer]: weights the level prunes now (for SameMasks)
    private readonly float[][] _shared;                       // the densest level's weights while a step's passes mask them
    private readonly float[][] _gradientSums;                 // per network parameter
    private readonly int[] _stepLevels;
    private PruningSchedule _schedule;
    private int _passes = 1, _epochEvents;
    private int _keptPerGroup;                                // N:M levels: what the densest level keeps of a group now

    public NestedSparsityController(NestedSparsityOptions options, SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log)
    {
        options.Validate();
        (_options, _network, _optimizer, _seed) = (options, network, optimizer, seed);
        _levels = [.. options.Levels];
        _plans = [.. _levels.Select(level => new PruningPlan(options.PruningTo(level), network, seed))];
        _allLayers = _plans[0].AllLayers;
        _layers = _plans[0].Layers;
        _codes = [.. _layers.Select(l => Enumerable.Repeat((byte)_levels.Length, l.Count).ToArray())];
        _pruned = [.. _levels.Select(_ => new long[_layers.Count])];
        _shared = [.. _layers.Select(l => new float[l.Count])];
        _gradientSums = [.. network.Parameters.Select(p => new float[p.Length])];
        _stepLevels = new int[_levels.Length];
        _schedule = options.Schedule;
        _keptPerGroup = options.NMGroupSize;
        foreach (var layer in _layers) layer.Weight.SparsityNote = options.NMGroupSize == 0 ? "nested levels" : "nested N:M levels";
    }

    public override double Sparsity => SparsityReport.PrunableSparsity(_allLayers);

    public override bool MasksFinal(long completedSteps) => completedSteps >= _schedule.LastPruningStep;

    public override void Start(int stepsPerEpoch, long totalSteps)
    {
        _schedule = _options.Schedule.Resolve(totalSteps);
        if (_schedule.IsPruningStep(0)) Update(0);
    }

    public override void BeforeForward(long step)
    {
        // The levels this step trains, densest first; levels whose masks are the same as a denser one's (all of them
        // before pruning starts) add nothing and are skipped.
        int k = _levels.Length, count = 0;
        if (_options.Sampling == NestedLevelSampling.All || k <= 3)
        {
            for (int i = 0; i < k; i++) _stepLevels[count++] = i;
        }
        else
        {
            // Drawn from the seed and the step alone (no Random to allocate): a resumed run draws the same levels.
            int middle = 1 + (int)(Seeds.SplitMix((ulong)Seeds.Derive(_seed, step, 0x4e65)) % (ulong)(k - 2));
            (_stepLevels[0], _stepLevels[1], _stepLevels[2], count) = (0, middle, k - 1, 3);
        }
        _passes = 0;
        for (int i = 0; i < count; i++)
            if (_passes == 0 || !SameMasks(_stepLevels[_passes - 1], _stepLevels[i]))
                _stepLevels[_passes++] = _stepLevels[i];
    }

    public override int Passes => _passes;

    public override void BeforePass(long step, int pass)
    {
        if (_passes == 1) return;
        if (pass == 0)
        {
            for (int l = 0; l < _layers.Count; l++) _layers[l].Weight.Value.AsSpan().CopyTo(_shared[l]);
            return;
        }
        for (int l = 0; l < _layers.Count; l++)
        {
            _shared[l].AsSpan().CopyTo(_layers[l].Weight.Value);
            NestedLevelCodes.ApplyMask(_codes[l], _stepLevels[pass], _layers[l].Weight.Value);
        }
    }

    public override void AfterPass(long step, int pass)
    {
        if (_passes == 1) return;
        int level = _stepLevels[pass];
        for (int l = 0; l < _layers.Count; l++) NestedLevelCodes.ApplyMask(_codes[l], level, _layers[l].Weight.Gradient);
        var parameters = _network.Parameters;
        float weight = Weight(level);
        for (int p = 0; p < parameters.Count; p++)
        {
            if (pass == 0) System.Numerics.Tensors.TensorPrimitives.Multiply(parameters[p].Gradient, weight, _gradientSums[p]);
            else System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(parameters[p].Gradient, weight, _gradientSums[p], _gradientSums[p]);
        }
        if (pass < _passes - 1) return;
        float total = 0;
        for (int i = 0; i < _passes; i++) total += Weight(_stepLevels[i]);
        for (int p = 0; p < parameters.Count; p++)
            System.Numerics.Tensors.TensorPrimitives.Multiply(_gradientSums[p], 1f / total, parameters[p].Gradient);
        for (int l = 0; l < _layers.Count; l++) _shared[l].AsSpan().CopyTo(_layers[l].Weight.Value);
    }

    /// <summary>How much level <paramref name="level"/>'s loss counts in a step's weighted mean.</summary>
    private float Weight(int level) => level == _levels.Length - 1 ? _options.SparsestLevelWeight : 1f;

    public override void AfterStep(long completedSteps)
    {
        if (completedSteps <= _schedule.LastPruningStep && _schedule.IsPruningStep(completedSteps)) Update(completedSteps);
    }

    public override EpochMaskActivity EndEpoch()
    {
        var activity = new EpochMaskActivity(_epochEvents, null);
        _epochEvents = 0;
        return activity;
    }

    /// <summary>Leaves the levels and each pruned weight's code on the network: the trained model serves every level.</summary>
    public override void Finish()
    {
        _network.SparsityLevels = [.. _levels];
        for (int l = 0; l < _layers.Count; l++) _layers[l].Weight.LevelCodes = (byte[])_codes[l].Clone();
    }

    /// <summary>True when levels <paramref name="a"/> and <paramref name="b"/> prune the same weights (nested: the same counts).</summary>
    private bool SameMasks(int a, int b)
    {
        for (int l = 0; l < _layers.Count; l++)
            if (_pruned[a][l] != _pruned[b][l]) return false;
        return true;
    }

    /// <summary>Re-ranks every pruned layer's weights by magnitude and gives each level its count at <paramref name="step"/>.</summary>
    private void Update(long step)
    {
        if (_options.NMGroupSize == 0) AssignUnstructured(step);
        else AssignInGroups(step);
        int n = _layers.Count, k = _levels.Length;
        for (int i = 0; i < k; i++)
            for (int l = 0; l < n; l++) _pruned[i][l] = _layers[l].Count - NestedLevelCodes.Kept(_codes[l], i);

        var mask = new float[_layers.Select(l => l.Count).DefaultIfEmpty(0).Max()];
        for (int l = 0; l < n; l++)
        {
            NestedLevelCodes.Mask(_codes[l], 0, mask.AsSpan(0, _layers[l].Count));
            _layers[l].ApplyMask(mask.AsSpan(0, _layers[l].Count));
        }
        _optimizer.ApplyMasks();
        _epochEvents++;
    }

    /// <summary>
    /// N:M levels: level i keeps M − ⌊s_i(t)·M⌋ of every group at the schedule's sparsity s_i(t) toward it (progressive
    /// N:M, reaching its N), no more than a denser level, and the densest no more than it kept before.
    /// </summary>
    private void AssignInGroups(long step)
    {
        int m = _options.NMGroupSize;
        int[] kept = new int[_levels.Length];
        for (int i = 0; i < kept.Length; i++)
        {
            int now = m - (int)Math.Floor(_schedule.SparsityAt(step, _levels[i]) * m + 1e-9);
            kept[i] = Math.Min(Math.Max(now, _options.KeptPerGroup(_levels[i])), i == 0 ? _keptPerGroup : kept[i - 1]);
        }
        _keptPerGroup = kept[0];
        for (int l = 0; l < _layers.Count; l++)
            NestedLevelCodes.AssignInGroups(Scores(_layers[l], _codes[l]), kept, m, _layers[l].InChannels, _codes[l]);
    }

    /// <summary>Unstructured levels: each level prunes its own gradual-pruning count, by one ranking per layer (or over the global threshold's layers).</summary>
    private void AssignUnstructured(long step)
    {
        int n = _layers.Count, k = _levels.Length;
        long[] alreadyPruned = [.. _codes.Select(c => (long)c.AsSpan().Count((byte)0))];
        // Each level's counts as its own gradual pruning would have them, raised so that no level prunes fewer weights
        // than a denser one, nor the densest fewer than are gone for good.
        var counts = _plans.Select(p => p.PrunedUnitsAt(step, _schedule)).ToArray();
        var free = Enumerable.Range(0, n).Where(l => counts[0].PerLayer[l] is null).ToArray();
        foreach (int l in Enumerable.Range(0, n).Except(free))
        {
            long[] pruned = new long[k];
            for (int i = 0; i < k; i++) pruned[i] = Math.Max(counts[i].PerLayer[l]!.Value, i == 0 ? alreadyPruned[l] : pruned[i - 1]);
            NestedLevelCodes.Assign(Scores(_layers[l], _codes[l]), pruned, _codes[l]);
        }
        if (free.Length > 0)
        {
            // One ranking over the global threshold's layers together.
            long[] pruned = new long[k];
            for (int i = 0; i < k; i++) pruned[i] = Math.Max(counts[i].Global, i == 0 ? free.Sum(l => alreadyPruned[l]) : pruned[i - 1]);
            byte[] codes = new byte[free.Sum(l => _layers[l].Count)];
            NestedLevelCodes.Assign([.. free.SelectMany(l => Scores(_layers[l], _codes[l]))], pruned, codes);
            int offset = 0;
            foreach (int l in free)
            {
                codes.AsSpan(offset, _layers[l].Count).CopyTo(_codes[l]);
                offset += _layers[l].Count;
            }
        }
    }

    /// <summary>|w|, with the weights no level keeps (gone for good) ranked first.</summary>
    private static float[] Scores(PrunableLayer layer, byte[] codes)
    {
        var scores = new float[layer.Count];
        System.Numerics.Tensors.TensorPrimitives.Abs(layer.Weight.Value, scores);
        for (int i = 0; i < scores.Length; i++)
            if (codes[i] == 0) scores[i] = float.NegativeInfinity;
        return scores;
    }
}
