using System.Diagnostics;
using Microsoft.ML.Runtime;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>
/// Parallel scheduled grow-and-prune, P-GaP ("Effective Model Sparsification by Scheduled Grow-and-Prune Methods", Ma,
/// Qin, Sun et al., ICLR 2022): an estimator whose <see cref="Fit"/> returns the sparse model. Create it with
/// <c>mlContext.Sparsity().ParallelGrowAndPrune(options)</c>; see <see cref="ParallelGapOptions"/>.
/// </summary>
/// <remarks>
/// The model starts from the static-random control's mask (as C-GaP). Each round trains κ copies of it, copy i with
/// partition i grown dense, for T epochs; each copy then prunes its partition back to its targets by magnitude, and
/// the round's model is partition i (with the biases and normalisation layers that follow its layers) from copy i.
/// After the last round the model trains with its mask fixed for the remaining epochs. The copies of a round run
/// one after the other here, each a self-contained unit of work; the result does not depend on the thread count.
/// </remarks>
public sealed class ParallelGap : IEstimator<NeuralNetworkMulticlassModel>
{
    private readonly SparsityHost _host;
    private readonly ParallelGapOptions _options;

    internal ParallelGap(IHostEnvironment environment, ParallelGapOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _host = new SparsityHost(environment, nameof(ParallelGap), options.Training?.NumberOfThreads);
    }

    /// <summary>Runs every round and the fine-tuning on <paramref name="input"/> and returns the sparse model.</summary>
    public NeuralNetworkMulticlassModel Fit(IDataView input) => Run(input).Model;

    /// <summary>The input columns with the model's <c>Score</c> and <c>PredictedLabel</c> added.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return SchemaShapes.AddScoreColumns(inputSchema, _options.Training.FeatureColumnName, _options.Training.LabelColumnName);
    }

    /// <summary>Runs every round and the fine-tuning; returns the model and each round's record.</summary>
    /// <param name="train">The training data.</param>
    /// <param name="validation">Validation data, evaluated after every round and fine-tuning epoch; null: <c>Training.ValidationFraction</c> of <paramref name="train"/> is held out (none if 0).</param>
    /// <param name="progress">Receives the fine-tuning epochs' progress.</param>
    /// <param name="cancellationToken">Stops between optimiser steps with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ArgumentException">Bad options or data; the message names the option or column.</exception>
    public ParallelGapResult Run(IDataView train, IDataView? validation = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        _options.Validate();
        return Run(Read(train), validation is null ? null : Read(validation), RunHere, progress, cancellationToken);
    }

    /// <summary>
    /// Runs a round's copies: each <see cref="GapCopyWork"/> is self-contained, so they may run anywhere (here, one after
    /// the other; or on a cluster's workers, Microsoft.ML.Sparsity.Distributed); the results come back in the copies' order.
    /// </summary>
    internal delegate IReadOnlyList<GapCopyResult> CopyRunner(IReadOnlyList<GapCopyWork> copies, Dataset train, CancellationToken cancellation);

    private IReadOnlyList<GapCopyResult> RunHere(IReadOnlyList<GapCopyWork> copies, Dataset train, CancellationToken cancellation) =>
        [.. copies.Select(copy => GapCopy.Train(copy, _options, train, _host.Pool, cancellation))];

    /// <summary>The options (checked).</summary>
    internal ParallelGapOptions Options => _options;

    /// <summary>Every round (its copies run by <paramref name="copies"/>) and the fine-tuning, on data already read.</summary>
    internal ParallelGapResult Run(Dataset trainData, Dataset? validationData, CopyRunner copies, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        _options.Validate();
        var training = _options.Training;
        int seed = training.Seed ?? _host.NextSeed();
        int classCount = NeuralNetworkMulticlassTrainer.CountClasses(trainData);
        var classLabels = trainData.ClassLabels;
        if (validationData is null && training.ValidationFraction > 0) (trainData, validationData) = trainData.Split(training.ValidationFraction, seed);
        if (validationData is not null)
        {
            if (validationData.FeatureLength != trainData.FeatureLength)
                throw new ArgumentException($"Validation examples have {validationData.FeatureLength} features; training examples have {trainData.FeatureLength}.", "validation");
            NeuralNetworkMulticlassTrainer.CheckLabels(validationData, classCount, "validation");
        }
        if (training.EarlyStoppingPatience > 0 && validationData is null)
            throw new ArgumentException("EarlyStoppingPatience needs validation data: set Training.ValidationFraction or pass a validation dataset.", "validation");
        var result = Run(trainData, validationData, seed, classCount, copies, progress, cancellationToken);
        var model = new NeuralNetworkMulticlassModel(result.Network, classCount, classLabels, training.FeatureColumnName, result.History,
            result.Training, Describe(seed), labelColumnName: training.LabelColumnName);
        return new ParallelGapResult(seed, result.Rounds, model);
    }

    /// <summary>The rounds and the fine-tuning on data already read.</summary>
    private (SequentialNetwork Network, IReadOnlyList<TrainingProgress> History, TrainingState Training, IReadOnlyList<ParallelGapRound> Rounds) Run(
        Dataset train, Dataset? validation, int seed, int classCount, CopyRunner copyRunner, IProgress<TrainingProgress>? progress, CancellationToken cancellation)
    {
        var training = _options.Training;
        var pool = _host.Pool;
        var network = GapCopy.Build(_options, classCount, train.FeatureShapeArray, pool, seed);
        var gap = new GapLayers(_options.Gap, network, seed, "P-GaP");
        gap.ApplyInitialMask();
        int partitions = gap.Partitions.Length;
        var (stepEpochs, rounds) = _options.Gap.ResolveSchedule(training.Epochs, 1, ParallelGapOptions.DefaultRounds);
        int stepsPerEpoch = (train.Count + training.BatchSize - 1) / training.BatchSize;
        _host.WriteLog($"P-GaP: {partitions} partitions [{string.Join("; ", gap.Partitions.Select(p => string.Join(", ", p.Select(i => gap.Layers[i].Name))))}], " +
            $"{rounds} rounds of {partitions} copies × {stepEpochs} epochs, then {training.Epochs - rounds * stepEpochs} epochs of fine-tuning; seed {seed}, {_host.Threads} threads.");
        // The fine-tuning loop; it also evaluates the merged model of every round.
        var optimizer = training.Optimizer.Create(network.Parameters, pool);
        var loop = new TrainingLoop(network, new SoftmaxCrossEntropyLoss(), optimizer, training.LearningRateSchedule, training.Optimizer.LearningRate,
            training.BatchSize, training.Epochs, seed, training.Shuffle, training.EarlyStoppingPatience, isClassifier: true,
            batchNormScaleL1: training.BatchNormScaleL1);
        network.EnsureCapacity(Math.Min(training.BatchSize, train.Count));
        var state = GapModelState.Of(network);
        var records = new List<ParallelGapRound>();
        for (int round = 0; round < rounds; round++)
        {
            var clock = Stopwatch.StartNew();
            var copies = copyRunner([.. Enumerable.Range(0, partitions).Select(p => new GapCopyWork(state, p, round, seed, classCount, train.FeatureShapeArray))], train, cancellation);
            var merged = GapCopy.Merge(state, copies);
            long changes = 0;
            for (int p = 0; p < merged.Masks.Length; p++)
                if (merged.Masks[p] is { } after && state.Masks[p] is { } before)
                    for (int i = 0; i < after.Length; i++) if (after[i] != before[i]) changes++;
            state = merged;
            state.LoadInto(network);
            (double Loss, double Accuracy)? score = validation is null ? null : loop.Evaluate(validation);
            var record = new ParallelGapRound(round, changes, score?.Loss, score?.Accuracy, clock.Elapsed.TotalSeconds);
            records.Add(record);
            _host.WriteLog(record.ToString());
        }
        state.LoadInto(network);
        optimizer.ApplyMasks();
        loop.Run(train, validation, progress, _host.WriteLog, cancellation, (long)rounds * stepEpochs * stepsPerEpoch);
        foreach (var layer in gap.Layers) layer.Weight.SparsityNote = $"{_options.Gap.Pattern} (P-GaP)";
        return (network, loop.History, TrainingState.From(optimizer, loop.Step), records);
    }

    private System.Text.Json.Nodes.JsonObject Describe(int seed)
    {
        var description = NetworkTraining.DescribeOptions(_options.Training, seed, nameof(ParallelGap));
        description["sparsity"] = _options.ToString();
        return description;
    }

    private Dataset Read(IDataView data) =>
        DataViewReader.Read(data, _options.Training.FeatureColumnName, _options.Training.LabelColumnName, _options.Training.InputShape);
}
