using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Training;

/// <summary>
/// Optimiser updates against reference implementations written from PyTorch's documented algorithms
/// (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW), in double precision, over several steps.
/// </summary>
public sealed class OptimizerTests : IDisposable
{
    private const int Steps = 6;
    private readonly WorkerPool _pool = new(2);

    public void Dispose() => _pool.Dispose();

    // Lengths 37 (vector body + scalar tail) and 16384 + 21 (two optimiser chunks, run on two threads).
    private static Parameter[] MakeParameters(Random random)
    {
        var a = new Parameter("a", [37], ParameterKind.Weight);
        var b = new Parameter("b", [16384 + 21], ParameterKind.Bias);
        foreach (var p in new[] { a, b })
            for (int i = 0; i < p.Length; i++) p.Value[i] = (float)(random.NextDouble() * 2 - 1);
        return [a, b];
    }

    /// <summary>The gradient of step t: depends on the current weights (as real gradients do) and on t.</summary>
    private static float Gradient(int step, int index, float w) => 0.5f * w + MathF.Sin(0.7f * index + 1.3f * step) * 0.3f;

    private static float LearningRateAt(int step) => 0.05f * (1 + step % 3) / 2; // varies, as a schedule would

    private delegate void ReferenceStep(int t, double lr, double[] w, double[] g, double[][] state);

    private void RunAgainstReference(OptimizerOptions options, int stateArrays, ReferenceStep reference, double tolerance = 2e-5)
    {
        options.Validate();
        var parameters = MakeParameters(new Random(4));
        var expected = parameters.Select(p => p.Value.Select(v => (double)v).ToArray()).ToArray();
        var state = parameters.Select(p => Enumerable.Range(0, stateArrays).Select(_ => new double[p.Length]).ToArray()).ToArray();
        var optimizer = options.Create(parameters, _pool);
        for (int t = 1; t <= Steps; t++)
        {
            float lr = LearningRateAt(t);
            for (int p = 0; p < parameters.Length; p++)
            {
                var g = new double[parameters[p].Length];
                for (int i = 0; i < g.Length; i++)
                {
                    // The engine and the reference see the same gradient (computed from the engine's float weights).
                    parameters[p].Gradient[i] = Gradient(t, i, parameters[p].Value[i]);
                    g[i] = parameters[p].Gradient[i];
                }
                reference(t, lr, expected[p], g, state[p]);
            }
            optimizer.Step(lr);
            Assert.Equal(t, optimizer.StepCount);
            for (int p = 0; p < parameters.Length; p++)
            for (int i = 0; i < parameters[p].Length; i++)
            {
                double e = expected[p][i], a = parameters[p].Value[i];
                Assert.True(Math.Abs(a - e) <= tolerance * (1 + Math.Abs(e)),
                    $"step {t}, parameter {parameters[p].Name}[{i}]: got {a:G9}, reference {e:G9}.");
                // Re-sync to the engine's float value so rounding differences do not compound over the steps.
                expected[p][i] = a;
            }
        }
    }

    // torch.optim.SGD: g ← g + λθ; if μ ≠ 0: b ← μb + g (b₁ = g); g ← g + μb (Nesterov) or g ← b; θ ← θ − γg.
    private static ReferenceStep Sgd(double momentum, double decay, bool nesterov) => (t, lr, w, g, state) =>
    {
        for (int i = 0; i < w.Length; i++)
        {
            double gi = g[i] + decay * w[i];
            if (momentum != 0)
            {
                double b = t == 1 ? gi : momentum * state[0][i] + gi;
                state[0][i] = b;
                gi = nesterov ? gi + momentum * b : b;
            }
            w[i] -= lr * gi;
        }
    };

    [Fact]
    public void Plain_sgd_matches_the_reference()
    {
        var options = new SgdOptimizerOptions { LearningRate = 0.1f, Momentum = 0 };
        RunAgainstReference(options, 0, Sgd(0, 0, false));
    }

    [Fact]
    public void Sgd_with_momentum_matches_the_reference()
    {
        var options = new SgdOptimizerOptions { LearningRate = 0.1f, Momentum = 0.9f };
        RunAgainstReference(options, 1, Sgd(0.9, 0, false));
    }

    [Fact]
    public void Sgd_with_nesterov_momentum_matches_the_reference()
    {
        var options = new SgdOptimizerOptions { LearningRate = 0.1f, Momentum = 0.8f, Nesterov = true };
        RunAgainstReference(options, 1, Sgd(0.8, 0, true));
    }

    [Fact]
    public void Sgd_with_weight_decay_matches_the_reference()
    {
        RunAgainstReference(new SgdOptimizerOptions { LearningRate = 0.1f, Momentum = 0, WeightDecay = 0.05f }, 0, Sgd(0, 0.05, false));
        RunAgainstReference(new SgdOptimizerOptions { LearningRate = 0.1f, Momentum = 0.9f, WeightDecay = 0.05f }, 1, Sgd(0.9, 0.05, false));
        RunAgainstReference(new SgdOptimizerOptions { LearningRate = 0.1f, Momentum = 0.9f, WeightDecay = 0.05f, Nesterov = true }, 1, Sgd(0.9, 0.05, true));
    }

    [Fact]
    public void First_sgd_step_is_exactly_minus_lr_times_gradient()
    {
        var p = new Parameter("w", [3], ParameterKind.Weight);
        p.Value[0] = 1f; p.Value[1] = -2f; p.Value[2] = 0.5f;
        p.Gradient[0] = 0.25f; p.Gradient[1] = -1f; p.Gradient[2] = 2f;
        var optimizer = new SgdOptimizerOptions { LearningRate = 0.5f, Momentum = 0.9f }.Create([p], _pool);
        optimizer.Step(0.5f);
        Assert.Equal(new[] { 0.875f, -1.5f, -0.5f }, p.Value);
        optimizer.Step(0.5f); // same gradient again: v = 0.9·g + g = 1.9·g
        Assert.Equal(new[] { 0.875f - 0.5f * 1.9f * 0.25f, -1.5f + 0.5f * 1.9f, -0.5f - 0.5f * 1.9f * 2f }, p.Value);
    }

    // torch.optim.Adam / AdamW:
    //   AdamW: θ ← θ(1 − γλ);  Adam: g ← g + λθ
    //   m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  m̂ = m / (1 − β₁ᵗ);  v̂ = v / (1 − β₂ᵗ);  θ ← θ − γ·m̂ / (√v̂ + ε)
    private static ReferenceStep Adam(double b1, double b2, double eps, double decay, bool decoupled) => (t, lr, w, g, state) =>
    {
        var (m, v) = (state[0], state[1]);
        for (int i = 0; i < w.Length; i++)
        {
            double gi = g[i];
            if (decoupled) w[i] *= 1 - lr * decay;
            else gi += decay * w[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            double mHat = m[i] / (1 - Math.Pow(b1, t)), vHat = v[i] / (1 - Math.Pow(b2, t));
            w[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
        }
    };

    [Fact]
    public void Adam_matches_the_reference()
    {
        var options = new AdamOptimizerOptions { LearningRate = 0.01f };
        RunAgainstReference(options, 2, Adam(0.9, 0.999, 1e-8, 0, false));
    }

    [Fact]
    public void Adam_with_custom_betas_and_epsilon_matches_the_reference()
    {
        var options = new AdamOptimizerOptions { LearningRate = 0.01f, Beta1 = 0.8f, Beta2 = 0.95f, Epsilon = 1e-3f };
        RunAgainstReference(options, 2, Adam(0.8, 0.95, 1e-3, 0, false));
    }

    [Fact]
    public void Adam_with_L2_weight_decay_matches_the_reference()
    {
        var options = new AdamOptimizerOptions { LearningRate = 0.01f, WeightDecay = 0.1f };
        RunAgainstReference(options, 2, Adam(0.9, 0.999, 1e-8, 0.1, false));
    }

    [Fact]
    public void AdamW_matches_the_reference()
    {
        var options = new AdamOptimizerOptions { LearningRate = 0.01f, WeightDecay = 0.1f, DecoupledWeightDecay = true };
        RunAgainstReference(options, 2, Adam(0.9, 0.999, 1e-8, 0.1, true));
    }

    [Fact]
    public void Adam_first_step_moves_every_weight_by_about_the_learning_rate()
    {
        // With bias correction, step 1 gives m̂ = g and v̂ = g², so the update is −γ·sign(g) (up to ε).
        var p = new Parameter("w", [4], ParameterKind.Weight);
        p.Gradient[0] = 3f; p.Gradient[1] = -0.01f; p.Gradient[2] = 100f; p.Gradient[3] = -7f;
        var optimizer = new AdamOptimizerOptions { LearningRate = 0.01f }.Create([p], _pool);
        optimizer.Step(0.01f);
        Assert.Equal(-0.01f, p.Value[0], 1e-5);
        Assert.Equal(0.01f, p.Value[1], 1e-5);
        Assert.Equal(-0.01f, p.Value[2], 1e-5);
        Assert.Equal(0.01f, p.Value[3], 1e-5);
    }

    [Fact]
    public void Adam_and_AdamW_differ_when_weight_decay_is_set()
    {
        float[] Run(bool decoupled)
        {
            var p = new Parameter("w", [2], ParameterKind.Weight);
            p.Value[0] = 2f; p.Value[1] = -1f;
            var optimizer = new AdamOptimizerOptions { LearningRate = 0.1f, WeightDecay = 0.5f, DecoupledWeightDecay = decoupled }.Create([p], _pool);
            for (int t = 0; t < 3; t++)
            {
                p.Gradient[0] = 0.01f; p.Gradient[1] = 0.02f;
                optimizer.Step(0.1f);
            }
            return p.Value;
        }
        Assert.NotEqual(Run(false), Run(true));
    }

    [Theory]
    [InlineData(0f, 0.9f, 0f)]        // learning rate must be positive
    [InlineData(float.NaN, 0.9f, 0f)]
    [InlineData(0.1f, 1f, 0f)]        // momentum in [0, 1)
    [InlineData(0.1f, -0.1f, 0f)]
    [InlineData(0.1f, 0.9f, -1f)]     // weight decay ≥ 0
    public void Invalid_sgd_options_are_rejected(float lr, float momentum, float decay)
    {
        var options = new SgdOptimizerOptions { LearningRate = lr, Momentum = momentum, WeightDecay = decay };
        var ex = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Contains(ex.ParamName, new[] { "LearningRate", "Momentum", "WeightDecay" });
    }

    [Fact]
    public void Nesterov_without_momentum_is_rejected()
    {
        var ex = Assert.Throws<ArgumentException>(new SgdOptimizerOptions { Momentum = 0, Nesterov = true }.Validate);
        Assert.Equal("Nesterov", ex.ParamName);
    }

    [Theory]
    [InlineData(1f, 0.999f, 1e-8f, "Beta1")]
    [InlineData(0.9f, 1f, 1e-8f, "Beta2")]
    [InlineData(0.9f, 0.999f, 0f, "Epsilon")]
    public void Invalid_adam_options_are_rejected(float b1, float b2, float eps, string name)
    {
        var options = new AdamOptimizerOptions { Beta1 = b1, Beta2 = b2, Epsilon = eps };
        Assert.Equal(name, Assert.Throws<ArgumentOutOfRangeException>(options.Validate).ParamName);
    }
}

/// <summary>Learning-rate schedule factors against their formulas.</summary>
public sealed class LearningRateScheduleTests
{
    [Fact]
    public void Constant_is_one_at_every_step()
    {
        var s = LearningRateSchedule.Constant();
        foreach (long step in new long[] { 0, 1, 50, 99 }) Assert.Equal(1f, s.Factor(step, 10, 100));
    }

    [Fact]
    public void Step_multiplies_by_gamma_every_n_epochs()
    {
        var s = LearningRateSchedule.Step(epochs: 2, gamma: 0.5f);
        const int perEpoch = 10, total = 60;
        // factor = γ^⌊step / (epochs·stepsPerEpoch)⌋
        foreach (long step in new long[] { 0, 1, 19, 20, 21, 39, 40, 59 })
            Assert.Equal(MathF.Pow(0.5f, step / 20), s.Factor(step, perEpoch, total), 1e-6);
        Assert.Equal(1f, s.Factor(0, perEpoch, total));
        Assert.Equal(1f, s.Factor(19, perEpoch, total));
        Assert.Equal(0.5f, s.Factor(20, perEpoch, total));
        Assert.Equal(0.25f, s.Factor(59, perEpoch, total));
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void Cosine_follows_the_annealing_formula_from_one_to_the_minimum(float minimum)
    {
        var s = LearningRateSchedule.Cosine(minimum);
        const long total = 40;
        // factor(t) = min + (1 − min)·(1 + cos(πt/T))/2
        foreach (long t in new long[] { 0, 1, 10, 20, 30, 39, 40 })
        {
            double expected = minimum + (1 - minimum) * 0.5 * (1 + Math.Cos(Math.PI * t / total));
            Assert.Equal(expected, s.Factor(t, 5, total), 1e-5);
        }
        Assert.Equal(1f, s.Factor(0, 5, total), 1e-6);
        Assert.Equal(minimum + (1 - minimum) * 0.5f, s.Factor(20, 5, total), 1e-5);
        Assert.Equal(minimum, s.Factor(40, 5, total), 1e-5);
        Assert.True(s.Factor(39, 5, total) > minimum && s.Factor(39, 5, total) < minimum + 0.01f);
        // Monotone non-increasing.
        for (long t = 1; t <= total; t++) Assert.True(s.Factor(t, 5, total) <= s.Factor(t - 1, 5, total));
    }

    [Fact]
    public void Warmup_rises_linearly_then_hands_over_to_the_schedule()
    {
        const int warmup = 4, perEpoch = 10;
        const long total = 44;
        var s = LearningRateSchedule.Cosine(0.2f).WithWarmup(warmup);
        Assert.Equal(warmup, s.WarmupSteps);
        // (step + 1) / W during warm-up.
        for (int t = 0; t < warmup; t++) Assert.Equal((t + 1f) / warmup, s.Factor(t, perEpoch, total), 1e-6);
        // Then the cosine over the remaining T − W steps, from step W.
        foreach (long t in new long[] { 4, 5, 24, 43, 44 })
        {
            double u = t - warmup, span = total - warmup;
            Assert.Equal(0.2 + 0.8 * 0.5 * (1 + Math.Cos(Math.PI * u / span)), s.Factor(t, perEpoch, total), 1e-5);
        }

        var step = LearningRateSchedule.Step(1, 0.1f).WithWarmup(5);
        Assert.Equal(0.2f, step.Factor(0, perEpoch, 100), 1e-6);
        Assert.Equal(1f, step.Factor(4, perEpoch, 100), 1e-6);
        Assert.Equal(1f, step.Factor(5, perEpoch, 100), 1e-6);
        Assert.Equal(1f, step.Factor(14, perEpoch, 100), 1e-6);
        Assert.Equal(0.1f, step.Factor(15, perEpoch, 100), 1e-6);

        var constant = LearningRateSchedule.Constant().WithWarmup(2);
        Assert.Equal(0.5f, constant.Factor(0, perEpoch, 100));
        Assert.Equal(1f, constant.Factor(1, perEpoch, 100));
        Assert.Equal(1f, constant.Factor(99, perEpoch, 100));
    }

    [Fact]
    public void Warmup_keeps_the_original_schedule_unchanged()
    {
        var cosine = LearningRateSchedule.Cosine();
        _ = cosine.WithWarmup(10);
        Assert.Equal(0, cosine.WarmupSteps);
        Assert.Equal(1f, cosine.Factor(0, 1, 100));
    }

    [Fact]
    public void Invalid_schedule_arguments_are_rejected()
    {
        Assert.Equal("epochs", Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Step(0)).ParamName);
        Assert.Equal("gamma", Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Step(1, 0f)).ParamName);
        Assert.Equal("gamma", Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Step(1, 1.5f)).ParamName);
        Assert.Equal("minimumFactor", Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(-0.1f)).ParamName);
        Assert.Equal("minimumFactor", Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(1.1f)).ParamName);
        Assert.Equal("steps", Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant().WithWarmup(-1)).ParamName);
    }
}
