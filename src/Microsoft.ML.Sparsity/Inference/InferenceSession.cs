using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// One caller's means of prediction: a copy of the model's network (its own parameters' copy and activation and
/// scratch buffers, sized for <see cref="Capacity"/> examples; <see cref="NeuralNetworkMulticlassModel.PredictionNetwork"/>)
/// that shares the model's sparse prediction formats. Not thread-safe; a model or engine pool hands each concurrent caller its own.
/// </summary>
internal sealed class InferenceSession
{
    private readonly SequentialNetwork _network;
    private readonly int _classCount;

    public InferenceSession(SequentialNetwork network, int classCount, int capacity = 1)
    {
        _network = network;
        _network.EnsureCapacity(capacity);
        _classCount = classCount;
        Capacity = capacity;
    }

    /// <summary>The most examples one <see cref="Score"/> call takes.</summary>
    public int Capacity { get; }

    /// <summary>
    /// Scores examples [<paramref name="first"/>, first + <paramref name="count"/>) of <paramref name="features"/>
    /// (count ≤ <see cref="Capacity"/>) into the same rows of <paramref name="probabilities"/> and <paramref name="predicted"/>.
    /// </summary>
    public void Score(float[] features, int first, int count, float[] probabilities, int[] predicted)
    {
        int inputs = _network.InputSize;
        Array.Copy(features, (long)first * inputs, _network.Input, 0, (long)count * inputs);
        float[] logits = _network.Forward(count, training: false);
        for (int b = 0; b < count; b++)
        {
            Span<float> p = probabilities.AsSpan((first + b) * _classCount, _classCount);
            NeuralNetworkMulticlassModel.Softmax(logits.AsSpan(b * _classCount, _classCount), p);
            predicted[first + b] = MostProbable(p);
        }
    }

    /// <summary>Writes the class probabilities of one example into <paramref name="probabilities"/> and returns the most probable class (-1 for NaN scores).</summary>
    public int Predict(ReadOnlySpan<float> features, Span<float> probabilities)
    {
        features.CopyTo(_network.Input);
        float[] logits = _network.Forward(1, training: false);
        NeuralNetworkMulticlassModel.Softmax(logits.AsSpan(0, _classCount), probabilities);
        return MostProbable(probabilities);
    }

    /// <summary>The most probable class, or -1 when the probabilities are NaN (a NaN or infinite feature): no class.</summary>
    private static int MostProbable(ReadOnlySpan<float> probabilities)
    {
        int best = TensorPrimitives.IndexOfMax(probabilities);
        return float.IsNaN(probabilities[best]) ? -1 : best;
    }
}
