using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Pruning;

/// <summary>Runs a <see cref="PruningOptions"/> during training: pruning events on the schedule, Taylor accumulation before them.</summary>
internal sealed class PruningController : SparsityController
{
    private readonly PruningOptions _options;
    private readonly Optimizer _optimizer;
    private readonly Action<string>? _log;
    private readonly PruningPlan _plan;
    private readonly float[][]? _taylor;
    private PruningSchedule _schedule;
    private long _nextEvent = -1;
    private long _totalSteps;
    private int _epochEvents;

    public PruningController(PruningOptions options, SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log)
    {
        _options = options;
        _optimizer = optimizer;
        _log = log;
        _plan = new PruningPlan(options, network, seed);
        _schedule = options.Schedule;
        if (options.Criterion.GradientBatches > 0) _taylor = _plan.Layers.Select(l => new float[l.Count]).ToArray();
    }

    public override double Sparsity => SparsityReport.PrunableSparsity(_plan.AllLayers);

    public override bool MasksFinal(long completedSteps) => completedSteps >= _schedule.LastPruningStep;

    public override void Start(int stepsPerEpoch, long totalSteps)
    {
        _schedule = _options.Schedule.Resolve(totalSteps);
        _totalSteps = totalSteps;
        if (_schedule.LastPruningStep > totalSteps)
            _log?.Invoke($"Warning: the pruning schedule ends at step {_schedule.LastPruningStep}, after the run's {totalSteps} steps; the target sparsity will not be reached.");
        _nextEvent = NextEventFrom(0, totalSteps);
        if (_nextEvent == 0)
        {
            if (_taylor is not null)
                throw new ArgumentException("The Taylor criterion needs gradients from training batches, so it cannot prune at step 0; start the schedule later.", nameof(PruningOptions.Criterion));
            PruneAt(0);
            _nextEvent = NextEventFrom(1, totalSteps);
        }
    }

    public override void AfterBackward(long step)
    {
        // Σ|w·g| over the GradientBatches steps just before the next event.
        if (_taylor is null || _nextEvent < 0 || step < _nextEvent - _options.Criterion.GradientBatches) return;
        TaylorScores.AddCurrent(_plan.Layers, _taylor);
    }

    public override void AfterStep(long completedSteps)
    {
        if (completedSteps != _nextEvent) return;
        PruneAt(completedSteps);
        _nextEvent = NextEventFrom(completedSteps + 1, _totalSteps);
    }

    /// <summary>Events are counted and reported once per epoch by the training progress, not logged one by one.</summary>
    public override EpochMaskActivity EndEpoch()
    {
        var activity = new EpochMaskActivity(_epochEvents, null);
        _epochEvents = 0;
        return activity;
    }

    private void PruneAt(long step)
    {
        _plan.Prune(step, _schedule, _taylor);
        _optimizer.ApplyMasks();
        if (_taylor is not null) foreach (var t in _taylor) t.AsSpan().Clear();
        _epochEvents++;
    }

    private long NextEventFrom(long step, long totalSteps)
    {
        for (long t = step; t <= Math.Min(_schedule.LastPruningStep, totalSteps); t++)
            if (_schedule.IsPruningStep(t)) return t;
        return -1;
    }
}
