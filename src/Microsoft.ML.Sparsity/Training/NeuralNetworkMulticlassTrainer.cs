using Microsoft.ML.Runtime;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// Trains a feed-forward neural network (dense, convolutional, pooling, normalisation layers) for multiclass
/// classification with softmax cross-entropy, on the package's managed CPU engine.
/// </summary>
/// <remarks>
/// Create it with <c>mlContext.MulticlassClassification.Trainers.NeuralNetwork(...)</c>. It reads a known-size
/// <see cref="float"/> vector features column and a key-typed label column (add <c>MapValueToKey</c> in front for
/// other labels); the key's values are the classes, one output unit each, and rows whose key is missing are skipped.
/// The trainer appends the output layer (a dense layer named <c>output</c>) to <see cref="Options.Layers"/>.
/// Seeds come from the <see cref="MLContext"/> unless <see cref="Options.Seed"/> is set.
/// </remarks>
public sealed class NeuralNetworkMulticlassTrainer : IEstimator<NeuralNetworkMulticlassModel>
{
    /// <summary>Options of <see cref="NeuralNetworkMulticlassTrainer"/>; every field has a documented default.</summary>
    public sealed class Options
    {
        /// <summary>The label column: a key (e.g. from <c>MapValueToKey</c>). Default "Label".</summary>
        public string LabelColumnName = "Label";

        /// <summary>The features column: a known-size vector of <see cref="float"/>. Default "Features".</summary>
        public string FeatureColumnName = "Features";

        /// <summary>
        /// The shape of one example's features, e.g. <c>[28, 28, 1]</c> (height, width, channels) for convolution layers;
        /// null (default) takes the features column's dimensions (a flat vector unless the column has several).
        /// </summary>
        public int[]? InputShape;

        /// <summary>The engine's thread count; null (default) uses every processor. Results do not depend on it.</summary>
        public int? NumberOfThreads;

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

        /// <summary>The seed of initialisation, shuffling and dropout; <see langword="null"/> draws one from the <see cref="MLContext"/>. Default null.</summary>
        public int? Seed;
    }

    private readonly SparsityHost _host;
    private readonly Options _options;

    internal NeuralNetworkMulticlassTrainer(IHostEnvironment environment, Options options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _host = new SparsityHost(environment, nameof(NeuralNetworkMulticlassTrainer), options.NumberOfThreads);
    }

    /// <summary>Trains on <paramref name="input"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type, or an option is out of range; the message names it.</exception>
    /// <exception cref="InvalidDataException">A feature is NaN or infinite (the message names the row), or no row has a label.</exception>
    public NeuralNetworkMulticlassModel Fit(IDataView input) => Fit(input, null, null, CancellationToken.None);

    /// <summary>The input columns with <c>Score</c> and <c>PredictedLabel</c> added, as <see cref="Fit(IDataView)"/>'s model gives them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The features or label column is missing or of the wrong kind.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return SchemaShapes.AddScoreColumns(inputSchema, _options.FeatureColumnName, _options.LabelColumnName);
    }

    /// <summary>Trains on <paramref name="input"/>, reporting progress after every epoch.</summary>
    /// <param name="input">The training data.</param>
    /// <param name="validation">Validation data for per-epoch metrics and early stopping; when null, <see cref="Options.ValidationFraction"/> of <paramref name="input"/> is held out.</param>
    /// <param name="progress">Receives a <see cref="TrainingProgress"/> at the end of every epoch.</param>
    /// <param name="cancellationToken">Stops training between batches with <see cref="OperationCanceledException"/>.</param>
    public NeuralNetworkMulticlassModel Fit(IDataView input, IDataView? validation, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        Train(Read(input), null, validation is null ? null : Read(validation), progress, cancellationToken);

    /// <summary>
    /// Continues training <paramref name="model"/> on <paramref name="input"/> for <see cref="Options.Epochs"/> more epochs with
    /// this trainer's options: from the model's weights, masks and (when the optimiser is of the same kind) optimiser state.
    /// The layers come from the model; <see cref="Options.Layers"/> is not used. The learning-rate schedule starts a new run.
    /// Pruned weights stay pruned (their masks come along), which makes this the fine-tuning step after
    /// <see cref="SparsityCatalog.Prune"/>. <paramref name="model"/> itself is not changed.
    /// </summary>
    /// <param name="input">The training data.</param>
    /// <param name="model">The model to continue from.</param>
    /// <param name="validation">Validation data, as in <see cref="Fit(IDataView, IDataView, IProgress{TrainingProgress}, CancellationToken)"/>.</param>
    /// <param name="progress">Receives a <see cref="TrainingProgress"/> at the end of every epoch.</param>
    /// <param name="cancellationToken">Stops training between batches.</param>
    public NeuralNetworkMulticlassModel Fit(IDataView input, NeuralNetworkMulticlassModel model, IDataView? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Train(Read(input), model, validation is null ? null : Read(validation), progress, cancellationToken);
    }

    /// <summary>Trains on examples already in the engine's buffers.</summary>
    internal NeuralNetworkMulticlassModel FitExamples(Dataset input) => Train(input, null, null, null, CancellationToken.None);

    /// <summary>Copies the features and labels into the engine's buffers (one cursor pass).</summary>
    private Dataset Read(IDataView data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var dataset = DataViewReader.Read(data, _options.FeatureColumnName, _options.LabelColumnName, _options.InputShape);
        if (dataset.SkippedRows > 0)
            _host.WriteLog($"Skipped {dataset.SkippedRows} rows whose label '{_options.LabelColumnName}' is missing.");
        return dataset;
    }

    private NeuralNetworkMulticlassModel Train(Dataset input, NeuralNetworkMulticlassModel? start, Dataset? validation,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ValidateOptions(_options);
        int seed = _options.Seed ?? _host.NextSeed();
        int classCount = CountClasses(input);
        if (start is not null)
        {
            if (input.FeatureLength != start.Network.InputSize)
                throw new ArgumentOutOfRangeException(nameof(input), $"The model takes {start.Network.InputSize} features per example; the column '{_options.FeatureColumnName}' has {input.FeatureLength}.");
            if (classCount > start.ClassCount)
                throw new ArgumentOutOfRangeException(nameof(input), $"The label column '{_options.LabelColumnName}' has {classCount} key values; the model has {start.ClassCount} classes.");
            classCount = start.ClassCount;
        }
        var train = input;
        if (validation is null && _options.ValidationFraction > 0)
        {
            (train, validation) = input.Split(_options.ValidationFraction, seed);
        }
        if (validation is not null)
        {
            if (validation.FeatureLength != input.FeatureLength)
                throw new ArgumentException($"Validation examples have {validation.FeatureLength} features; training examples have {input.FeatureLength}.", nameof(validation));
            CheckLabels(validation, classCount, nameof(validation));
        }
        if (_options.EarlyStoppingPatience > 0 && validation is null)
            throw new ArgumentException("EarlyStoppingPatience needs validation data: set ValidationFraction or pass a validation dataset.", nameof(input));

        var log = _host.WriteLog;
        var network = start?.Network.Clone(_host.Pool, seed) ?? new SequentialNetwork(
            [.. _options.Layers, new DenseDefinition(classCount) { Name = "output" }], input.FeatureShapeArray,
            new LayerBuildContext(_host.Pool, _options.WeightInitializer, seed));
        var optimizer = _options.Optimizer.Create(network.Parameters, _host.Pool);
        if (start is not null)
            log(start.Training?.TryRestore(optimizer) == true
                ? $"Continuing from the model's weights and optimiser state ({start.Training.Steps} steps trained)."
                : "Continuing from the model's weights with a fresh optimiser state (the model has none of this optimiser's kind).");
        var sparsity = _options.Sparsity?.CreateController(network, optimizer, seed, log);
        var loop = new TrainingLoop(network, new SoftmaxCrossEntropyLoss(), optimizer, _options.LearningRateSchedule, _options.Optimizer.LearningRate,
            _options.BatchSize, _options.Epochs, seed, _options.Shuffle, _options.EarlyStoppingPatience, isClassifier: true, sparsity);
        log(
            $"Training {network.Parameters.Sum(p => (long)p.Length):N0} parameters on {train.Count:N0} examples, {classCount} classes, seed {seed}, {_host.Threads} threads.");
        loop.Run(train, validation, progress, log, cancellationToken);
        var classLabels = start is not null ? start.ClassLabels : input.ClassLabels;
        long steps = loop.Step + (start?.Training?.Steps ?? 0);
        return new NeuralNetworkMulticlassModel(network, classCount, classLabels, _options.FeatureColumnName, loop.History,
            TrainingState.From(optimizer, steps), DescribeOptions(_options, seed));
    }

    /// <summary>The options as recorded in model files.</summary>
    internal static JsonObject DescribeOptions(Options options, int seed)
    {
        var optimizer = JsonSerializer.SerializeToNode(options.Optimizer, options.Optimizer.GetType(), Serialization.ModelManifest.Json)!.AsObject();
        optimizer["type"] = options.Optimizer.GetType().Name.Replace("OptimizerOptions", "", StringComparison.Ordinal).ToLowerInvariant();
        return new JsonObject
        {
            ["trainer"] = nameof(NeuralNetworkMulticlassTrainer),
            ["epochs"] = options.Epochs,
            ["batchSize"] = options.BatchSize,
            ["optimizer"] = optimizer,
            ["learningRateSchedule"] = options.LearningRateSchedule.ToString(),
            ["weightInitializer"] = options.WeightInitializer.ToString(),
            ["validationFraction"] = options.ValidationFraction,
            ["earlyStoppingPatience"] = options.EarlyStoppingPatience,
            ["shuffle"] = options.Shuffle,
            ["seed"] = seed,
            ["sparsity"] = options.Sparsity?.ToString(),
        };
    }

    internal static void ValidateOptions(Options o)
    {
        ArgumentException.ThrowIfNullOrEmpty(o.LabelColumnName, nameof(Options.LabelColumnName));
        ArgumentException.ThrowIfNullOrEmpty(o.FeatureColumnName, nameof(Options.FeatureColumnName));
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
        int classCount = data.ClassCount > 0 ? data.ClassCount : (int)max + 1;
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
