using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Models;
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
        // The scalar tier has no direct kernel, so a dense weight's inference is the unfold-and-multiply path.
        var layer = (Conv2dLayer)new Conv2dDefinition(48, kernel, stride, padding).Build("conv", [side, side, channels], new LayerBuildContext(pool, WeightInitializer.HeNormal, 3));
        layer.Isa = VectorIsa.Scalar;
        var random = new Random(4);
        var x = Enumerable.Range(0, batch * layer.InputSize).Select(_ => random.NextSingle() - 0.5f).ToArray();
        var whole = new float[batch * layer.OutputSize];
        var chunked = new float[batch * layer.OutputSize];
        layer.Forward(x, whole, batch, training: true);      // training unfolds the whole batch at once
        layer.Forward(x, chunked, batch, training: false);   // inference unfolds a few examples at a time
        Assert.Equal(whole, chunked);
    }

    [Theory]
    [InlineData(WeightFormat.Csr, 14, 14, 1, 2)]        // 14 output rows: 7 per thread
    [InlineData(WeightFormat.SlicedEll, 14, 14, 2, 4)]  // stride 2: 7 output rows, bands of 1, 2, 2 and 2
    [InlineData(WeightFormat.Csr, 14, 14, 1, 3)]        // three threads: bands of 4, 5 and 5
    [InlineData(WeightFormat.Csr, 3, 14, 1, 4)]         // 3 output rows, fewer than the threads: bands of one row
    [InlineData(WeightFormat.Csr, 3, 1, 1, 2)]          // one pixel a row: one band (no single-pixel band)
    [InlineData(WeightFormat.Csr, 5, 1, 1, 2)]          // one pixel a row: bands of 2 and 3 pixels
    public void ASingleExampleWithASparseWeightSplitsItsOutputRowsOverThreads(WeightFormat format, int height, int width, int stride, int threads)
    {
        // Each thread unfolds and multiplies its own band of output rows: the result must equal one thread's, and the
        // dense masked forward to float rounding.
        using var pool = new WorkerPool(threads);
        var random = new Random(8);
        Conv2dLayer Build(WorkerPool p) => (Conv2dLayer)new Conv2dDefinition(48, 3, stride, 1).Build("conv", [height, width, 16], new LayerBuildContext(p, WeightInitializer.HeNormal, 5));
        Conv2dLayer split = Build(pool), alone = Build(WorkerPool.Inline);
        for (int i = 0; i < split.Weight.Length; i++)
            split.Weight.Value[i] = random.NextDouble() < 0.8 ? 0f : random.NextSingle() - 0.5f;
        for (int i = 0; i < split.Bias!.Length; i++)
            split.Bias.Value[i] = random.NextSingle() - 0.5f;
        split.Weight.Value.CopyTo(alone.Weight.Value, 0);
        split.Bias.Value.CopyTo(alone.Bias!.Value, 0);
        int patch = split.Weight.Length / 48;
        foreach (Conv2dLayer layer in new[] { split, alone })
        {
            layer.InferenceWeight = format == WeightFormat.Csr ? CsrMatrix.FromDense(layer.Weight.Value, 48, patch) : SlicedEllMatrix.FromDense(layer.Weight.Value, 48, patch);
            layer.PredictionOnly = true;
        }

        var x = Enumerable.Range(0, split.InputSize).Select(_ => random.NextSingle() - 0.5f).ToArray();
        float[] banded = new float[split.OutputSize], single = new float[split.OutputSize], dense = new float[split.OutputSize];
        split.Forward(x, banded, 1, training: false);
        alone.Forward(x, single, 1, training: false);
        alone.Forward(x, dense, 1, training: true); // im2col + dense GEMM on the masked weight
        Assert.Equal(single, banded);
        for (int i = 0; i < dense.Length; i++)
            Assert.True(Math.Abs(dense[i] - banded[i]) <= 1e-5f * (1 + Math.Abs(dense[i])), $"[{i}] {banded[i]} vs {dense[i]}");
    }
}

public class DirectConvolutionTests
{
    /// <summary>The vector tiers this machine runs (the direct kernel has no scalar path), by name: the tier type is internal.</summary>
    internal static IEnumerable<string> TierNames => VectorIsas.Available.Where(isa => isa >= VectorIsa.Vector128).Select(isa => isa.ToString());

    public static TheoryData<string> Tiers() => [.. TierNames];

    /// <summary>Each tier × shapes the direct kernel takes: (in channels, kernel, stride, padding, out channels, batch).</summary>
    public static TheoryData<string, int, int, int, int, int, int> Shapes()
    {
        var data = new TheoryData<string, int, int, int, int, int, int>();
        foreach (string tier in TierNames)
        {
            data.Add(tier, 1, 3, 1, 1, 32, 5);   // the CNN's first layer: 9-value patches
            data.Add(tier, 2, 3, 2, 0, 16, 3);   // stride 2, no padding, one 16-channel block
            data.Add(tier, 3, 3, 1, 2, 80, 2);   // padding larger than the kernel's half, 80 = 64 + 16 output channels
            data.Add(tier, 5, 2, 1, 1, 48, 1);   // 5 input channels (no vector multiple), 48 outputs: three blocks
            data.Add(tier, 32, 3, 1, 1, 64, 2);  // the CNN's second layer: 288-value patches, 64 output channels
            data.Add(tier, 13, 3, 1, 0, 64, 2);  // 13 input channels, 6 pixels a row
            data.Add(tier, 7, 3, 2, 2, 64, 1);   // 5 pixels a row: stride 2 with padding 2
            data.Add(tier, 3, 5, 1, 2, 64, 3);   // 5×5 kernel, 8 pixels a row: 4 + 4
            data.Add(tier, 64, 3, 1, 1, 45, 2);  // 576-value patches (several chunks of taps), 45 outputs: no whole vector
            data.Add(tier, 128, 3, 1, 1, 90, 1); // 1,152-value patches, 90 outputs: two groups of 48 on AVX-512
            data.Add(tier, 9, 3, 2, 1, 200, 1);  // 200 outputs: groups of 64, 48, 48 and 48 on AVX-512
            data.Add(tier, 16, 1, 1, 0, 7, 3);   // 1×1 kernel, 7 outputs
            data.Add(tier, 3, 3, 1, 4, 20, 2);   // padding 4 > kernel: the first and last rows are the bias alone
            data.Add(tier, 8, 3, 1, 1, 45, 12);  // work items of three whole images (a padded scratch)
            data.Add(tier, 8, 3, 1, 1, 64, 12);  // work items of three whole images (straight into the output)
            data.Add(tier, 8, 2, 1, 0, 64, 12);  // 8×7 outputs, every row one run across an item's three images: tiles cross images
            data.Add(tier, 16, 3, 1, 0, 24, 5);  // AVX2 runs Winograd (3×3, stride 1, batch ≥ 4): 7×6 outputs, a last row of half tiles
            data.Add(tier, 8, 3, 1, 2, 16, 4);   // Winograd with padding 2: 11×10 outputs
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void DirectInferenceMatchesADoublePrecisionConvolution(string tier, int channels, int kernel, int stride, int padding, int outChannels, int batch)
    {
        using var pool = new WorkerPool(2);
        var conv = (Conv2dLayer)new Conv2dDefinition(outChannels, kernel, stride, padding).Build("conv", [9, 8, channels], new LayerBuildContext(pool, WeightInitializer.HeNormal, 3));
        conv.Isa = Enum.Parse<VectorIsa>(tier);
        var random = new Random(6);
        for (int i = 0; i < conv.Bias!.Length; i++) conv.Bias.Value[i] = random.NextSingle() - 0.5f;
        var x = Enumerable.Range(0, batch * conv.InputSize).Select(_ => random.NextSingle() - 0.5f).ToArray();
        var direct = new float[batch * conv.OutputSize];
        conv.Forward(x, direct, batch, training: false);
        double[] expected = Reference(conv, x, batch);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - direct[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"[{i}] {direct[i]} vs {expected[i]}");
    }

    public static TheoryData<string, int, int, int, int> TiersAndChannels()
    {
        var data = new TheoryData<string, int, int, int, int>();
        foreach (string tier in TierNames)
        {
            data.Add(tier, 32, 64, 14, 3);   // the CNN's second layer: whole images on one thread, rows of a group on more
            data.Add(tier, 96, 45, 8, 9);    // several chunks of taps, no whole vector of outputs; 4, 2 or 1 images an item
            data.Add(tier, 32, 64, 14, 5);   // AVX2: Winograd's blocks of two images (2 + 2 + 1), however many threads
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(TiersAndChannels))]
    public void DirectInferenceIsTheSameOnAnyThreadCount(string tier, int channels, int outChannels, int side, int batch)
    {
        // Work items depend on the thread count (groups of whole images, or one row of one channel group), but each value's additions
        // run in the same order: the results are equal, not close.
        var x = Enumerable.Range(0, batch * side * side * channels).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        float[] Forward(int threads)
        {
            using var pool = new WorkerPool(threads);
            var conv = (Conv2dLayer)new Conv2dDefinition(outChannels, 3, 1, 1).Build("conv", [side, side, channels], new LayerBuildContext(pool, WeightInitializer.HeNormal, 3));
            conv.Isa = Enum.Parse<VectorIsa>(tier);
            var y = new float[batch * conv.OutputSize];
            conv.Forward(x, y, batch, training: false);
            return y;
        }

        float[] one = Forward(1);
        Assert.Contains(one, v => v != 0);
        Assert.Equal(one, Forward(2));
        Assert.Equal(one, Forward(3));
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public unsafe void OutputRowsEndAtTheirLastChannel(string tier)
    {
        // 22 output channels make no whole vector on any tier. The last pooled row and the last plain row go into buffers
        // that end at their last channel, followed by NaN sentinels: the padding channels (zero weights) never reach them.
        const int h = 4, w = 6, c = 3, n = 22, tail = 32;
        var conv = new DirectConvolution(Enum.Parse<VectorIsa>(tier), h, w, c, 3, 1, 1, h, w, n);
        var random = new Random(2);
        conv.Pack([.. Enumerable.Range(0, n * 9 * c).Select(_ => random.NextSingle() - 0.5f)], [.. Enumerable.Range(0, n).Select(_ => random.NextSingle())]);
        float[] x = [.. Enumerable.Range(0, h * w * c).Select(_ => random.NextSingle() - 0.5f)];
        float[] pooled = new float[w / 2 * n + tail], row = new float[w * n + tail];
        Array.Fill(pooled, float.NaN);
        Array.Fill(row, float.NaN);
        fixed (float* px = x, pp = pooled, pr = row)
        {
            conv.ConvolvePooled(px, h / 2 - 1, h / 2, 2, w / 2, false, pp, 0, conv.Blocks);
            conv.ConvolveRows(px, 1, h - 1, h, pr, 0, conv.Blocks, false);
        }

        Assert.DoesNotContain(pooled[..(w / 2 * n)], float.IsNaN);
        Assert.All(pooled[(w / 2 * n)..], v => Assert.True(float.IsNaN(v), "a pooled row wrote past its last channel"));
        Assert.DoesNotContain(row[..(w * n)], float.IsNaN);
        Assert.All(row[(w * n)..], v => Assert.True(float.IsNaN(v), "a row wrote past its last channel"));
    }

    /// <summary>A direct convolution with random weights and bias (seeded).</summary>
    private static DirectConvolution Direct(string tier, int h, int w, int c, int stride, int pad, int n, int seed)
    {
        int outH = (h + 2 * pad - 3) / stride + 1, outW = (w + 2 * pad - 3) / stride + 1;
        var conv = new DirectConvolution(Enum.Parse<VectorIsa>(tier), h, w, c, 3, stride, pad, outH, outW, n);
        var random = new Random(seed);
        conv.Pack([.. Enumerable.Range(0, n * 9 * c).Select(_ => random.NextSingle() - 0.5f)], [.. Enumerable.Range(0, n).Select(_ => random.NextSingle() - 0.5f)]);
        return conv;
    }

    public static TheoryData<string, int, int> TiersStridesAndPaddings()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string tier in TierNames)
        {
            data.Add(tier, 2, 1);  // 7×7 outputs: the top row's taps differ, the other rows form one run within an image
            data.Add(tier, 2, 0);  // 6×6 outputs: every row takes every tap, so one run spans both images
            data.Add(tier, 1, 1);  // 13×13 outputs
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(TiersStridesAndPaddings))]
    public unsafe void RowsTakenTogetherEqualRowsTakenOneByOne(string tier, int stride, int pad)
    {
        // Taken together (two images in one call), the rows of a run are tiled across rows and across the images;
        // one row a call, each row is tiled alone. Every value adds the same taps in the same order: equal, not close.
        const int h = 13, w = 13, c = 5, n = 24, images = 2;
        var conv = Direct(tier, h, w, c, stride, pad, n, 4);
        int outH = (h + 2 * pad - 3) / stride + 1, outW = (w + 2 * pad - 3) / stride + 1, size = h * w * c, outSize = outH * outW * n;
        var random = new Random(5);
        float[] x = [.. Enumerable.Range(0, images * size).Select(_ => random.NextSingle() - 0.5f)];
        float[] together = new float[images * outSize], oneByOne = new float[together.Length];
        fixed (float* px = x, pt = together, po = oneByOne)
        {
            conv.ConvolveRows(px, images, 0, outH, pt, 0, conv.Blocks, true);
            for (int b = 0; b < images; b++)
                for (int oy = 0; oy < outH; oy++)
                    conv.ConvolveRows(px + b * size, 1, oy, oy + 1, po + b * outSize + oy * outW * n, 0, conv.Blocks, true);
        }

        Assert.Contains(together, v => v > 0);
        Assert.Equal(oneByOne, together);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public unsafe void PooledRowsEqualTheMaximaOfRowsTakenOneByOne(string tier)
    {
        // All seven pooled rows in one call (the interior convolution rows tiled as one run) against each convolution
        // row alone and the 2×2 maxima taken here: equal, not close.
        const int h = 14, w = 14, c = 5, n = 24;
        var conv = Direct(tier, h, w, c, 1, 1, n, 4);
        var random = new Random(6);
        float[] x = [.. Enumerable.Range(0, h * w * c).Select(_ => random.NextSingle() - 0.5f)];
        float[] pooled = new float[h / 2 * (w / 2) * n], rows = new float[h * w * n];
        fixed (float* px = x, pp = pooled, pr = rows)
        {
            conv.ConvolvePooled(px, 0, h / 2, 2, w / 2, true, pp, 0, conv.Blocks);
            for (int oy = 0; oy < h; oy++)
                conv.ConvolveRows(px, 1, oy, oy + 1, pr + oy * w * n, 0, conv.Blocks, true);
        }

        var expected = new float[pooled.Length];
        for (int py = 0; py < h / 2; py++)
            for (int px = 0; px < w / 2; px++)
                for (int o = 0; o < n; o++)
                {
                    float best = float.NegativeInfinity;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            best = MathF.Max(best, rows[((2 * py + dy) * w + 2 * px + dx) * n + o]);
                    expected[(py * (w / 2) + px) * n + o] = best;
                }

        Assert.Contains(pooled, v => v > 0);
        Assert.Equal(expected, pooled);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public unsafe void TheFusedReLUKeepsNaNAndNegativeZero(string tier)
    {
        // The fused ReLU is a < 0 ? 0 : a, bit for bit: a NaN input makes its windows' outputs NaN, which stay NaN, and
        // channel 0 (zero weights, bias −0, negative inputs) sums −0, which stays −0.
        const int h = 6, w = 7, c = 2, n = 20;
        var conv = new DirectConvolution(Enum.Parse<VectorIsa>(tier), h, w, c, 3, 1, 1, h, w, n);
        var random = new Random(7);
        float[] weight = [.. Enumerable.Range(0, n * 9 * c).Select(i => i < 9 * c ? 0f : random.NextSingle() - 0.5f)];
        float[] bias = [.. Enumerable.Range(0, n).Select(o => o == 0 ? -0f : random.NextSingle() - 0.5f)];
        conv.Pack(weight, bias);
        float[] x = [.. Enumerable.Range(0, h * w * c).Select(_ => -random.NextSingle() - 0.01f)];
        x[(2 * w + 3) * c + 1] = float.NaN;
        float[] rectified = new float[h * w * n], plain = new float[rectified.Length];
        fixed (float* px = x, pr = rectified, pp = plain)
        {
            conv.ConvolveRows(px, 1, 0, h, pr, 0, conv.Blocks, true);
            conv.ConvolveRows(px, 1, 0, h, pp, 0, conv.Blocks, false);
        }

        Assert.Contains(plain, float.IsNaN);
        Assert.Contains(plain, v => v == 0 && float.IsNegative(v));
        Assert.Contains(plain, v => v < 0);
        Assert.Equal(plain.Select(a => BitConverter.SingleToInt32Bits(a < 0 ? 0f : a)), rectified.Select(BitConverter.SingleToInt32Bits));
    }

    /// <summary>The convolution in double precision, from the layer's weight and bias: y[b, oy, ox, o] = bias[o] + Σ x[b, iy, ix, ci]·W[o, ky, kx, ci].</summary>
    private static double[] Reference(Conv2dLayer conv, float[] x, int batch)
    {
        int h = conv.InputShape[0], w = conv.InputShape[1], c = conv.InputShape[2], outH = conv.OutputShape[0], outW = conv.OutputShape[1];
        int n = conv.OutChannels, k = conv.KernelSize;
        var y = new double[batch * conv.OutputSize];
        for (int b = 0; b < batch; b++)
        for (int oy = 0; oy < outH; oy++)
        for (int ox = 0; ox < outW; ox++)
        for (int o = 0; o < n; o++)
        {
            double sum = conv.Bias?.Value[o] ?? 0;
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                int iy = oy * conv.Stride - conv.Padding + ky, ix = ox * conv.Stride - conv.Padding + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                for (int ci = 0; ci < c; ci++)
                    sum += (double)x[((b * h + iy) * w + ix) * c + ci] * conv.Weight.Value[((o * k + ky) * k + kx) * c + ci];
            }
            y[((b * outH + oy) * outW + ox) * n + o] = sum;
        }
        return y;
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

public class FusedConvolutionTests
{
    /// <summary>Odd-sized images: pooling drops the last row or column, and the direct kernel's edge pixels are exercised.</summary>
    private static readonly int[] Image = [11, 9, 1];

    private static LayerDefinition[] SmallCnnLike() =>
        [Layers.Conv2d(32, 3, padding: 1), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Conv2d(64, 3, padding: 1), Layers.ReLU(), Layers.MaxPool2d(2),
         Layers.Flatten(), Layers.Dense(10)];

    public static TheoryData<string, int> TiersAndBatches()
    {
        var data = new TheoryData<string, int>();
        foreach (string tier in DirectConvolutionTests.TierNames)
        {
            data.Add(tier, 1);
            data.Add(tier, 7);
        }
        return data;
    }

    /// <summary>Whether this process's convolutions run the direct kernel (and so fuse): any vector tier.</summary>
    private static bool Fuses => VectorIsas.Best >= VectorIsa.Vector128;

    [Theory]
    [MemberData(nameof(TiersAndBatches))]
    public void ConvolutionFusedWithReLUAndPoolingMatchesTheLayerByLayerForward(string tier, int batch)
    {
        var (fused, plain) = Networks(SmallCnnLike(), Image, tier);
        // The second convolution also writes the flatten's buffer; without the direct kernel, its pooling does.
        Assert.Equal(Fuses ? [2, 0, 0, 3, 0, 0, 0, 0] : new[] { 0, 0, 0, 0, 0, 1, 0, 0 }, Enumerable.Range(0, 8).Select(fused.FusedAfter));
        AssertForwardsMatch(fused, plain, batch);
    }

    [Theory]
    [MemberData(nameof(DirectConvolutionTests.Tiers), MemberType = typeof(DirectConvolutionTests))]
    public void ReLUAloneAndPoolingAloneAreFusedToo(string tier)
    {
        // conv → ReLU → flatten: the ReLU in the direct kernel's store; conv (64 outputs, 3 inputs) → 3×3 max pool
        // stride 3 → ReLU: pooling only (the ReLU after the pooling stays a layer of its own).
        LayerDefinition[] layers =
            [Layers.Conv2d(16, 3, stride: 2), Layers.ReLU(), Layers.Conv2d(64, 3, padding: 1), Layers.MaxPool2d(3), Layers.ReLU(), Layers.Flatten(), Layers.Dense(5)];
        var (fused, plain) = Networks(layers, [13, 10, 3], tier);
        Assert.Equal(Fuses ? [1, 0, 1, 0, 1, 0, 0] : new[] { 0, 0, 0, 0, 1, 0, 0 }, Enumerable.Range(0, 7).Select(fused.FusedAfter));
        AssertForwardsMatch(fused, plain, 3);
    }

    [Theory]
    [MemberData(nameof(TiersAndBatches))]
    public void BatchNormIsFoldedIntoTheConvolutionBeforeItsReLUAndPooling(string tier, int batch)
    {
        // conv with 22 outputs (no whole vector on any tier: the pooled pixels end in a masked store) → BN → ReLU → pool
        // (all three fused), conv with 45 outputs → BN → flatten; the batch norms' running statistics, γ and β away from
        // their initial values, so folding them is not the identity.
        LayerDefinition[] layers =
            [Layers.Conv2d(22, 3, padding: 1, useBias: false), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2),
             Layers.Conv2d(45, 3, padding: 1), Layers.BatchNorm(), Layers.Flatten(), Layers.Dense(6)];
        var (fused, plain) = Networks(layers, Image, tier);
        Assert.Equal(Fuses ? [3, 0, 0, 0, 2, 0, 0, 0] : new[] { 0, 0, 0, 0, 0, 1, 0, 0 }, Enumerable.Range(0, 8).Select(fused.FusedAfter));
        AssertForwardsMatch(fused, plain, batch, againstTraining: false);
    }

    [Theory]
    [MemberData(nameof(TiersAndBatches))]
    public void AFusedForwardIsTheSameOnAnyThreadCount(string tier, int batch)
    {
        // With few pooled rows (batch 1 here: 5 and 2 a layer) each row's channel blocks are items of their own; every
        // output value is still computed by one thread in one order, so the results are equal, not close.
        var network = new SequentialNetwork(SmallCnnLike(), Image, new LayerBuildContext(WorkerPool.Inline, WeightInitializer.HeNormal, 11));
        var model = new NeuralNetworkMulticlassModel(network, network.OutputSize, null, "Features", []);
        var x = Inputs(batch * network.InputSize, 13);
        float[] Forward(WorkerPool pool)
        {
            SequentialNetwork fused = model.PredictionNetwork(pool);
            foreach (Conv2dLayer conv in fused.Layers.OfType<Conv2dLayer>())
                conv.Isa = Enum.Parse<VectorIsa>(tier);
            fused.EnsureCapacity(batch);
            x.CopyTo(fused.Input, 0);
            return fused.Forward(batch, training: false)[..(batch * fused.OutputSize)];
        }

        using var three = new WorkerPool(3);
        using var two = new WorkerPool(2);
        float[] alone = Forward(WorkerPool.Inline);
        Assert.Contains(alone, v => v != 0);
        Assert.Equal(alone, Forward(two));
        Assert.Equal(alone, Forward(three));
    }

    [Theory]
    [MemberData(nameof(TiersAndBatches))]
    public void WinogradsConvolutionsWithFusedLayersMatchTheLayerByLayerForward(string tier, int batch)
    {
        // AVX2 runs 3×3, stride-1 convolutions of batches of 4 or more with Winograd's kernel (blocks of 2 + 2 + 2 + 1
        // images at batch 7; batch 1 and the other tiers, the direct kernel): here one with its batch norm, ReLU and 2×2
        // pooling fused, one with its ReLU, and one with no padding (4×4 outputs) fused with nothing but the flatten.
        LayerDefinition[] layers =
            [Layers.Conv2d(16, 3, padding: 1, useBias: false), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2),
             Layers.Conv2d(24, 3, padding: 1), Layers.ReLU(), Layers.Conv2d(16, 3), Layers.Flatten(), Layers.Dense(5)];
        var (fused, plain) = Networks(layers, [12, 12, 8], tier);
        Assert.Equal([3, 0, 0, 0, 1, 0, 1, 0, 0], Enumerable.Range(0, 9).Select(fused.FusedAfter)); // the last writes the flatten's buffer too
        var isa = Enum.Parse<VectorIsa>(tier);
        bool winograd = WinogradConvolution.Supports(isa, 3, 1, 8, 16, 2, 12, 12) && WinogradConvolution.Supports(isa, 3, 1, 16, 24, 0, 6, 6)
            && WinogradConvolution.Supports(isa, 3, 1, 24, 16, 0, 4, 4) && batch >= WinogradConvolution.MinBatch;
        Assert.Equal(isa == VectorIsa.Avx2 && batch > 1, winograd);
        AssertForwardsMatch(fused, plain, batch, againstTraining: false);
    }

    [Fact]
    public void AFusedConvolutionRefusesATierWithoutTheDirectKernel()
    {
        var (fused, _) = Networks(SmallCnnLike(), Image, VectorIsas.Best.ToString());
        var conv = (Conv2dLayer)fused.Layers[0];
        if (fused.FusedAfter(0) == 0)
            return; // no vector tier in this process: nothing fused
        Assert.Throws<InvalidOperationException>(() => conv.Isa = VectorIsa.Scalar);
        Assert.Equal(VectorIsas.Best, conv.Isa);
    }

    [Fact]
    public void OverlappingOrAveragePoolingIsNotFused()
    {
        LayerDefinition[] layers =
            [Layers.Conv2d(32, 3), Layers.ReLU(), Layers.MaxPool2d(3, stride: 2), Layers.Conv2d(16, 1), Layers.AvgPool2d(2), Layers.Flatten(), Layers.Dense(4)];
        var (fused, plain) = Networks(layers, [12, 12, 1], VectorIsas.Best.ToString());
        Assert.Equal(Fuses ? [1, 0, 0, 0, 1, 0, 0] : new[] { 0, 0, 0, 0, 1, 0, 0 }, Enumerable.Range(0, 7).Select(fused.FusedAfter));
        AssertForwardsMatch(fused, plain, 2);
    }

    [Fact]
    public void ConvolutionsWithASparsePredictionFormatAreNotFused()
    {
        // CSR weights multiply unfolded inputs, not the direct kernel: every layer stays a layer of its own, except
        // the flatten, whose buffer the pooling before it writes.
        var network = new SequentialNetwork(SmallCnnLike(), Image, new LayerBuildContext(WorkerPool.Inline, WeightInitializer.HeNormal, 11));
        var model = new NeuralNetworkMulticlassModel(network, 10, null, "Features", []).WithWeightFormats(WeightFormat.Csr);
        SequentialNetwork csr = model.PredictionNetwork(WorkerPool.Inline);
        Assert.Equal([0, 0, 0, 0, 0, 1, 0, 0], Enumerable.Range(0, csr.Layers.Count).Select(csr.FusedAfter));
        AssertForwardsMatch(csr, network.Clone(WorkerPool.Inline), 2);
    }

    [Fact]
    public void BatchedScoringOfAFusedModelMatchesTheLayerByLayerForward()
    {
        // 70 rows: not a multiple of the scoring chunk, so the last chunk is partial.
        var (_, plain) = Networks(SmallCnnLike(), Image, VectorIsas.Best.ToString());
        using var pool = new WorkerPool(2);
        var model = new NeuralNetworkMulticlassModel(plain.Clone(pool), 10, null, "Features", []);
        const int count = 70;
        Assert.NotEqual(0, count % model.BatchChunk);
        var x = Inputs(count * plain.InputSize, 9);
        var probabilities = new float[count * 10];
        model.Score(x, count, probabilities, new int[count]);

        plain.EnsureCapacity(count);
        x.CopyTo(plain.Input, 0);
        float[] logits = plain.Forward(count, training: false);
        var expected = new float[10];
        for (int b = 0; b < count; b++)
        {
            NeuralNetworkMulticlassModel.Softmax(logits.AsSpan(b * 10, 10), expected);
            for (int j = 0; j < 10; j++)
                Assert.True(Math.Abs(expected[j] - probabilities[b * 10 + j]) <= 1e-5f, $"row {b} class {j}: {probabilities[b * 10 + j]} vs {expected[j]}");
        }
    }

    /// <summary>
    /// A model's prediction copy (fused where it can be; its direct kernels on <paramref name="tier"/>) and a plain
    /// copy of the same network, whose inference runs layer by layer.
    /// </summary>
    private static (SequentialNetwork Fused, SequentialNetwork Plain) Networks(LayerDefinition[] layers, int[] shape, string tier)
    {
        var network = new SequentialNetwork(layers, shape, new LayerBuildContext(WorkerPool.Inline, WeightInitializer.HeNormal, 11));
        var random = new Random(12);
        foreach (Parameter p in network.Parameters.Where(p => p.Kind == ParameterKind.Bias))
            for (int i = 0; i < p.Length; i++) p.Value[i] = random.NextSingle() - 0.5f; // biases move some sums below zero
        foreach (BatchNormLayer norm in network.Layers.OfType<BatchNormLayer>())
            for (int c = 0; c < norm.Channels; c++)
            {
                (norm.Gamma.Value[c], norm.Beta.Value[c]) = (0.5f + random.NextSingle(), random.NextSingle() - 0.5f);
                (norm.RunningMean[c], norm.RunningVariance[c]) = (random.NextSingle() - 0.5f, 0.2f + random.NextSingle());
            }
        var model = new NeuralNetworkMulticlassModel(network, network.OutputSize, null, "Features", []);
        SequentialNetwork fused = model.PredictionNetwork(WorkerPool.Inline);
        foreach (Conv2dLayer conv in fused.Layers.OfType<Conv2dLayer>())
            conv.Isa = Enum.Parse<VectorIsa>(tier);
        return (fused, network.Clone(WorkerPool.Inline));
    }

    private static void AssertForwardsMatch(SequentialNetwork fused, SequentialNetwork plain, int batch, bool againstTraining = true)
    {
        var x = Inputs(batch * fused.InputSize, 13);
        fused.EnsureCapacity(batch);
        plain.EnsureCapacity(batch);
        x.CopyTo(fused.Input, 0);
        x.CopyTo(plain.Input, 0);
        float[] actual = fused.Forward(batch, training: false)[..(batch * fused.OutputSize)];
        // Against the layer-by-layer inference (direct kernel, then ReLU and pooling) and the training forward (im2col;
        // not with batch norms, which train on the batch's statistics).
        foreach (bool training in againstTraining ? new[] { false, true } : [false])
        {
            float[] expected = plain.Forward(batch, training)[..(batch * plain.OutputSize)];
            Assert.Contains(expected, v => v != 0);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * (1 + Math.Abs(expected[i])), $"training {training} [{i}] {actual[i]} vs {expected[i]}");
        }
    }

    private static float[] Inputs(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.NextSingle() - 0.5f).ToArray();
    }
}
