using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>
/// Runs C-GaP in the training loop: the initial random mask and the first grow at <see cref="Start"/>, then at the end
/// of every step (every T epochs) the grown partition pruned back and the next one grown, until the last round's prune.
/// </summary>
internal sealed class GapController : SparsityController
{
    private readonly GapOptions _options;
    private readonly Optimizer _optimizer;
    private readonly Action<string>? _log;
    private readonly int _seed;
    private long[] _targets = [];
    private long _stepLength;       // optimiser steps per GaP step (T epochs)
    private int _grown = -1;        // the partition grown now, or −1
    private int _epochUpdates;
    private long _epochChanges, _totalUpdates, _totalChanges;

    public GapController(GapOptions options, SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log)
    {
        Layers = new GapLayers(options, network, seed, "C-GaP");
        (_options, _optimizer, _seed, _log) = (options, optimizer, seed, log);
    }

    public GapLayers Layers { get; }

    /// <summary>The schedule, known once the run's length is (at <see cref="Start"/>).</summary>
    public GapSchedule? Schedule { get; private set; }

    /// <summary>Each pruned layer's target: pattern units pruned by the initial mask.</summary>
    public IReadOnlyList<long> Targets => _targets;

    public override double Sparsity => SparsityReport.PrunableSparsity(Layers.AllLayers);

    public override void Start(int stepsPerEpoch, long totalSteps)
    {
        int epochs = (int)(totalSteps / stepsPerEpoch);
        int partitions = Layers.Partitions.Length;
        var (stepEpochs, rounds) = _options.ResolveSchedule(epochs, partitions, defaultRounds: 1);
        Schedule = new GapSchedule(partitions, rounds, _options.Order, _seed);
        _stepLength = (long)stepEpochs * stepsPerEpoch;
        Layers.ApplyInitialMask();
        _targets = Layers.Targets();
        _log?.Invoke($"C-GaP: {partitions} partitions [{string.Join("; ", Layers.Partitions.Select(p => string.Join(", ", p.Select(i => Layers.Layers[i].Name))))}], " +
            $"{rounds} rounds of {partitions} steps of {stepEpochs} epochs, then {epochs - rounds * partitions * stepEpochs} epochs of fine-tuning.");
        Update(0);
    }

    public override void AfterStep(long completedSteps)
    {
        if (completedSteps % _stepLength != 0 || completedSteps / _stepLength > Schedule!.Steps) return;
        Update((int)(completedSteps / _stepLength));
    }

    public override bool MasksFinal(long completedSteps) => Schedule is { } s && completedSteps >= s.Steps * _stepLength;

    public override EpochMaskActivity EndEpoch()
    {
        var activity = new EpochMaskActivity(_epochUpdates, _epochChanges);
        (_epochUpdates, _epochChanges) = (0, 0);
        return activity;
    }

    public override void Finish() =>
        _log?.Invoke($"C-GaP finished: {_totalUpdates} mask updates flipped {_totalChanges:N0} mask entries; sparsity {Sparsity:P2} of prunable weights.");

    /// <summary>The start of GaP step <paramref name="step"/>: prune the grown partition back, grow the step's (none after the last step).</summary>
    private void Update(int step)
    {
        long changes = 0;
        if (_grown >= 0) changes += Layers.PruneBack(_grown, _targets);
        _grown = step < Schedule!.Steps ? Schedule.PartitionAt(step) : -1;
        if (_grown >= 0) changes += Layers.Grow(_grown);
        _optimizer.ApplyMasks();
        _epochUpdates++;
        _epochChanges += changes;
        _totalUpdates++;
        _totalChanges += changes;
    }
}
