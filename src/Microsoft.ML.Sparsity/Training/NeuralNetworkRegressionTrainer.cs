using Microsoft.ML.Runtime;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// Trains a feed-forward neural network (dense, convolutional, pooling, normalisation layers) for regression on the
/// package's managed CPU engine: one output, mean squared error.
/// </summary>
/// <remarks>
/// Create it with <c>mlContext.Regression.Trainers.NeuralNetwork(...)</c>. It reads a known-size
/// <see cref="float"/> vector features column and a <see cref="float"/> label column, as ML.NET's regression trainers
/// do; rows whose label is NaN are skipped. Scale the label to a few units (e.g. <c>NormalizeMeanVariance</c> on it) when
/// its values are large: the loss and its gradients grow with the label's square. The trainer appends the output layer (a dense layer of one unit named <c>output</c>) to
/// <see cref="NeuralNetworkTrainerOptions.Layers"/>. Seeds come from the <see cref="MLContext"/> unless
/// <see cref="NeuralNetworkTrainerOptions.Seed"/> is set. Progress reports carry the validation loss (the mean squared error) and no accuracy.
/// </remarks>
public sealed class NeuralNetworkRegressionTrainer : IEstimator<NeuralNetworkRegressionModel>
{
    /// <summary>
    /// Options of <see cref="NeuralNetworkRegressionTrainer"/>: the fields every neural-network trainer shares
    /// (<see cref="NeuralNetworkTrainerOptions"/>); the label column is a <see cref="float"/>.
    /// </summary>
    public sealed class Options : NeuralNetworkTrainerOptions
    {
    }

    private readonly Options _options;
    private readonly NetworkTraining _training;

    internal NeuralNetworkRegressionTrainer(IHostEnvironment environment, Options options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _training = new NetworkTraining(new SparsityHost(environment, nameof(NeuralNetworkRegressionTrainer), options.NumberOfThreads),
            options, nameof(NeuralNetworkRegressionTrainer), LabelKind.Single);
    }

    /// <summary>Trains on <paramref name="input"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type, or an option is out of range; the message names it.</exception>
    /// <exception cref="InvalidDataException">A feature is NaN or infinite or a label infinite (the message names the row), or every label is NaN.</exception>
    public NeuralNetworkRegressionModel Fit(IDataView input) => Fit(input, null, null, CancellationToken.None);

    /// <summary>Trains on <paramref name="input"/>, reporting progress after every epoch.</summary>
    /// <param name="input">The training data.</param>
    /// <param name="validation">Validation data for per-epoch metrics and early stopping; when null, <see cref="NeuralNetworkTrainerOptions.ValidationFraction"/> of <paramref name="input"/> is held out.</param>
    /// <param name="progress">Receives a <see cref="TrainingProgress"/> at the end of every epoch.</param>
    /// <param name="cancellationToken">Stops training between batches with <see cref="OperationCanceledException"/>.</param>
    public NeuralNetworkRegressionModel Fit(IDataView input, IDataView? validation, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var (examples, held) = _training.Read(input, validation);
        var result = _training.Train(examples, held, 1, new MeanSquaredErrorLoss(), isClassifier: false, null, null,
            "regression", progress, cancellationToken);
        return new NeuralNetworkRegressionModel(result.Network, _options.FeatureColumnName, result.History, result.Training, result.Options);
    }

    /// <summary>The input columns with <c>Score</c> added, as <see cref="Fit(IDataView)"/>'s model gives them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The features or label column is missing or of the wrong kind.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return SchemaShapes.AddRegressionColumns(inputSchema, _options.FeatureColumnName, _options.LabelColumnName);
    }
}
