using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Network;

public class Conv2dInferenceTests
{
    [Theory]
    [InlineData(4, 3, 1, 1, 150)]    // small patches (36 values): many examples per inference chunk
    [InlineData(32, 3, 1, 1, 7)]     // 14×14×32 → 48: about two examples per chunk, and a partial last chunk
    [InlineData(5, 5, 2, 2, 9)]      // one chunk
    public void InferenceInCacheSizedChunksEqualsTheWholeBatchForward(int channels, int kernel, int stride, int padding, int batch)
    {
        using var pool = new WorkerPool(2);
        int side = channels == 32 ? 14 : 11;
        Assert.True(kernel * kernel * channels > 32); // larger patches than the direct kernel takes
        // 48 output channels: not the direct kernel's 64, so this is the unfold-and-multiply path.
        var layer = new Conv2dDefinition(48, kernel, stride, padding).Build("conv", [side, side, channels], new LayerBuildContext(pool, WeightInitializer.HeNormal, 3));
        var random = new Random(4);
        var x = Enumerable.Range(0, batch * layer.InputSize).Select(_ => random.NextSingle() - 0.5f).ToArray();
        var whole = new float[batch * layer.OutputSize];
        var chunked = new float[batch * layer.OutputSize];
        layer.Forward(x, whole, batch, training: true);      // training unfolds the whole batch at once
        layer.Forward(x, chunked, batch, training: false);   // inference unfolds a few examples at a time
        Assert.Equal(whole, chunked);
    }
}

public class DirectConvolutionTests
{
    [Theory]
    [InlineData(1, 3, 1, 1, 32, 5)]    // the CNN's first layer: 9-value patches
    [InlineData(2, 3, 2, 0, 16, 3)]    // stride 2, no padding
    [InlineData(3, 3, 1, 2, 80, 2)]    // padding larger than the kernel's half, 80 = 64 + 16 output channels
    [InlineData(32, 3, 1, 1, 64, 2)]   // the CNN's second layer: 288-value patches, 64 output channels
    public void SmallPatchInferenceMatchesTheIm2colForward(int channels, int kernel, int stride, int padding, int outChannels, int batch)
    {
        using var pool = new WorkerPool(2);
        var layer = new Conv2dDefinition(outChannels, kernel, stride, padding).Build("conv", [9, 8, channels], new LayerBuildContext(pool, WeightInitializer.HeNormal, 3));
        var conv = (Conv2dLayer)layer;
        var random = new Random(6);
        for (int i = 0; i < conv.Bias!.Length; i++) conv.Bias.Value[i] = random.NextSingle() - 0.5f;
        var x = Enumerable.Range(0, batch * layer.InputSize).Select(_ => random.NextSingle() - 0.5f).ToArray();
        var im2col = new float[batch * layer.OutputSize];
        var direct = new float[batch * layer.OutputSize];
        layer.Forward(x, im2col, batch, training: true);   // im2col + GEMM
        layer.Forward(x, direct, batch, training: false);  // the direct kernel (k·k·in ≤ 32, or 64 output channels)
        for (int i = 0; i < im2col.Length; i++)
            Assert.True(Math.Abs(im2col[i] - direct[i]) <= 1e-5f * (1 + Math.Abs(im2col[i])), $"[{i}] {direct[i]} vs {im2col[i]}");
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
