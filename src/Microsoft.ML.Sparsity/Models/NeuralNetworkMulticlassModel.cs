using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// A trained multiclass neural network. <see cref="Transform"/> adds class probabilities (scores) and predicted
/// labels to a dataset, for <see cref="MulticlassClassificationCatalog.Evaluate"/>; <see cref="Predict"/> scores one example.
/// </summary>
/// <remarks>Prediction is serialised by a lock: one model serves one caller at a time.</remarks>
public sealed class NeuralNetworkMulticlassModel : ITransformer
{
    private const int InferenceBatch = 256;
    private readonly SequentialNetwork _network;
    private readonly object _lock = new();
    private readonly string[]? _classNames;

    internal NeuralNetworkMulticlassModel(SequentialNetwork network, int classCount, string[]? classNames, IReadOnlyList<TrainingProgress> history,
        TrainingState? training = null, System.Text.Json.Nodes.JsonObject? options = null)
    {
        _network = network;
        ClassCount = classCount;
        _classNames = classNames;
        TrainingHistory = history;
        Training = training;
        Options = options;
        Layers = network.Layers.Select(l => new LayerSummary(l)).ToArray();
    }

    /// <summary>The number of classes.</summary>
    public int ClassCount { get; }

    /// <summary>The class names the training data carried, if any.</summary>
    public IReadOnlyList<string>? ClassNames => _classNames;

    /// <summary>The shape of one example's features the model expects.</summary>
    public IReadOnlyList<int> InputShape => _network.InputShape;

    /// <summary>The layers with their parameter counts and costs.</summary>
    public IReadOnlyList<LayerSummary> Layers { get; }

    /// <summary>The total number of trainable values.</summary>
    public long ParameterCount => Layers.Sum(l => l.ParameterCount);

    /// <summary>The progress reported at the end of every training epoch.</summary>
    public IReadOnlyList<TrainingProgress> TrainingHistory { get; }

    internal SequentialNetwork Network => _network;

    /// <summary>The optimiser state for continuing training; null after operations that change the weights outside training (pruning).</summary>
    internal TrainingState? Training { get; }

    /// <summary>The trainer options the model was trained with, as recorded in model files (informational).</summary>
    internal System.Text.Json.Nodes.JsonObject? Options { get; }

    /// <summary>Scores every row: the result carries class probabilities and predicted labels.</summary>
    public Dataset Transform(Dataset input)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckFeatureLength(input.FeatureLength, nameof(input));
        var scores = new float[(long)input.Count * ClassCount];
        var predicted = new int[input.Count];
        lock (_lock)
        {
            _network.EnsureCapacity(Math.Min(InferenceBatch, input.Count));
            int capacity = _network.Capacity;
            for (int start = 0; start < input.Count; start += capacity)
            {
                int batch = Math.Min(capacity, input.Count - start);
                Array.Copy(input.Features, (long)start * input.FeatureLength, _network.Input, 0, (long)batch * input.FeatureLength);
                var logits = _network.Forward(batch, training: false);
                for (int b = 0; b < batch; b++)
                {
                    var p = scores.AsSpan((start + b) * ClassCount, ClassCount);
                    Softmax(logits.AsSpan(b * ClassCount, ClassCount), p);
                    predicted[start + b] = TensorPrimitives.IndexOfMax(p);
                }
            }
        }
        return input.WithScores(scores, ClassCount, predicted);
    }

    /// <summary>Scores one example: writes the class probabilities into <paramref name="scores"/> and returns the predicted label.</summary>
    /// <param name="features">The example's features (<see cref="InputShape"/> values).</param>
    /// <param name="scores">Receives <see cref="ClassCount"/> probabilities.</param>
    public int Predict(ReadOnlySpan<float> features, Span<float> scores)
    {
        CheckFeatureLength(features.Length, nameof(features));
        if (scores.Length < ClassCount)
            throw new ArgumentException($"The scores span has {scores.Length} elements; {ClassCount} are needed.", nameof(scores));
        lock (_lock)
        {
            _network.EnsureCapacity(1);
            features.CopyTo(_network.Input);
            var logits = _network.Forward(1, training: false);
            Softmax(logits.AsSpan(0, ClassCount), scores[..ClassCount]);
            return TensorPrimitives.IndexOfMax(scores[..ClassCount]);
        }
    }

    /// <summary>The sparsity of the weights, per layer and in total.</summary>
    public Sparsity.SparsityReport GetSparsityReport()
    {
        lock (_lock) return Sparsity.SparsityReport.For(_network);
    }

    /// <summary>The same model with other weights (e.g. pruned); the optimiser state no longer applies and is dropped.</summary>
    internal NeuralNetworkMulticlassModel WithNetwork(SequentialNetwork network) => new(network, ClassCount, _classNames, TrainingHistory, null, Options);

    /// <summary>
    /// Class probabilities from logits, computed as exp(z − max z) / Σ: without the shift, a confident model's logits
    /// above ~88 overflow exp to ∞ and the probabilities become NaN.
    /// </summary>
    private static void Softmax(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        TensorPrimitives.Subtract(logits, TensorPrimitives.Max(logits), probabilities);
        TensorPrimitives.Exp(probabilities, probabilities);
        TensorPrimitives.Divide(probabilities, TensorPrimitives.Sum(probabilities), probabilities);
    }

    /// <summary>A fixed-width table of the layers, their shapes, parameter counts and multiply-adds.</summary>
    public string Summary() => LayerSummary.FormatTable(Layers);

    private void CheckFeatureLength(int length, string argument)
    {
        if (length != _network.InputSize)
            throw new ArgumentException(
                $"The model expects {_network.InputSize} feature values per example (shape {Engine.Shape.Format(_network.InputShape)}); got {length}.", argument);
    }
}
