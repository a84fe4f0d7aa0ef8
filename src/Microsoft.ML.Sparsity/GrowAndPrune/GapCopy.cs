using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>A network's state as plain arrays: its <see cref="SequentialNetwork.StateArrays"/> and its parameters' masks (null = dense).</summary>
internal sealed record GapModelState(float[][] State, float[]?[] Masks)
{
    public static GapModelState Of(SequentialNetwork network) => new(
        network.StateArrays.Select(a => (float[])a.Clone()).ToArray(), network.Parameters.Select(p => (float[]?)p.Mask?.Clone()).ToArray());

    public void LoadInto(SequentialNetwork network)
    {
        for (int i = 0; i < State.Length; i++) State[i].CopyTo(network.StateArrays[i], 0);
        for (int p = 0; p < Masks.Length; p++) network.Parameters[p].Mask = (float[]?)Masks[p]?.Clone();
    }
}

/// <summary>One copy's round of P-GaP: the round's starting model, the partition it grows, the round and the training seed.</summary>
internal sealed record GapCopyWork(GapModelState Start, int Partition, int Round, int Seed, int ClassCount, int[] InputShape);

/// <summary>What one copy gives back: its partition's arrays, keyed by index in <see cref="GapModelState.State"/> and <see cref="GapModelState.Masks"/>.</summary>
internal sealed record GapCopyResult(int Partition, IReadOnlyDictionary<int, float[]> State, IReadOnlyDictionary<int, float[]?> Masks);

/// <summary>
/// P-GaP's unit of work and its merge. <see cref="Train"/> is a plain function of its arguments (it builds its own
/// network and optimiser and touches no shared state), so the κ copies of a round can run anywhere, in any order.
/// </summary>
internal static class GapCopy
{
    /// <summary>
    /// Grows partition <c>work.Partition</c> of the round's starting model, trains the whole model for T epochs (epochs
    /// r·T to (r+1)·T of the run, with the run's learning-rate schedule and data order, and a fresh optimiser), prunes
    /// the partition back to its targets by magnitude and returns the arrays of the network layers it owns
    /// (<see cref="GapPartitions.LayerOwners"/>): its weights, masks, biases and normalisation statistics.
    /// </summary>
    public static GapCopyResult Train(GapCopyWork work, ParallelGapOptions options, Dataset train, WorkerPool pool, CancellationToken cancellation)
    {
        var training = options.Training;
        var network = Build(options, work.ClassCount, work.InputShape, pool, Seeds.Derive(work.Seed, work.Round, work.Partition));
        work.Start.LoadInto(network);
        var gap = new GapLayers(options.Gap, network, work.Seed, "P-GaP");
        var targets = gap.Targets();
        gap.Grow(work.Partition);
        var optimizer = training.Optimizer.Create(network.Parameters, pool);
        optimizer.ApplyMasks();
        int stepsPerEpoch = (train.Count + training.BatchSize - 1) / training.BatchSize;
        long totalSteps = (long)stepsPerEpoch * training.Epochs;
        int stepEpochs = options.Gap.ResolveSchedule(training.Epochs, 1, ParallelGapOptions.DefaultRounds).StepEpochs;
        int roundEnd = (work.Round + 1) * stepEpochs;
        var loop = new TrainingLoop(network, new SoftmaxCrossEntropyLoss(), optimizer, new RunSchedule(training.LearningRateSchedule, totalSteps),
            training.Optimizer.LearningRate, training.BatchSize, roundEnd, work.Seed, training.Shuffle, 0, isClassifier: true,
            batchNormScaleL1: training.BatchNormScaleL1);
        loop.Run(train, null, null, null, cancellation, (long)work.Round * stepEpochs * stepsPerEpoch);
        gap.PruneBack(work.Partition, targets);
        var (stateOwners, parameterOwners) = Owners(network, gap);
        return new GapCopyResult(work.Partition,
            Enumerable.Range(0, stateOwners.Length).Where(i => stateOwners[i] == work.Partition).ToDictionary(i => i, i => (float[])network.StateArrays[i].Clone()),
            Enumerable.Range(0, parameterOwners.Length).Where(p => parameterOwners[p] == work.Partition).ToDictionary(p => p, p => (float[]?)network.Parameters[p].Mask?.Clone()));
    }

    /// <summary>The round's merged model: every array from the copy whose partition owns it; each must come from exactly one copy.</summary>
    public static GapModelState Merge(GapModelState start, IReadOnlyList<GapCopyResult> copies)
    {
        var state = new float[start.State.Length][];
        var masks = new float[]?[start.Masks.Length];
        var maskSet = new bool[masks.Length];
        foreach (var copy in copies)
        {
            foreach (var (i, values) in copy.State)
            {
                if (state[i] is not null) throw new InvalidOperationException($"State array {i} comes from two copies (partition {copy.Partition} and another).");
                state[i] = (float[])values.Clone();
            }
            foreach (var (p, mask) in copy.Masks)
            {
                if (maskSet[p]) throw new InvalidOperationException($"The mask of parameter {p} comes from two copies (partition {copy.Partition} and another).");
                (masks[p], maskSet[p]) = ((float[]?)mask?.Clone(), true);
            }
        }
        int missing = Array.FindIndex(state, s => s is null);
        if (missing >= 0) throw new InvalidOperationException($"No copy returned state array {missing}.");
        missing = Array.IndexOf(maskSet, false);
        if (missing >= 0) throw new InvalidOperationException($"No copy returned the mask of parameter {missing}.");
        return new GapModelState(state, masks);
    }

    /// <summary>The network P-GaP trains: the options' layers and a dense output layer named <c>output</c>, as the trainer builds it.</summary>
    public static SequentialNetwork Build(ParallelGapOptions options, int classCount, int[] inputShape, WorkerPool pool, int seed) => new(
        [.. options.Training.Layers, new DenseDefinition(classCount) { Name = "output" }], inputShape,
        new LayerBuildContext(pool, options.Training.WeightInitializer, seed));

    /// <summary>The partition owning each state array and each parameter: that of the network layer holding it.</summary>
    public static (int[] State, int[] Parameters) Owners(SequentialNetwork network, GapLayers gap)
    {
        var layerOwners = GapPartitions.LayerOwners(network, gap.Layers, gap.Partitions);
        var parameters = new List<int>();
        var statistics = new List<int>();
        for (int l = 0; l < network.Layers.Count; l++)
        {
            parameters.AddRange(network.Layers[l].Parameters.Select(_ => layerOwners[l]));
            if (network.Layers[l] is BatchNormLayer) statistics.AddRange([layerOwners[l], layerOwners[l]]);
        }
        return ([.. parameters, .. statistics], [.. parameters]);
    }

    /// <summary>The run's learning-rate schedule over the run's whole length, for a loop that trains only part of it.</summary>
    private sealed class RunSchedule(LearningRateSchedule schedule, long runSteps) : LearningRateSchedule
    {
        private protected override float ScheduleFactor(long step, int stepsPerEpoch, long totalSteps) => schedule.Factor(step, stepsPerEpoch, runSteps);
    }
}
