using System.Globalization;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>
/// Runs a <see cref="DynamicSparseOptions"/> during training: the random initial mask at step 0, then a drop-and-grow
/// update of every layer after each update step's optimiser update (steps ΔT, 2ΔT, … below T_end).
/// </summary>
internal sealed class DynamicSparseController : SparsityController
{
    private readonly DynamicSparseOptions _options;
    private readonly Optimizer _optimizer;
    private readonly Action<string>? _log;
    private readonly PruningPlan _initialMask;
    private readonly int _seed;
    private readonly long[] _grownTotal;
    private long _interval, _end, _lastUpdate;
    private int _updates, _epochEvents;
    private long _epochChanges;

    public DynamicSparseController(DynamicSparseOptions options, SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log)
    {
        options.Validate();
        (_options, _optimizer, _log) = (options, optimizer, log);
        _seed = options.Seed ?? seed;
        _initialMask = new PruningPlan(options.InitialMask(), network, seed);
        _grownTotal = new long[_initialMask.Layers.Count];
    }

    /// <summary>The layers whose masks move, in network order.</summary>
    public IReadOnlyList<PrunableLayer> Layers => _initialMask.Layers;

    public override double Sparsity => SparsityReport.PrunableSparsity(_initialMask.AllLayers);

    public override bool MasksFinal(long completedSteps) => completedSteps >= _lastUpdate;

    public override void Start(int stepsPerEpoch, long totalSteps)
    {
        _interval = _options.UpdateEveryEpoch ? stepsPerEpoch : _options.UpdateFrequency;
        _end = _options.EndStepFor(totalSteps);
        _lastUpdate = (_end - 1) / _interval * _interval;   // 0 when no update comes before T_end
        if (_lastUpdate == 0)
            _log?.Invoke($"Warning: T_end = step {_end} comes before the first mask update at step {_interval}; the random mask will stay fixed.");
        _initialMask.Prune(0, PruningSchedule.AtInitialization(), null);
        _optimizer.ApplyMasks();
        _epochEvents++;
    }

    public override void AfterStep(long completedSteps)
    {
        if (completedSteps % _interval != 0 || completedSteps >= _end) return;
        Update(completedSteps);
    }

    /// <summary>Updates made (the initial mask counts in epoch 1) and mask entries flipped during the epoch (2k per layer per update).</summary>
    public override EpochMaskActivity EndEpoch()
    {
        var activity = new EpochMaskActivity(_epochEvents, _epochChanges);
        (_epochEvents, _epochChanges) = (0, 0);
        return activity;
    }

    /// <summary>The sparsity report's pattern column carries each layer's totals; the log gets one summary line.</summary>
    public override void Finish()
    {
        for (int l = 0; l < Layers.Count; l++)
            Layers[l].Weight.SparsityNote = string.Create(CultureInfo.InvariantCulture,
                $"{_options.Name}: {_updates} updates, {_grownTotal[l]:N0} grown (unstructured)");
        _log?.Invoke($"{_options}: {_updates} mask updates, {_grownTotal.Sum():N0} weights grown in {Layers.Count} layers.");
    }

    /// <summary>Drops and grows k_l = round(f(t)·active_l) entries of every layer, then hands the masks to the optimiser.</summary>
    internal void Update(long step)
    {
        double fraction = _options.DropFractionAt(step, _end);
        for (int l = 0; l < Layers.Count; l++)
        {
            var layer = Layers[l];
            var (active, inactive) = DropAndGrow.Positions(layer.Weight.Mask!);
            int k = DropAndGrow.MoveCount(fraction, active.Length, inactive.Length);
            if (k == 0) continue;
            int layerSeed = Seeds.Derive(_seed, layer.Index, step);
            var dropped = DropAndGrow.Drop(layer, active, k);
            var grown = _options.Grow(layer, inactive, k, new Random(layerSeed));
            float[]? values = null;
            if (_options.GrowInitializer is WeightInitializer initializer)
            {
                values = new float[k];
                new LayerBuildContext(WorkerPool.Inline, initializer, Seeds.Derive(layerSeed, 1))
                    .Initialize(values, layer.Columns, layer.Rows * layer.KernelH * layer.KernelW);
            }
            DropAndGrow.Apply(layer, dropped, grown, values);
            _grownTotal[l] += k;
            _epochChanges += 2L * k;
        }
        // Dropped entries' optimiser state goes to 0; grown entries' is 0 already (state of masked entries is kept at 0).
        _optimizer.ApplyMasks();
        _updates++;
        _epochEvents++;
    }
}
