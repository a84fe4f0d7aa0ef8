using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// What every neural-network trainer does with its <see cref="NeuralNetworkTrainerOptions"/>: read the data, hold out
/// validation examples, build the network (the hidden layers, then a dense output layer), train it with a loss, and
/// describe the options for model files. The trainers differ in their label column, output layer size and loss.
/// </summary>
internal sealed class NetworkTraining(SparsityHost host, NeuralNetworkTrainerOptions options, string trainerName, LabelKind labelKind)
{
    /// <summary>What a run gives: the trained network, its per-epoch history, the optimiser state and the recorded options.</summary>
    public sealed record Result(SequentialNetwork Network, IReadOnlyList<TrainingProgress> History, TrainingState Training, JsonObject Options);

    /// <summary>
    /// Checks the options, then copies the training (and validation) features and labels into the engine's buffers,
    /// one cursor pass each.
    /// </summary>
    public (Dataset Train, Dataset? Validation) Read(IDataView input, IDataView? validation)
    {
        ValidateOptions(options);
        return (Read(input), validation is null ? null : Read(validation));
    }

    private Dataset Read(IDataView data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var dataset = DataViewReader.Read(data, options.FeatureColumnName, options.LabelColumnName, options.InputShape, labelKind);
        if (dataset.SkippedRows > 0)
            host.WriteLog($"Skipped {dataset.SkippedRows} rows whose label '{options.LabelColumnName}' is missing.");
        return dataset;
    }

    /// <summary>
    /// Trains a network with <paramref name="outputs"/> output units (or continues <paramref name="start"/>) on
    /// <paramref name="input"/>, validating on <paramref name="validation"/> or on the held-out
    /// <see cref="NeuralNetworkTrainerOptions.ValidationFraction"/>, whose labels <paramref name="checkValidation"/> checks.
    /// The seed is <see cref="NeuralNetworkTrainerOptions.Seed"/>, or else the context's next one.
    /// </summary>
    public Result Train(Dataset input, Dataset? validation, int outputs, Loss loss, bool isClassifier,
        (SequentialNetwork Network, TrainingState? Training)? start, Action<Dataset>? checkValidation, string describeData,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        int seed = options.Seed ?? host.NextSeed();
        var train = input;
        if (validation is null && options.ValidationFraction > 0)
            (train, validation) = input.Split(options.ValidationFraction, seed);
        if (validation is not null)
        {
            if (validation.FeatureLength != input.FeatureLength)
                throw new ArgumentException($"Validation examples have {validation.FeatureLength} features; training examples have {input.FeatureLength}.", nameof(validation));
            checkValidation?.Invoke(validation);
        }
        if (options.EarlyStoppingPatience > 0 && validation is null)
            throw new ArgumentException("EarlyStoppingPatience needs validation data: set ValidationFraction or pass a validation dataset.", nameof(input));

        var log = host.WriteLog;
        var network = start?.Network.CloneAtActiveLevel(host.Pool, seed) ?? new SequentialNetwork(
            [.. options.Layers, new DenseDefinition(outputs) { Name = "output" }], input.FeatureShapeArray,
            new LayerBuildContext(host.Pool, options.WeightInitializer, seed));
        var optimizer = options.Optimizer.Create(network.Parameters, host.Pool);
        if (start is { } s)
            log(s.Training?.TryRestore(optimizer) == true
                ? $"Continuing from the model's weights and optimiser state ({s.Training.Steps} steps trained)."
                : "Continuing from the model's weights with a fresh optimiser state (the model has none of this optimiser's kind).");
        var sparsity = options.Sparsity?.CreateController(network, optimizer, seed, log);
        var loop = new TrainingLoop(network, loss, optimizer, options.LearningRateSchedule, options.Optimizer.LearningRate,
            options.BatchSize, options.Epochs, seed, options.Shuffle, options.EarlyStoppingPatience, isClassifier, sparsity, options.BatchNormScaleL1);
        log($"Training {network.Parameters.Sum(p => (long)p.Length):N0} parameters on {train.Count:N0} examples, {describeData}, seed {seed}, {host.Threads} threads.");
        loop.Run(train, validation, progress, log, cancellationToken);
        long steps = loop.Step + (start?.Training?.Steps ?? 0);
        return new Result(network, loop.History, TrainingState.From(optimizer, steps), DescribeOptions(options, seed, trainerName));
    }

    /// <summary>The options as recorded in model files.</summary>
    internal static JsonObject DescribeOptions(NeuralNetworkTrainerOptions options, int seed, string trainerName)
    {
        var optimizer = JsonSerializer.SerializeToNode(options.Optimizer, options.Optimizer.GetType(), Serialization.ModelManifest.Json)!.AsObject();
        optimizer["type"] = options.Optimizer.GetType().Name.Replace("OptimizerOptions", "", StringComparison.Ordinal).ToLowerInvariant();
        return new JsonObject
        {
            ["trainer"] = trainerName,
            ["epochs"] = options.Epochs,
            ["batchSize"] = options.BatchSize,
            ["optimizer"] = optimizer,
            ["learningRateSchedule"] = options.LearningRateSchedule.ToString(),
            ["weightInitializer"] = options.WeightInitializer.ToString(),
            ["validationFraction"] = options.ValidationFraction,
            ["earlyStoppingPatience"] = options.EarlyStoppingPatience,
            ["shuffle"] = options.Shuffle,
            ["batchNormScaleL1"] = options.BatchNormScaleL1,
            ["seed"] = seed,
            ["sparsity"] = options.Sparsity?.ToString(),
        };
    }

    internal static void ValidateOptions(NeuralNetworkTrainerOptions o)
    {
        ArgumentException.ThrowIfNullOrEmpty(o.LabelColumnName, nameof(NeuralNetworkTrainerOptions.LabelColumnName));
        ArgumentException.ThrowIfNullOrEmpty(o.FeatureColumnName, nameof(NeuralNetworkTrainerOptions.FeatureColumnName));
        if (o.Layers is null) throw new ArgumentNullException(nameof(NeuralNetworkTrainerOptions.Layers), "Options.Layers must list the hidden layers (it may be empty).");
        if (o.Epochs < 1) throw new ArgumentOutOfRangeException(nameof(NeuralNetworkTrainerOptions.Epochs), o.Epochs, "Epochs must be at least 1.");
        if (o.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(NeuralNetworkTrainerOptions.BatchSize), o.BatchSize, "BatchSize must be positive.");
        if (o.Optimizer is null) throw new ArgumentNullException(nameof(NeuralNetworkTrainerOptions.Optimizer), "Options.Optimizer must be set.");
        if (o.LearningRateSchedule is null) throw new ArgumentNullException(nameof(NeuralNetworkTrainerOptions.LearningRateSchedule), "Options.LearningRateSchedule must be set.");
        o.Optimizer.Validate();
        if (!(o.ValidationFraction >= 0 && o.ValidationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(NeuralNetworkTrainerOptions.ValidationFraction), o.ValidationFraction, "ValidationFraction must be in [0, 1).");
        if (!(o.BatchNormScaleL1 >= 0 && float.IsFinite(o.BatchNormScaleL1)))
            throw new ArgumentOutOfRangeException(nameof(NeuralNetworkTrainerOptions.BatchNormScaleL1), o.BatchNormScaleL1, "BatchNormScaleL1 must be a finite value ≥ 0.");
        if (o.EarlyStoppingPatience < 0)
            throw new ArgumentOutOfRangeException(nameof(NeuralNetworkTrainerOptions.EarlyStoppingPatience), o.EarlyStoppingPatience, "EarlyStoppingPatience must not be negative.");
    }
}
