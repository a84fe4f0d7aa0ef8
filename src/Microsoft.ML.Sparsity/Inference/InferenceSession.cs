using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// One caller's means of predicting single examples: a copy of the model's network (its own activation and scratch
/// buffers, sized for one example) that shares the model's prediction-format weights and runs on the calling thread
/// only, so a prediction's latency never waits on another core. Not thread-safe; a model or engine pool hands each
/// concurrent caller its own.
/// </summary>
internal sealed class InferenceSession
{
    private readonly SequentialNetwork _network;
    private readonly int _classCount;

    public InferenceSession(SequentialNetwork model, int classCount)
    {
        _network = model.Clone(Engine.WorkerPool.Inline);
        WeightFormatRule.Share(model, _network);
        _network.EnsureCapacity(1);
        _classCount = classCount;
    }

    /// <summary>Writes the class probabilities of one example into <paramref name="probabilities"/> and returns the most probable class.</summary>
    public int Predict(ReadOnlySpan<float> features, Span<float> probabilities)
    {
        features.CopyTo(_network.Input);
        float[] logits = _network.Forward(1, training: false);
        NeuralNetworkMulticlassModel.Softmax(logits.AsSpan(0, _classCount), probabilities);
        return TensorPrimitives.IndexOfMax(probabilities);
    }
}
