using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.FrequencyDomain;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Network.GradCheck;

namespace Microsoft.ML.Sparsity.Tests.FrequencyDomain;

/// <summary>The learned channel gate: initialisation, hard Gumbel gates, the straight-through gradient, the penalty.</summary>
public sealed class ChannelGateTests : IDisposable
{
    private const int Batch = 3, Height = 2, Width = 2, Channels = 3;
    private readonly WorkerPool _pool = new(1);

    public void Dispose() => _pool.Dispose();

    [Fact]
    public void Gates_start_mostly_on_and_are_zero_or_one()
    {
        var gate = Build(penalty: 0.5f);
        Assert.All(gate.OnBias.Value, b => Assert.Equal(2.0f, b));
        Assert.All(gate.OffBias.Value, b => Assert.Equal(0.1f, b));
        Assert.All(gate.OnWeight.Value.Concat(gate.OffWeight.Value), w => Assert.InRange(Math.Abs(w), 0, 0.01));

        const int batch = 256;
        gate.EnsureCapacity(batch);
        var x = Uniform(new Random(1), batch * gate.InputSize);
        var y = new float[x.Length];
        gate.Forward(x, y, batch, training: true);
        var gates = gate.Gates(batch).ToArray();
        Assert.All(gates, g => Assert.True(g is 0f or 1f));
        // P(on) = P(logistic noise > −1.9) = σ(1.9) ≈ 0.87.
        double on = gates.Average();
        Assert.InRange(on, 0.80, 0.93);
        Assert.Equal(0.5 * on, gate.AuxiliaryLoss, 1e-6);
        Assert.Equal(batch, gate.Examples);
        Assert.Equal(gates.Sum(), gate.OnFrequencies().Sum() * batch, 1e-6);
        // The output is the input with each example's channels switched off or kept.
        for (int i = 0; i < x.Length; i++) Assert.Equal(x[i] * gates[i / gate.InputSize * Channels + i % Channels], y[i]);

        // Inference: deterministic, on when l_on > l_off (the biases decide here), and no penalty.
        gate.Forward(x, y, batch, training: false);
        Assert.All(gate.Gates(batch).ToArray(), g => Assert.Equal(1f, g));
        Assert.Equal(0, gate.AuxiliaryLoss);
        Assert.Equal(x, y);
    }

    [Fact]
    public void Backward_is_the_exact_gradient_of_the_relaxed_gate_with_the_penalty()
    {
        // With the soft probability as the gate (same noise), the backward pass must be the exact gradient of
        // L = Σ r ⊙ y + λ·mean(gate), for the input and every parameter.
        var random = new Random(2);
        var gate = Build(penalty: 0.7f);
        Randomize(gate, random);
        gate.Relaxed = true;
        var x = Uniform(random, Batch * gate.InputSize);
        var r = Uniform(random, Batch * gate.OutputSize);
        var (dx, gradients) = ForwardBackward(gate, x, r);
        gate.ReplayNoise = true;

        double Loss()
        {
            var y = new float[x.Length];
            gate.Forward(x, y, Batch, training: true);
            return Dot(r, y, y.Length) + gate.AuxiliaryLoss;
        }

        int compared = Compare("gate dx", dx, x, Loss, 1e-3f, 2e-3, 1e-2);
        for (int p = 0; p < gate.Parameters.Count; p++)
        {
            // Batch norm right after the 1×1 layer removes its bias: the true gradient is 0.
            if (gate.Parameters[p].Name == "gate.hidden.bias") Assert.All(gradients[p], g => Assert.True(Math.Abs(g) < 1e-5, $"hidden bias gradient {g}"));
            else compared += Compare(gate.Parameters[p].Name, gradients[p], gate.Parameters[p].Value, Loss, 1e-3f, 2e-3, 1e-2);
        }
        Assert.Equal(x.Length + gate.Parameters.Sum(p => p.Length) - Channels, compared);
    }

    [Fact]
    public void The_hard_gate_passes_the_relaxed_gradient_straight_through()
    {
        // Straight-through: the forward pass uses the 0/1 gate; backward gives every parameter the relaxed gate's
        // gradient, and the input the relaxed gradient with the hard gate in place of the soft one on the direct path.
        var random = new Random(3);
        var gate = Build(penalty: 0.3f);
        Randomize(gate, random);
        var x = Uniform(random, Batch * gate.InputSize);
        var r = Uniform(random, Batch * gate.OutputSize);

        var (dxHard, hard) = ForwardBackward(gate, x, r);
        var gates = gate.Gates(Batch).ToArray();
        Assert.Contains(0f, gates);
        Assert.Contains(1f, gates);
        gate.Relaxed = true;
        gate.ReplayNoise = true;
        var (dxSoft, soft) = ForwardBackward(gate, x, r);
        var probabilities = gate.Gates(Batch).ToArray();

        for (int p = 0; p < hard.Length; p++) Assert.Equal(soft[p], hard[p]);
        for (int i = 0; i < x.Length; i++)
        {
            int g = i / gate.InputSize * Channels + i % Channels;
            Assert.Equal(dxSoft[i] + r[i] * (gates[g] - probabilities[g]), dxHard[i], 1e-5);
        }
    }

    [Fact]
    public void A_larger_penalty_switches_more_channels_off()
    {
        // One weight step on the "on" biases: the penalty's gradient pushes every on-logit down.
        var gate = Build(penalty: 10f);
        var x = Uniform(new Random(4), Batch * gate.InputSize);
        var (_, gradients) = ForwardBackward(gate, x, new float[x.Length]);
        int onBias = gate.Parameters.ToList().IndexOf(gate.OnBias);
        Assert.All(gradients[onBias], g => Assert.True(g > 0, $"d loss / d on-bias = {g}"));
        Assert.All(gradients[onBias].Zip(gradients[gate.Parameters.ToList().IndexOf(gate.OffBias)]), p => Assert.Equal(-p.First, p.Second));
    }

    private ChannelGateLayer Build(float penalty) =>
        (ChannelGateLayer)new ChannelGateDefinition(penalty).Build("gate", [Height, Width, Channels], Context(_pool, seed: 5));

    /// <summary>Logit weights large enough that every path carries a visible gradient.</summary>
    private static void Randomize(ChannelGateLayer gate, Random random)
    {
        foreach (var p in new[] { gate.OnWeight, gate.OffWeight }) Uniform(random, Channels, -1.5f, 1.5f).CopyTo(p.Value, 0);
        Uniform(random, Channels, -0.5f, 0.5f).CopyTo(gate.OnBias.Value, 0);
    }

    private static (float[] Dx, float[][] Gradients) ForwardBackward(ChannelGateLayer gate, float[] x, float[] r)
    {
        var y = new float[x.Length];
        var dx = new float[x.Length];
        gate.EnsureCapacity(Batch);
        gate.Forward(x, y, Batch, training: true);
        gate.Backward(x, y, (float[])r.Clone(), dx, Batch);
        return (dx, gate.Parameters.Select(p => (float[])p.Gradient.Clone()).ToArray());
    }
}
