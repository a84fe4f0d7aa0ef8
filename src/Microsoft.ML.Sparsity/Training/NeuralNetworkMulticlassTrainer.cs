using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// Trains a feed-forward neural network (dense, convolutional, pooling, normalisation layers) for multiclass
/// classification with softmax cross-entropy, on the package's managed CPU engine.
/// </summary>
/// <remarks>
/// Create it with <c>context.MulticlassClassification.Trainers.NeuralNetwork(...)</c>. The trainer appends the output
/// layer (a dense layer named <c>output</c> with one unit per class) to <see cref="Options.Layers"/>.
/// Labels must be class indices 0 … K−1, where K is the number of class names the data carries, or else the largest label + 1.
/// </remarks>
public sealed class NeuralNetworkMulticlassTrainer : IEstimator<NeuralNetworkMulticlassModel>
{
    /// <summary>Options of <see cref="NeuralNetworkMulticlassTrainer"/>; every field has a documented default.</summary>
    public sealed class Options
    {
        /// <summary>The hidden layers, in order; the output layer is added by the trainer. Default: LeNet-300-100's hidden layers.</summary>
        public IList<LayerDefinition> Layers = Network.Layers.LeNet300100();

        /// <summary>Passes over the training data. Default 10.</summary>
        public int Epochs = 10;

        /// <summary>Examples per optimiser step. Default 64.</summary>
        public int BatchSize = 64;

        /// <summary>The optimiser. Default: SGD with learning rate 0.01 and momentum 0.9.</summary>
        public OptimizerOptions Optimizer = new SgdOptimizerOptions();

        /// <summary>How the learning rate changes over the steps. Default: constant.</summary>
        public LearningRateSchedule LearningRateSchedule = LearningRateSchedule.Constant();

        /// <summary>The weight initialiser. Default: Glorot uniform.</summary>
        public WeightInitializer WeightInitializer = WeightInitializer.GlorotUniform;

        /// <summary>The fraction of the training data held out (seeded) to report validation metrics each epoch, in [0, 1). Default 0.</summary>
        public float ValidationFraction;

        /// <summary>Stop when the validation loss has not improved for this many epochs, and keep the best weights (0 = never stop early). Needs validation data. Default 0.</summary>
        public int EarlyStoppingPatience;

        /// <summary>Shuffle the examples every epoch (seeded). Default true.</summary>
        public bool Shuffle = true;

        /// <summary>
        /// How the network is made sparse while training, e.g. <c>context.Sparsity.GradualMagnitudePruning(0.9)</c> or a
        /// <see cref="Pruning.PruningOptions"/>; null (default) trains a dense network.
        /// </summary>
        public Sparsity.SparsityMethod? Sparsity;

        /// <summary>The seed of initialisation, shuffling and dropout; <see langword="null"/> draws one from the context. Default null.</summary>
        public int? Seed;
    }

    private readonly SparsityContext _context;
    private readonly Options _options;

    internal NeuralNetworkMulticlassTrainer(SparsityContext context, Options options)
    {
        _context = context;
        _options = options ?? throw new ArgumentNullException(nameof(options));
    }

    /// <summary>Trains on <paramref name="input"/>.</summary>
    public NeuralNetworkMulticlassModel Fit(Dataset input) => Fit(input, null, null, CancellationToken.None);

    /// <summary>Trains on <paramref name="input"/>, reporting progress after every epoch.</summary>
    /// <param name="input">The training data.</param>
    /// <param name="validation">Validation data for per-epoch metrics and early stopping; when null, <see cref="Options.ValidationFraction"/> of <paramref name="input"/> is held out.</param>
    /// <param name="progress">Receives a <see cref="TrainingProgress"/> at the end of every epoch.</param>
    /// <param name="cancellationToken">Stops training between batches with <see cref="OperationCanceledException"/>.</param>
    public NeuralNetworkMulticlassModel Fit(Dataset input, Dataset? validation, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) => Train(input, null, validation, progress, cancellationToken);

    /// <summary>
    /// Continues training <paramref name="model"/> on <paramref name="input"/> for <see cref="Options.Epochs"/> more epochs with
    /// this trainer's options: from the model's weights, masks and (when the optimiser is of the same kind) optimiser state.
    /// The layers come from the model; <see cref="Options.Layers"/> is not used. The learning-rate schedule starts a new run.
    /// Pruned weights stay pruned (their masks come along), which makes this the fine-tuning step after
    /// <see cref="Sparsity.SparsityCatalog.Prune"/>. <paramref name="model"/> itself is not changed.
    /// </summary>
    /// <param name="input">The training data.</param>
    /// <param name="model">The model to continue from.</param>
    /// <param name="validation">Validation data, as in <see cref="Fit(Dataset, Dataset, IProgress{TrainingProgress}, CancellationToken)"/>.</param>
    /// <param name="progress">Receives a <see cref="TrainingProgress"/> at the end of every epoch.</param>
    /// <param name="cancellationToken">Stops training between batches.</param>
    public NeuralNetworkMulticlassModel Fit(Dataset input, NeuralNetworkMulticlassModel model, Dataset? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Train(input, model, validation, progress, cancellationToken);
    }

    private NeuralNetworkMulticlassModel Train(Dataset input, NeuralNetworkMulticlassModel? start, Dataset? validation,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ValidateOptions(_options);
        int seed = _options.Seed ?? _context.NextSeed();
        int classCount = CountClasses(input);
        if (start is not null)
        {
            if (input.FeatureLength != start.Network.InputSize)
                throw new ArgumentException($"The model takes {start.Network.InputSize} features per example; the data has {input.FeatureLength}.", nameof(input));
            if (classCount > start.ClassCount)
                throw new ArgumentException($"The data has labels up to {classCount - 1}; the model has {start.ClassCount} classes.", nameof(input));
            classCount = start.ClassCount;
        }
        var train = input;
        if (validation is null && _options.ValidationFraction > 0)
        {
            var split = _context.Data.TrainTestSplit(input, _options.ValidationFraction, seed);
            (train, validation) = (split.TrainSet, split.TestSet);
        }
        if (validation is not null)
        {
            if (validation.FeatureLength != input.FeatureLength)
                throw new ArgumentException($"Validation examples have {validation.FeatureLength} features; training examples have {input.FeatureLength}.", nameof(validation));
            CheckLabels(validation, classCount, nameof(validation));
        }
        if (_options.EarlyStoppingPatience > 0 && validation is null)
            throw new ArgumentException("EarlyStoppingPatience needs validation data: set ValidationFraction or pass a validation dataset.", nameof(input));

        var log = (string message) => _context.WriteLog(nameof(NeuralNetworkMulticlassTrainer), message);
        var network = start?.Network.Clone(_context.Pool, seed) ?? new SequentialNetwork(
            [.. _options.Layers, new DenseDefinition(classCount) { Name = "output" }], input.FeatureShapeArray,
            new LayerBuildContext(_context.Pool, _options.WeightInitializer, seed));
        var optimizer = _options.Optimizer.Create(network.Parameters, _context.Pool);
        if (start is not null)
            log(start.Training?.TryRestore(optimizer) == true
                ? $"Continuing from the model's weights and optimiser state ({start.Training.Steps} steps trained)."
                : "Continuing from the model's weights with a fresh optimiser state (the model has none of this optimiser's kind).");
        var sparsity = _options.Sparsity?.CreateController(network, optimizer, seed, log);
        var loop = new TrainingLoop(network, new SoftmaxCrossEntropyLoss(), optimizer, _options.LearningRateSchedule, _options.Optimizer.LearningRate,
            _options.BatchSize, _options.Epochs, seed, _options.Shuffle, _options.EarlyStoppingPatience, isClassifier: true, sparsity);
        _context.WriteLog(nameof(NeuralNetworkMulticlassTrainer),
            $"Training {network.Parameters.Sum(p => (long)p.Length):N0} parameters on {train.Count:N0} examples, {classCount} classes, seed {seed}, {_context.Threads} threads.");
        loop.Run(train, validation, progress, log, cancellationToken);
        var classNames = start is not null ? start.ClassNames?.ToArray() : input.ClassNames?.ToArray();
        long steps = loop.Step + (start?.Training?.Steps ?? 0);
        return new NeuralNetworkMulticlassModel(network, classCount, classNames, loop.History, TrainingState.From(optimizer, steps), DescribeOptions(seed));
    }

    /// <summary>The options as recorded in model files.</summary>
    internal JsonObject DescribeOptions(int seed)
    {
        var optimizer = JsonSerializer.SerializeToNode(_options.Optimizer, _options.Optimizer.GetType(), Serialization.ModelManifest.Json)!.AsObject();
        optimizer["type"] = _options.Optimizer.GetType().Name.Replace("OptimizerOptions", "", StringComparison.Ordinal).ToLowerInvariant();
        return new JsonObject
        {
            ["trainer"] = nameof(NeuralNetworkMulticlassTrainer),
            ["epochs"] = _options.Epochs,
            ["batchSize"] = _options.BatchSize,
            ["optimizer"] = optimizer,
            ["learningRateSchedule"] = _options.LearningRateSchedule.ToString(),
            ["weightInitializer"] = _options.WeightInitializer.ToString(),
            ["validationFraction"] = _options.ValidationFraction,
            ["earlyStoppingPatience"] = _options.EarlyStoppingPatience,
            ["shuffle"] = _options.Shuffle,
            ["seed"] = seed,
            ["sparsity"] = _options.Sparsity?.ToString(),
        };
    }

    internal static void ValidateOptions(Options o)
    {
        if (o.Layers is null) throw new ArgumentNullException(nameof(Options.Layers), "Options.Layers must list the hidden layers (it may be empty).");
        if (o.Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Options.Epochs), o.Epochs, "Epochs must be at least 1.");
        if (o.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(Options.BatchSize), o.BatchSize, "BatchSize must be positive.");
        if (o.Optimizer is null) throw new ArgumentNullException(nameof(Options.Optimizer), "Options.Optimizer must be set.");
        if (o.LearningRateSchedule is null) throw new ArgumentNullException(nameof(Options.LearningRateSchedule), "Options.LearningRateSchedule must be set.");
        o.Optimizer.Validate();
        if (!(o.ValidationFraction >= 0 && o.ValidationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(Options.ValidationFraction), o.ValidationFraction, "ValidationFraction must be in [0, 1).");
        if (o.EarlyStoppingPatience < 0)
            throw new ArgumentOutOfRangeException(nameof(Options.EarlyStoppingPatience), o.EarlyStoppingPatience, "EarlyStoppingPatience must not be negative.");
    }

    internal static int CountClasses(Dataset data)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(data.Labels);
        int classCount = data.ClassNames?.Count ?? (int)max + 1;
        CheckLabels(data, classCount, "input");
        if (classCount < 2) throw new ArgumentException($"Multiclass training needs at least 2 classes; the labels give {classCount}.", "input");
        return classCount;
    }

    internal static void CheckLabels(Dataset data, int classCount, string argument)
    {
        for (int i = 0; i < data.Count; i++)
        {
            float label = data.Labels[i];
            if (label < 0 || label >= classCount || label != MathF.Floor(label))
                throw new ArgumentException($"Row {i}: the label {label} is not a class index in [0, {classCount}).", argument);
        }
    }
}
