using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>Multiclass classification: trainers and evaluation (ML.NET's <c>MulticlassClassificationCatalog</c>).</summary>
public sealed class MulticlassClassificationCatalog
{
    internal MulticlassClassificationCatalog(SparsityContext context)
    {
        Context = context;
        Trainers = new MulticlassClassificationTrainers(context);
    }

    internal SparsityContext Context { get; }

    /// <summary>The multiclass trainers.</summary>
    public MulticlassClassificationTrainers Trainers { get; }

    /// <summary>Evaluates a dataset scored by a classifier's <c>Transform</c> against its labels.</summary>
    /// <param name="data">The scored dataset.</param>
    /// <param name="topKPredictionCount">When positive, also computes top-K accuracy for this K.</param>
    public MulticlassClassificationMetrics Evaluate(Dataset data, int topKPredictionCount = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        return MulticlassClassificationMetrics.Compute(data, topKPredictionCount);
    }
}

/// <summary>The multiclass trainers of <see cref="MulticlassClassificationCatalog"/>.</summary>
public sealed class MulticlassClassificationTrainers
{
    private readonly SparsityContext _context;

    internal MulticlassClassificationTrainers(SparsityContext context) => _context = context;

    /// <summary>A neural-network classifier with the given hidden layers and SGD with momentum 0.9.</summary>
    /// <param name="layers">The hidden layers; null means LeNet-300-100's (<see cref="Layers.LeNet300100"/>).</param>
    /// <param name="epochs">Passes over the training data.</param>
    /// <param name="batchSize">Examples per step.</param>
    /// <param name="learningRate">SGD's learning rate.</param>
    public NeuralNetworkMulticlassTrainer NeuralNetwork(IEnumerable<LayerDefinition>? layers = null, int epochs = 10, int batchSize = 64, float learningRate = 0.01f) =>
        NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = layers?.ToList() ?? [.. Layers.LeNet300100()],
            Epochs = epochs,
            BatchSize = batchSize,
            Optimizer = new SgdOptimizerOptions { LearningRate = learningRate },
        });

    /// <summary>A neural-network classifier configured by <paramref name="options"/>.</summary>
    public NeuralNetworkMulticlassTrainer NeuralNetwork(NeuralNetworkMulticlassTrainer.Options options) => new(_context, options);
}
