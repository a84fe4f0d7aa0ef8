using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Network;

public class Conv2dInferenceTests
{
    [Theory]
    [InlineData(1, 3, 1, 1, 150)]    // tiny patches: 120 examples per inference chunk, then 30
    [InlineData(32, 3, 1, 1, 7)]     // 14×14×32 → 64: about two examples per chunk, and a partial last chunk
    [InlineData(5, 5, 2, 2, 9)]      // one chunk
    public void InferenceInCacheSizedChunksEqualsTheWholeBatchForward(int channels, int kernel, int stride, int padding, int batch)
    {
        using var pool = new WorkerPool(2);
        int side = channels == 32 ? 14 : 11;
        var layer = new Conv2dDefinition(64, kernel, stride, padding).Build("conv", [side, side, channels], new LayerBuildContext(pool, WeightInitializer.HeNormal, 3));
        var random = new Random(4);
        var x = Enumerable.Range(0, batch * layer.InputSize).Select(_ => random.NextSingle() - 0.5f).ToArray();
        var whole = new float[batch * layer.OutputSize];
        var chunked = new float[batch * layer.OutputSize];
        layer.Forward(x, whole, batch, training: true);      // training unfolds the whole batch at once
        layer.Forward(x, chunked, batch, training: false);   // inference unfolds a few examples at a time
        Assert.Equal(whole, chunked);
    }
}

public class Pool2dInferenceTests
{
    [Theory]
    [InlineData(2, 2, 13)]   // the CNN's pooling, odd channel count
    [InlineData(3, 2, 32)]   // overlapping windows
    public void InferenceMaxPoolingEqualsTheTrainingForward(int kernel, int stride, int channels)
    {
        using var pool = new WorkerPool(2);
        var layer = new Pool2dDefinition(PoolingKind.Max, kernel, stride).Build("pool", [9, 9, channels], new LayerBuildContext(pool, WeightInitializer.HeNormal, 3));
        var random = new Random(5);
        var x = Enumerable.Range(0, 3 * layer.InputSize).Select(_ => random.NextSingle() - 0.5f).ToArray();
        var training = new float[3 * layer.OutputSize];
        var inference = new float[3 * layer.OutputSize];
        layer.Forward(x, training, 3, training: true);     // records the argmax for backward
        layer.Forward(x, inference, 3, training: false);   // plain vector max
        Assert.Equal(training, inference);
    }
}
