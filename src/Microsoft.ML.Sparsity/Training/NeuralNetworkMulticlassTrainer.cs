using Microsoft.ML.Runtime;
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
/// The trainer appends the output layer (a dense layer named <c>output</c>) to <see cref="NeuralNetworkTrainerOptions.Layers"/>.
/// Seeds come from the <see cref="MLContext"/> unless <see cref="NeuralNetworkTrainerOptions.Seed"/> is set.
/// </remarks>
public sealed class NeuralNetworkMulticlassTrainer : IEstimator<NeuralNetworkMulticlassModel>
{
    /// <summary>
    /// Options of <see cref="NeuralNetworkMulticlassTrainer"/>: the fields every neural-network trainer shares
    /// (<see cref="NeuralNetworkTrainerOptions"/>); the label column is a key (e.g. from <c>MapValueToKey</c>).
    /// </summary>
    public sealed class Options : NeuralNetworkTrainerOptions
    {
    }

    private readonly Options _options;
    private readonly NetworkTraining _training;

    internal NeuralNetworkMulticlassTrainer(IHostEnvironment environment, Options options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _training = new NetworkTraining(new SparsityHost(environment, nameof(NeuralNetworkMulticlassTrainer), options.NumberOfThreads),
            options, nameof(NeuralNetworkMulticlassTrainer), LabelKind.Key);
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
    /// <param name="validation">Validation data for per-epoch metrics and early stopping; when null, <see cref="NeuralNetworkTrainerOptions.ValidationFraction"/> of <paramref name="input"/> is held out.</param>
    /// <param name="progress">Receives a <see cref="TrainingProgress"/> at the end of every epoch.</param>
    /// <param name="cancellationToken">Stops training between batches with <see cref="OperationCanceledException"/>.</param>
    public NeuralNetworkMulticlassModel Fit(IDataView input, IDataView? validation, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var (train, held) = _training.Read(input, validation);
        return Train(train, null, held, progress, cancellationToken);
    }

    /// <summary>
    /// Continues training <paramref name="model"/> on <paramref name="input"/> for <see cref="NeuralNetworkTrainerOptions.Epochs"/> more epochs with
    /// this trainer's options: from the model's weights, masks and (when the optimiser is of the same kind) optimiser state.
    /// The layers come from the model; <see cref="NeuralNetworkTrainerOptions.Layers"/> is not used. The learning-rate schedule starts a new run.
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
        var (train, held) = _training.Read(input, validation);
        return Train(train, model, held, progress, cancellationToken);
    }

    /// <summary>Reads the training and validation data into the engine's buffers once, for several runs (a sweep's trials).</summary>
    internal (Dataset Train, Dataset? Validation) Read(IDataView input, IDataView? validation) => _training.Read(input, validation);

    /// <summary>Trains on data <see cref="Read"/> read, reporting progress after every epoch.</summary>
    internal NeuralNetworkMulticlassModel Fit(Dataset input, Dataset? validation, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        NetworkTraining.ValidateOptions(_options);
        return Train(input, null, validation, progress, cancellationToken);
    }

    /// <summary>Trains on examples already in the engine's buffers.</summary>
    internal NeuralNetworkMulticlassModel FitExamples(Dataset input)
    {
        NetworkTraining.ValidateOptions(_options);
        return Train(input, null, null, null, CancellationToken.None);
    }

    private NeuralNetworkMulticlassModel Train(Dataset input, NeuralNetworkMulticlassModel? start, Dataset? validation,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        int classCount = CountClasses(input);
        if (start is not null)
        {
            if (input.FeatureLength != start.Network.InputSize)
                throw new ArgumentOutOfRangeException(nameof(input), $"The model takes {start.Network.InputSize} features per example; the column '{_options.FeatureColumnName}' has {input.FeatureLength}.");
            if (classCount > start.ClassCount)
                throw new ArgumentOutOfRangeException(nameof(input), $"The label column '{_options.LabelColumnName}' has {classCount} key values; the model has {start.ClassCount} classes.");
            if (input.ClassLabels is { } labels && start.ClassLabels is { } trained && !labels.Names.SequenceEqual(trained.Names.Take(labels.Names.Length)))
                throw new ArgumentOutOfRangeException(nameof(input),
                    $"The label column '{_options.LabelColumnName}' has the key values [{string.Join(", ", labels.Names)}]; the model was trained on " +
                    $"[{string.Join(", ", trained.Names)}], in that order. Map the labels with the MapValueToKey transformer fitted on the model's training data.");
            classCount = start.ClassCount;
        }
        var result = _training.Train(input, validation, classCount, new SoftmaxCrossEntropyLoss(), isClassifier: true,
            start is null ? null : (start.Network, start.Training), v => CheckLabels(v, classCount, nameof(validation)),
            $"{classCount} classes", progress, cancellationToken);
        var classLabels = start is not null ? start.ClassLabels : input.ClassLabels;
        return new NeuralNetworkMulticlassModel(result.Network, classCount, classLabels, _options.FeatureColumnName, result.History,
            result.Training, result.Options, labelColumnName: _options.LabelColumnName);
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
