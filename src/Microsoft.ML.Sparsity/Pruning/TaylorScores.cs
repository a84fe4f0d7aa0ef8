using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.Pruning;

/// <summary>Σ_b |w · ∂L_b/∂w| over batches of data, for the Taylor criterion outside training. The weights are not changed.</summary>
internal static class TaylorScores
{
    private const int BatchSize = 64;

    /// <summary>Adds |w · g| of the gradients now in place to <paramref name="sums"/> (one array per layer).</summary>
    public static void AddCurrent(IReadOnlyList<PrunableLayer> layers, float[][] sums)
    {
        for (int l = 0; l < layers.Count; l++)
        {
            var w = layers[l].Weight;
            var sum = sums[l];
            for (int i = 0; i < sum.Length; i++) sum[i] += MathF.Abs(w.Value[i] * w.Gradient[i]);
        }
    }

    public static float[][] Accumulate(SequentialNetwork network, IReadOnlyList<PrunableLayer> layers, Dataset data, int batches)
    {
        if (data.FeatureLength != network.InputSize)
            throw new ArgumentException($"The data has {data.FeatureLength} features per example; the model expects {network.InputSize}.", nameof(data));
        var sums = layers.Select(l => new float[l.Count]).ToArray();
        var running = network.Layers.OfType<BatchNormLayer>().Select(b => (b, (float[])b.RunningMean.Clone(), (float[])b.RunningVariance.Clone())).ToArray();
        network.EnsureCapacity(BatchSize);
        var labels = new float[BatchSize];
        var loss = new SoftmaxCrossEntropyLoss();
        for (int b = 0, start = 0; b < batches && start < data.Count; b++, start += BatchSize)
        {
            int n = Math.Min(BatchSize, data.Count - start);
            Array.Copy(data.Features, (long)start * data.FeatureLength, network.Input, 0, (long)n * data.FeatureLength);
            Array.Copy(data.Labels, start, labels, 0, n);
            var output = network.Forward(n, training: true);
            loss.Compute(output, labels, n, network.OutputSize, network.OutputGradient);
            network.Backward(n);
            AddCurrent(layers, sums);
        }
        // Training-mode forward passes moved the batch-norm running statistics; put them back.
        foreach (var (layer, mean, variance) in running)
        {
            mean.CopyTo(layer.RunningMean, 0);
            variance.CopyTo(layer.RunningVariance, 0);
        }
        return sums;
    }
}
