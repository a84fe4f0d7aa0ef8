using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Network.GradCheck;

namespace Microsoft.ML.Sparsity.Tests.Network;

/// <summary>
/// Backward passes against central finite differences of L = Σ r ⊙ y (so dy = r), and forward passes against naive
/// reference implementations.
/// </summary>
public sealed class GradientCheckTests : IDisposable
{
    private readonly WorkerPool _pool = new(2);

    public void Dispose() => _pool.Dispose();

    // ---------------------------------------------------------------- Dense

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Dense_backward_matches_finite_differences(bool useBias)
    {
        var random = new Random(11);
        var layer = new DenseLayer("dense", 7, 5, useBias, Context(_pool));
        if (useBias) Uniform(random, 5).CopyTo(layer.Bias!.Value, 0);
        var x = Uniform(random, 3 * 7);
        int compared = CheckLayer(layer, x, batch: 3, random);
        Assert.Equal(3 * 7 + 5 * 7 + (useBias ? 5 : 0), compared);
        Assert.Equal(useBias ? 2 : 1, layer.Parameters.Count);
    }

    [Fact]
    public void Dense_forward_matches_a_naive_product()
    {
        var random = new Random(12);
        var layer = new DenseLayer("dense", 6, 4, true, Context(_pool));
        Uniform(random, 4).CopyTo(layer.Bias!.Value, 0);
        var x = Uniform(random, 2 * 6);
        var y = new float[2 * 4];
        layer.Forward(x, y, 2, training: false);
        for (int b = 0; b < 2; b++)
        for (int o = 0; o < 4; o++)
        {
            double s = layer.Bias.Value[o];
            for (int i = 0; i < 6; i++) s += (double)x[b * 6 + i] * layer.Weight.Value[o * 6 + i];
            Assert.Equal(s, y[b * 4 + o], 1e-5);
        }
    }

    // ---------------------------------------------------------------- Conv2d

    public static TheoryData<int, int, int, int, int, int, int, bool> ConvConfigs => new()
    {
        // h, w, cIn, cOut, kernel, stride, padding, bias
        { 7, 5, 1, 2, 3, 1, 0, true },
        { 7, 5, 3, 4, 3, 1, 1, true },
        { 7, 5, 3, 3, 3, 2, 1, false },
        { 7, 5, 1, 2, 5, 1, 2, true },
        { 6, 7, 3, 2, 5, 2, 0, true },
        { 5, 4, 3, 4, 1, 1, 0, true },
        { 7, 5, 3, 2, 1, 2, 1, true },
        { 6, 6, 2, 3, 3, 2, 2, true },
    };

    [Theory]
    [MemberData(nameof(ConvConfigs))]
    public void Conv2d_backward_matches_finite_differences(int h, int w, int cIn, int cOut, int k, int stride, int pad, bool bias)
    {
        var random = new Random(h * 1000 + w * 100 + cIn * 10 + k + stride + pad);
        var layer = new Conv2dLayer("conv", [h, w, cIn], cOut, k, stride, pad, bias, Context(_pool));
        if (bias) Uniform(random, cOut).CopyTo(layer.Bias!.Value, 0);
        const int batch = 2;
        var x = Uniform(random, batch * h * w * cIn);
        int compared = CheckLayer(layer, x, batch, random);
        Assert.Equal(x.Length + layer.Weight.Length + (bias ? cOut : 0), compared);
    }

    [Theory]
    [MemberData(nameof(ConvConfigs))]
    public void Conv2d_forward_matches_direct_convolution(int h, int w, int cIn, int cOut, int k, int stride, int pad, bool bias)
    {
        var random = new Random(7 + h + w + cIn + cOut + k + stride + pad);
        var layer = new Conv2dLayer("conv", [h, w, cIn], cOut, k, stride, pad, bias, Context(_pool));
        if (bias) Uniform(random, cOut).CopyTo(layer.Bias!.Value, 0);
        const int batch = 3;
        var x = Uniform(random, batch * h * w * cIn);
        var y = new float[batch * layer.OutputSize];
        layer.Forward(x, y, batch, training: false);

        int outH = (h + 2 * pad - k) / stride + 1, outW = (w + 2 * pad - k) / stride + 1;
        Assert.Equal(new[] { outH, outW, cOut }, layer.OutputShape);
        var wt = layer.Weight.Value;
        for (int b = 0; b < batch; b++)
        for (int oy = 0; oy < outH; oy++)
        for (int ox = 0; ox < outW; ox++)
        for (int o = 0; o < cOut; o++)
        {
            double s = bias ? layer.Bias!.Value[o] : 0;
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                for (int c = 0; c < cIn; c++)
                    s += (double)wt[((o * k + ky) * k + kx) * cIn + c] * x[((b * h + iy) * w + ix) * cIn + c];
            }
            float actual = y[((b * outH + oy) * outW + ox) * cOut + o];
            Assert.True(Math.Abs(actual - s) <= 1e-5 + 1e-5 * Math.Abs(s), $"y[{b},{oy},{ox},{o}] = {actual}, expected {s}.");
        }
    }

    [Fact]
    public void Conv2d_rejects_a_kernel_larger_than_the_padded_input_naming_the_layer()
    {
        var ex = Assert.Throws<ArgumentException>(() => new Conv2dLayer("myconv", [3, 3, 1], 2, 5, 1, 0, true, Context(_pool)));
        Assert.Contains("myconv", ex.Message);
    }

    // ---------------------------------------------------------------- Pooling

    public static TheoryData<int, int, int, int, int> PoolConfigs => new()
    {
        // h, w, channels, kernel, stride
        { 6, 4, 1, 2, 2 },
        { 6, 4, 3, 2, 2 },
        { 4, 6, 8, 2, 2 },
        { 5, 5, 11, 2, 2 },   // vector of 8 plus a scalar tail of 3; odd size leaves the last row/column unused
        { 5, 4, 1, 3, 1 },
        { 5, 4, 3, 3, 1 },
        { 5, 6, 9, 3, 1 },
        { 7, 5, 16, 3, 2 },
    };

    [Theory]
    [MemberData(nameof(PoolConfigs))]
    public void MaxPool_backward_matches_finite_differences(int h, int w, int c, int k, int stride)
    {
        var random = new Random(h * 31 + w * 7 + c * 3 + k + stride);
        var layer = new Pool2dLayer("maxpool", [h, w, c], PoolingKind.Max, k, stride, Context(_pool));
        const int batch = 2;
        // Distinct values 0.05 apart: no ties, and a ±0.01 perturbation never changes a window's argmax.
        var x = DistinctValues(random, batch * h * w * c, 0.05f);
        CheckLayer(layer, x, batch, random, eps: 1e-2f);
    }

    [Theory]
    [MemberData(nameof(PoolConfigs))]
    public void MaxPool_forward_matches_naive_reference(int h, int w, int c, int k, int stride)
    {
        var random = new Random(5 + h + w + c + k + stride);
        var layer = new Pool2dLayer("maxpool", [h, w, c], PoolingKind.Max, k, stride, Context(_pool));
        const int batch = 3;
        var x = Uniform(random, batch * h * w * c);
        var y = new float[batch * layer.OutputSize];
        layer.Forward(x, y, batch, training: false);
        var expected = NaivePool(x, batch, h, w, c, k, stride, max: true);
        Assert.Equal(expected, y);
    }

    [Fact]
    public void MaxPool_vector_path_handles_ties_by_sending_the_gradient_to_one_input()
    {
        // All-equal windows: the gradient of each output goes to exactly one input (the sum is preserved).
        var layer = new Pool2dLayer("maxpool", [4, 4, 8], PoolingKind.Max, 2, 2, Context(_pool));
        var x = new float[layer.InputSize];
        var y = new float[layer.OutputSize];
        layer.Forward(x, y, 1, training: true);
        var dy = Enumerable.Range(1, layer.OutputSize).Select(i => (float)i).ToArray();
        var dx = new float[layer.InputSize];
        layer.Backward(x, y, dy, dx, 1);
        Assert.Equal(dy.Sum(), dx.Sum());
        Assert.Equal(layer.OutputSize, dx.Count(v => v != 0));
    }

    [Theory]
    [MemberData(nameof(PoolConfigs))]
    public void AvgPool_backward_matches_finite_differences(int h, int w, int c, int k, int stride)
    {
        var random = new Random(h * 17 + w * 5 + c + k * 3 + stride);
        var layer = new Pool2dLayer("avgpool", [h, w, c], PoolingKind.Average, k, stride, Context(_pool));
        const int batch = 2;
        var x = Uniform(random, batch * h * w * c);
        CheckLayer(layer, x, batch, random);
    }

    [Theory]
    [MemberData(nameof(PoolConfigs))]
    public void AvgPool_forward_matches_naive_reference(int h, int w, int c, int k, int stride)
    {
        var random = new Random(9 + h + w + c + k + stride);
        var layer = new Pool2dLayer("avgpool", [h, w, c], PoolingKind.Average, k, stride, Context(_pool));
        const int batch = 3;
        var x = Uniform(random, batch * h * w * c);
        var y = new float[batch * layer.OutputSize];
        layer.Forward(x, y, batch, training: false);
        var expected = NaivePool(x, batch, h, w, c, k, stride, max: false);
        for (int i = 0; i < y.Length; i++) Assert.Equal(expected[i], y[i], 1e-5);
    }

    private static float[] NaivePool(float[] x, int batch, int h, int w, int c, int k, int stride, bool max)
    {
        int outH = (h - k) / stride + 1, outW = (w - k) / stride + 1;
        var y = new float[batch * outH * outW * c];
        for (int b = 0; b < batch; b++)
        for (int oy = 0; oy < outH; oy++)
        for (int ox = 0; ox < outW; ox++)
        for (int ch = 0; ch < c; ch++)
        {
            double acc = max ? double.NegativeInfinity : 0;
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                float v = x[((b * h + oy * stride + ky) * w + ox * stride + kx) * c + ch];
                acc = max ? Math.Max(acc, v) : acc + v;
            }
            y[((b * outH + oy) * outW + ox) * c + ch] = (float)(max ? acc : acc / (k * k));
        }
        return y;
    }

    [Fact]
    public void MaxPool_with_eight_channels_picks_each_channels_own_maximum()
    {
        // With 8 channels the Vector256 path runs (when accelerated): each lane must track its own argmax.
        var layer = new Pool2dLayer("maxpool", [2, 2, 8], PoolingKind.Max, 2, 2, Context(_pool));
        var x = new float[32];
        for (int i = 0; i < 32; i++) x[i] = (i * 37) % 32; // channel c's max lies at a different pixel for different c
        var y = new float[8];
        layer.Forward(x, y, 1, training: true);
        for (int ch = 0; ch < 8; ch++)
            Assert.Equal(Enumerable.Range(0, 4).Max(p => x[p * 8 + ch]), y[ch]);
        var dx = new float[32];
        layer.Backward(x, y, Enumerable.Repeat(1f, 8).ToArray(), dx, 1);
        for (int i = 0; i < 32; i++)
            Assert.Equal(x[i] == y[i % 8] ? 1f : 0f, dx[i]);
    }

    // ---------------------------------------------------------------- Global average pool, flatten

    [Fact]
    public void GlobalAveragePool_backward_matches_finite_differences_and_forward_is_the_channel_mean()
    {
        var random = new Random(21);
        var layer = new GlobalAveragePoolLayer("gap", [3, 5, 4]);
        const int batch = 2;
        var x = Uniform(random, batch * 60);
        CheckLayer(layer, x, batch, random, atol: 1e-3);
        var y = new float[batch * 4];
        layer.Forward(x, y, batch, false);
        for (int b = 0; b < batch; b++)
        for (int c = 0; c < 4; c++)
            Assert.Equal(Enumerable.Range(0, 15).Average(p => (double)x[b * 60 + p * 4 + c]), y[b * 4 + c], 1e-5);
    }

    [Fact]
    public void Flatten_backward_matches_finite_differences()
    {
        var random = new Random(22);
        var layer = new FlattenLayer("flatten", [2, 3, 2]);
        Assert.Equal(new[] { 12 }, layer.OutputShape);
        var x = Uniform(random, 3 * 12);
        CheckLayer(layer, x, 3, random);
    }

    [Fact]
    public void Flatten_as_the_first_layer_of_a_network_can_back_propagate()
    {
        // The first layer receives dx = null (nobody needs the input gradient); every layer must accept that.
        var net = new SequentialNetwork([Layers.Flatten(), Layers.Dense(3)], [2, 2, 1], Context(_pool));
        net.EnsureCapacity(2);
        Uniform(new Random(1), 8).CopyTo(net.Input, 0);
        net.Forward(2, training: true);
        Array.Fill(net.OutputGradient, 1f);
        net.Backward(2);
        var dense = (DenseLayer)net.Layers[1];
        Assert.Equal(net.Input[0] + net.Input[4], dense.Weight.Gradient[0], 1e-5);
    }

    // ---------------------------------------------------------------- Batch norm

    [Fact]
    public void BatchNorm_1d_training_backward_matches_finite_differences()
    {
        var random = new Random(31);
        var layer = new BatchNormLayer("bn", [5], 0.1f, 1e-5f, Context(_pool));
        Uniform(random, 5, 0.5f, 1.5f).CopyTo(layer.Gamma.Value, 0);
        Uniform(random, 5).CopyTo(layer.Beta.Value, 0);
        const int batch = 6;
        var x = Uniform(random, batch * 5, -2f, 2f);
        int compared = CheckLayer(layer, x, batch, random, eps: 3e-3f);
        Assert.Equal(batch * 5 + 10, compared);
    }

    [Fact]
    public void BatchNorm_over_image_channels_training_backward_matches_finite_differences()
    {
        var random = new Random(32);
        var layer = new BatchNormLayer("bn", [3, 4, 3], 0.1f, 1e-5f, Context(_pool));
        Assert.Equal(3, layer.Channels);
        Uniform(random, 3, 0.5f, 1.5f).CopyTo(layer.Gamma.Value, 0);
        Uniform(random, 3).CopyTo(layer.Beta.Value, 0);
        const int batch = 2;
        var x = Uniform(random, batch * 36, -2f, 2f);
        for (int i = 0; i < x.Length; i++) x[i] += i % 3; // per-channel offsets
        CheckLayer(layer, x, batch, random, eps: 3e-3f);
    }

    [Fact]
    public void BatchNorm_training_normalises_and_updates_running_statistics_like_pytorch()
    {
        var random = new Random(33);
        var layer = new BatchNormLayer("bn", [2, 2, 2], 0.1f, 1e-5f, Context(_pool));
        const int batch = 3;
        var x = Uniform(random, batch * 8, -1f, 3f);
        var y = new float[x.Length];
        layer.EnsureCapacity(batch);
        layer.Forward(x, y, batch, training: true);
        for (int c = 0; c < 2; c++)
        {
            var values = Enumerable.Range(0, batch * 4).Select(r => (double)x[r * 2 + c]).ToArray();
            double mean = values.Average(), variance = values.Sum(v => (v - mean) * (v - mean)) / values.Length;
            for (int r = 0; r < values.Length; r++)
                Assert.Equal((values[r] - mean) / Math.Sqrt(variance + 1e-5), y[r * 2 + c], 1e-4);
            Assert.Equal(0.1 * mean, layer.RunningMean[c], 1e-5);
            Assert.Equal(0.9 + 0.1 * variance * values.Length / (values.Length - 1), layer.RunningVariance[c], 1e-5);
        }
        // Inference uses the running statistics.
        layer.Forward(x, y, batch, training: false);
        for (int i = 0; i < x.Length; i++)
            Assert.Equal((x[i] - layer.RunningMean[i % 2]) / Math.Sqrt(layer.RunningVariance[i % 2] + 1e-5), y[i], 1e-4);
    }

    // ---------------------------------------------------------------- Activations

    [Theory]
    [InlineData(ActivationKind.ReLU)]
    [InlineData(ActivationKind.LeakyReLU)]
    [InlineData(ActivationKind.Tanh)]
    [InlineData(ActivationKind.Sigmoid)]
    public void Activation_backward_matches_finite_differences(ActivationKind kind)
    {
        var random = new Random(40 + (int)kind);
        // 3 × 13 = 39 values: the vectorised ReLU path and its scalar tail both run. |x| ≥ 0.1 keeps away from the kink.
        var layer = new ActivationLayer("act", [13], kind, _pool);
        var x = AwayFromZero(random, 3 * 13, 0.1f, 2f);
        CheckLayer(layer, x, 3, random);
    }

    [Theory]
    [InlineData(ActivationKind.ReLU)]
    [InlineData(ActivationKind.LeakyReLU)]
    [InlineData(ActivationKind.Tanh)]
    [InlineData(ActivationKind.Sigmoid)]
    public void Activation_forward_matches_its_formula(ActivationKind kind)
    {
        var x = AwayFromZero(new Random(50), 40, 0.01f, 3f);
        var layer = new ActivationLayer("act", [40], kind, _pool);
        var y = new float[40];
        layer.Forward(x, y, 1, false);
        for (int i = 0; i < 40; i++)
        {
            double v = x[i];
            double expected = kind switch
            {
                ActivationKind.ReLU => Math.Max(v, 0),
                ActivationKind.LeakyReLU => v > 0 ? v : 0.01 * v,
                ActivationKind.Tanh => Math.Tanh(v),
                _ => 1 / (1 + Math.Exp(-v)),
            };
            Assert.Equal(expected, y[i], 1e-5);
        }
    }

    [Fact]
    public void Activation_on_more_than_one_chunk_runs_in_parallel_and_matches()
    {
        // 2 × 40000 values span three 32K chunks: the pool path must agree with the element-wise formula.
        var random = new Random(51);
        var layer = new ActivationLayer("act", [40000], ActivationKind.Tanh, _pool);
        var x = Uniform(random, 80000, -3f, 3f);
        var y = new float[80000];
        layer.Forward(x, y, 2, true);
        var dy = Uniform(random, 80000);
        var dx = new float[80000];
        layer.Backward(x, y, dy, dx, 2);
        for (int i = 0; i < 80000; i += 997)
        {
            Assert.Equal(Math.Tanh(x[i]), y[i], 1e-5);
            Assert.Equal(dy[i] * (1 - Math.Tanh(x[i]) * Math.Tanh(x[i])), dx[i], 1e-5);
        }
        Assert.Equal(Math.Tanh(x[^1]), y[^1], 1e-5);
    }

    // ---------------------------------------------------------------- Dropout

    [Fact]
    public void Dropout_gradient_is_the_scaled_mask_of_the_forward_pass()
    {
        const float rate = 0.3f;
        var layer = new DropoutLayer("dropout", [50], rate, seed: 5);
        const int batch = 40;
        var random = new Random(60);
        var x = AwayFromZero(random, batch * 50, 0.1f, 1f);
        var y = new float[x.Length];
        layer.Forward(x, y, batch, training: true);
        var dy = Uniform(random, x.Length);
        var dx = new float[x.Length];
        layer.Backward(x, y, dy, dx, batch);
        float keepScale = 1f / (1f - rate);
        int dropped = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float mask = y[i] / x[i];
            bool kept = Math.Abs(mask - keepScale) < 1e-5f;
            Assert.True(kept || y[i] == 0f, $"y[{i}] = {y[i]} is neither 0 nor x·{keepScale}.");
            Assert.Equal(kept ? dy[i] * keepScale : 0f, dx[i], 1e-6);
            if (!kept) dropped++;
        }
        // 2000 Bernoulli(0.3) draws: 600 ± 20.5 (σ); ±100 is ~5σ.
        Assert.InRange(dropped, 500, 700);
    }

    [Fact]
    public void Dropout_is_identity_in_inference_and_draws_a_new_mask_each_training_call()
    {
        var layer = new DropoutLayer("dropout", [100], 0.5f, seed: 9);
        var x = Enumerable.Repeat(1f, 100).ToArray();
        var y = new float[100];
        layer.Forward(x, y, 1, training: false);
        Assert.Equal(x, y);
        var first = new float[100];
        var second = new float[100];
        layer.Forward(x, first, 1, training: true);
        layer.Forward(x, second, 1, training: true);
        Assert.NotEqual(first, second);
        // Same seed, same call sequence: same masks.
        var again = new DropoutLayer("dropout", [100], 0.5f, seed: 9);
        var replay = new float[100];
        again.Forward(x, replay, 1, training: true);
        Assert.Equal(first, replay);
    }

    [Fact]
    public void Dropout_with_rate_zero_passes_the_gradient_through()
    {
        // Rate 0 is allowed (DropoutDefinition accepts [0, 1)) and must behave as the identity in both directions.
        var net = new SequentialNetwork([Layers.Dense(4), Layers.Dropout(0f), Layers.Dense(3)], [5], Context(_pool));
        net.EnsureCapacity(2);
        var random = new Random(61);
        Uniform(random, 10).CopyTo(net.Input, 0);
        net.Forward(2, training: true);
        Uniform(random, 6).CopyTo(net.OutputGradient, 0);
        net.Backward(2);
        var dropout = net.Layers[1];
        var dense0 = (DenseLayer)net.Layers[0];
        Assert.Empty(dropout.Parameters);
        // The gradient reaching the first dense layer must be the one leaving the second: not all zero.
        Assert.Contains(dense0.Weight.Gradient, g => g != 0f);

        // And directly at the layer.
        var layer = new DropoutLayer("dropout", [6], 0f, seed: 1);
        layer.EnsureCapacity(2);
        var x = Uniform(random, 12);
        var y = new float[12];
        layer.Forward(x, y, 2, training: true);
        Assert.Equal(x, y);
        var dy = Uniform(random, 12);
        var dx = new float[12];
        layer.Backward(x, y, dy, dx, 2);
        Assert.Equal(dy, dx);
    }

    // ---------------------------------------------------------------- Losses

    [Fact]
    public void SoftmaxCrossEntropy_gradient_matches_finite_differences_and_value_matches_formula()
    {
        var random = new Random(70);
        const int batch = 4, classes = 5;
        var logits = Uniform(random, batch * classes, -3f, 3f);
        logits[3] = 40f; // large logits must stay stable
        var labels = new float[] { 0, 3, 4, 2 };
        var loss = new SoftmaxCrossEntropyLoss();
        var gradient = new float[logits.Length];
        double value = loss.Compute(logits, labels, batch, classes, gradient);

        double expected = 0;
        for (int b = 0; b < batch; b++)
        {
            var z = Enumerable.Range(0, classes).Select(c => (double)logits[b * classes + c]).ToArray();
            double max = z.Max();
            double lse = max + Math.Log(z.Sum(v => Math.Exp(v - max)));
            expected += lse - z[(int)labels[b]];
        }
        Assert.Equal(expected / batch, value, 1e-5);

        var scratch = new float[logits.Length];
        Compare("softmax-ce", gradient, logits, () => loss.Compute(logits, labels, batch, classes, scratch), 1e-2f, 5e-4, 1e-2);
    }

    [Fact]
    public void BinaryCrossEntropy_gradient_matches_finite_differences_and_value_matches_formula()
    {
        var random = new Random(71);
        const int batch = 6;
        var logits = Uniform(random, batch, -4f, 4f);
        logits[0] = 30f;
        logits[1] = -30f;
        var labels = new float[] { 0, 1, 1, 0, 1, 0 };
        var loss = new BinaryCrossEntropyLoss();
        var gradient = new float[batch];
        double value = loss.Compute(logits, labels, batch, 1, gradient);
        double expected = 0;
        for (int b = 0; b < batch; b++)
        {
            // −ln σ(z) = ln(1 + e^−z) and −ln(1 − σ(z)) = ln(1 + e^z), exact in double for |z| ≤ 30.
            double z = logits[b];
            expected += labels[b] == 1 ? Math.Log(1 + Math.Exp(-z)) : Math.Log(1 + Math.Exp(z));
        }
        Assert.Equal(expected / batch, value, 1e-4);
        var scratch = new float[batch];
        Compare("bce", gradient, logits, () => loss.Compute(logits, labels, batch, 1, scratch), 1e-2f, 5e-4, 1e-2);
    }

    [Fact]
    public void MeanSquaredError_gradient_matches_finite_differences_and_value_matches_formula()
    {
        var random = new Random(72);
        const int batch = 5;
        var outputs = Uniform(random, batch, -2f, 2f);
        var labels = Uniform(random, batch, -2f, 2f);
        var loss = new MeanSquaredErrorLoss();
        var gradient = new float[batch];
        double value = loss.Compute(outputs, labels, batch, 1, gradient);
        Assert.Equal(Enumerable.Range(0, batch).Average(i => Math.Pow(outputs[i] - labels[i], 2)), value, 1e-5);
        var scratch = new float[batch];
        Compare("mse", gradient, outputs, () => loss.Compute(outputs, labels, batch, 1, scratch), 1e-2f, 5e-4, 1e-2);
    }

    // ---------------------------------------------------------------- Whole network

    [Fact]
    public void Sequential_network_gradient_matches_finite_differences_on_sampled_parameters()
    {
        var random = new Random(80);
        LayerDefinition[] definitions = [Layers.Conv2d(3, 3, padding: 1), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Flatten(), Layers.Dense(4)];
        var net = new SequentialNetwork(definitions, [6, 6, 2], Context(_pool, seed: 3));
        Assert.Equal(["conv0", "relu0", "maxpool0", "flatten0", "dense0"], net.Layers.Select(l => l.Name));
        var conv = (Conv2dLayer)net.Layers[0];
        var dense = (DenseLayer)net.Layers[4];
        Uniform(random, 3, -0.2f, 0.2f).CopyTo(conv.Bias!.Value, 0);
        Uniform(random, 4, -0.2f, 0.2f).CopyTo(dense.Bias!.Value, 0);
        const int batch = 3;
        net.EnsureCapacity(batch);
        var input = Uniform(random, batch * 72, -2f, 2f);
        var labels = new float[] { 1, 3, 0 };
        var loss = new SoftmaxCrossEntropyLoss();

        input.CopyTo(net.Input, 0);
        var output = net.Forward(batch, training: true);
        loss.Compute(output, labels, batch, 4, net.OutputGradient);
        net.Backward(batch);
        var analytic = net.Parameters.Select(p => (float[])p.Gradient.Clone()).ToArray();
        Assert.Equal(4, analytic.Length);

        var scratch = new float[batch * 4];
        double Loss()
        {
            input.CopyTo(net.Input, 0);
            return loss.Compute(net.Forward(batch, training: true), labels, batch, 4, scratch);
        }

        for (int p = 0; p < net.Parameters.Count; p++)
        {
            var parameter = net.Parameters[p];
            var indices = Enumerable.Range(0, 12).Select(_ => random.Next(parameter.Length)).Distinct();
            Compare(parameter.Name, analytic[p], parameter.Value, Loss, 1e-3f, 1e-3, 3e-2, indices);
        }
    }

    // ---------------------------------------------------------------- The checker itself

    /// <summary>y = x² element-wise, with a backward pass that is wrong in a chosen way.</summary>
    private sealed class SquareLayer(int size, Func<float, float, float> backward) : Layer("square", [size], [size])
    {
        public override void Forward(float[] x, float[] y, int batch, bool training)
        {
            for (int i = 0; i < batch * InputSize; i++) y[i] = x[i] * x[i];
        }

        public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
        {
            for (int i = 0; i < batch * InputSize; i++) dx![i] = backward(x[i], dy[i]);
        }
    }

    [Fact]
    public void The_checker_accepts_a_correct_backward_and_rejects_a_missing_factor_or_a_wrong_index()
    {
        var random = new Random(90);
        var x = Uniform(random, 12);
        CheckLayer(new SquareLayer(4, (xi, dy) => 2 * xi * dy), x, 3, new Random(1));
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => CheckLayer(new SquareLayer(4, (xi, dy) => xi * dy), x, 3, new Random(1)));
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => CheckLayer(new SquareLayer(4, (xi, dy) => 2 * xi * dy * 1.05f), x, 3, new Random(1)));
        var shifted = new ShiftedSquareLayer(4);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => CheckLayer(shifted, x, 3, new Random(1)));
    }

    /// <summary>Correct formula, but dx[i] takes dy of the neighbouring element (an index bug).</summary>
    private sealed class ShiftedSquareLayer(int size) : Layer("shifted", [size], [size])
    {
        public override void Forward(float[] x, float[] y, int batch, bool training)
        {
            for (int i = 0; i < batch * InputSize; i++) y[i] = x[i] * x[i];
        }

        public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
        {
            int n = batch * InputSize;
            for (int i = 0; i < n; i++) dx![i] = 2 * x[i] * dy[(i + 1) % n];
        }
    }
}
