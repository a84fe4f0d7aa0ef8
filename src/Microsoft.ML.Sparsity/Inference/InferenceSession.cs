using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// One caller's means of prediction: a copy of the model's network (its own parameters' copy and activation and
/// scratch buffers, sized for <see cref="Capacity"/> examples; <see cref="NeuralNetworkModel.PredictionNetwork"/>)
/// that shares the model's sparse prediction formats. Not thread-safe; a model or engine pool hands each concurrent caller its own.
/// </summary>
/// <remarks>
/// An example with a NaN or ±∞ feature gets NaN scores and no predicted label (the head's answer to NaN outputs),
/// whichever format a layer has: a sparse format never reads the inputs its pruned weights would multiply, so
/// without the check a non-finite value there would vanish in one format and spread in another, and the batched and
/// single-example paths (which may hold a layer in different formats) would disagree.
/// </remarks>
internal sealed class InferenceSession
{
    private readonly SequentialNetwork _network;
    private readonly OutputHead _head;

    public InferenceSession(SequentialNetwork network, OutputHead head, int capacity = 1)
    {
        _network = network;
        _network.EnsureCapacity(capacity);
        _head = head;
        Capacity = capacity;
    }

    /// <summary>The most examples one <see cref="Score"/> call takes.</summary>
    public int Capacity { get; }

    /// <summary>
    /// Scores examples [<paramref name="first"/>, first + <paramref name="count"/>) of <paramref name="features"/>
    /// (count ≤ <see cref="Capacity"/>) into the same rows of <paramref name="scores"/> (the head's width per row) and <paramref name="predicted"/>.
    /// </summary>
    public void Score(float[] features, int first, int count, float[] scores, int[] predicted)
    {
        int inputs = _network.InputSize, outputs = _head.Outputs, width = _head.Width;
        Span<bool> finite = count <= 256 ? stackalloc bool[count] : new bool[count];
        for (int b = 0; b < count; b++)
            finite[b] = NonFinite.CopyIsFinite(features.AsSpan((first + b) * inputs, inputs), _network.Input.AsSpan(b * inputs, inputs));
        float[] logits = _network.Forward(count, training: false);
        for (int b = 0; b < count; b++)
            predicted[first + b] = Apply(finite[b], logits.AsSpan(b * outputs, outputs), scores.AsSpan((first + b) * width, width));
    }

    /// <summary>Writes the scores of one example into <paramref name="scores"/> and returns its predicted label (-1: none, e.g. for NaN scores).</summary>
    public int Predict(ReadOnlySpan<float> features, Span<float> scores)
    {
        bool finite = NonFinite.CopyIsFinite(features, _network.Input);
        float[] logits = _network.Forward(1, training: false);
        return Apply(finite, logits.AsSpan(0, _head.Outputs), scores);
    }

    /// <summary>The head on one example's network outputs, or on NaN outputs when its features are not all finite (see the remarks).</summary>
    private int Apply(bool finite, Span<float> outputs, Span<float> scores)
    {
        if (!finite)
            outputs.Fill(float.NaN);
        return _head.Apply(outputs, scores);
    }
}
