using Microsoft.ML.Runtime;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// Trains a feed-forward neural network (dense, convolutional, pooling, normalisation layers) for binary
/// classification on the package's managed CPU engine: one output logit, binary cross-entropy on its sigmoid.
/// </summary>
/// <remarks>
/// Create it with <c>mlContext.BinaryClassification.Trainers.NeuralNetwork(...)</c>. It reads a known-size
/// <see cref="float"/> vector features column and a <see cref="bool"/> label column (true for the positive class), as
/// ML.NET's binary trainers do. The trainer appends the output layer (a dense layer of one unit named <c>output</c>) to
/// <see cref="NeuralNetworkTrainerOptions.Layers"/>. Seeds come from the <see cref="MLContext"/> unless
/// <see cref="NeuralNetworkTrainerOptions.Seed"/> is set. The per-epoch validation accuracy counts a positive logit as true.
/// </remarks>
public sealed class NeuralNetworkBinaryTrainer : IEstimator<NeuralNetworkBinaryModel>
{
    /// <summary>
    /// Options of <see cref="NeuralNetworkBinaryTrainer"/>: the fields every neural-network trainer shares
    /// (<see cref="NeuralNetworkTrainerOptions"/>); the label column is a <see cref="bool"/>.
    /// </summary>
    public sealed class Options : NeuralNetworkTrainerOptions
    {
    }

    private readonly Options _options;
    private readonly NetworkTraining _training;

    internal NeuralNetworkBinaryTrainer(IHostEnvironment environment, Options options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _training = new NetworkTraining(new SparsityHost(environment, nameof(NeuralNetworkBinaryTrainer), options.NumberOfThreads),
            options, nameof(NeuralNetworkBinaryTrainer), LabelKind.Boolean);
    }

    /// <summary>Trains on <paramref name="input"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type, or an option is out of range; the message names it.</exception>
    /// <exception cref="InvalidDataException">A feature is NaN or infinite (the message names the row).</exception>
    public NeuralNetworkBinaryModel Fit(IDataView input) => Fit(input, null, null, CancellationToken.None);

    /// <summary>Trains on <paramref name="input"/>, reporting progress after every epoch.</summary>
    /// <param name="input">The training data.</param>
    /// <param name="validation">Validation data for per-epoch metrics and early stopping; when null, <see cref="NeuralNetworkTrainerOptions.ValidationFraction"/> of <paramref name="input"/> is held out.</param>
    /// <param name="progress">Receives a <see cref="TrainingProgress"/> at the end of every epoch.</param>
    /// <param name="cancellationToken">Stops training between batches with <see cref="OperationCanceledException"/>.</param>
    public NeuralNetworkBinaryModel Fit(IDataView input, IDataView? validation, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var (examples, held) = _training.Read(input, validation);
        int positives = examples.Labels.Count(l => l == 1);
        var result = _training.Train(examples, held, 1, new BinaryCrossEntropyLoss(), isClassifier: true, null, null,
            $"{positives:N0} positive", progress, cancellationToken);
        return new NeuralNetworkBinaryModel(result.Network, _options.FeatureColumnName, result.History, result.Training, result.Options);
    }

    /// <summary>The input columns with <c>Score</c>, <c>Probability</c> and <c>PredictedLabel</c> added, as <see cref="Fit(IDataView)"/>'s model gives them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The features or label column is missing or of the wrong kind.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return SchemaShapes.AddBinaryColumns(inputSchema, _options.FeatureColumnName, _options.LabelColumnName);
    }
}
