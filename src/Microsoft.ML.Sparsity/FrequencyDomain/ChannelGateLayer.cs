using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.FrequencyDomain;

/// <summary>The definition of <see cref="ChannelGateLayer"/>: used by the gate-based channel selection only.</summary>
/// <param name="Penalty">λ: the loss gains λ·mean(gate).</param>
/// <param name="Temperature">τ of the Gumbel-softmax.</param>
internal sealed record ChannelGateDefinition(float Penalty, float Temperature = 1f) : LayerDefinition
{
    internal override string Kind => "gate";

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context) =>
        new ChannelGateLayer(name, RequireImage(name, inputShape, "ChannelGate"), Penalty, Temperature, context);
}

/// <summary>
/// The dynamic channel gate of "Learning in the Frequency Domain" (Xu et al., CVPR 2020), on channels-last images
/// [h, w, C]: global average pooling → 1×1 layer C→C (a dense layer on the pooled vector) → batch norm → ReLU →
/// two logits per channel from a depthwise 1×1 layer ("off" and "on"; weights N(0, 0.001²), biases 0.1 and 2.0) →
/// hard Gumbel-softmax at temperature τ with the straight-through estimator. The output is the input with each
/// channel multiplied by its gate (0 or 1, per example), and the loss gains λ·mean(gate) over the batch and channels.
/// </summary>
/// <remarks>
/// Training draws Gumbel noise g = −log(−log U) for both logits from a counter-based generator (the layer's seed and
/// the call number) and switches channel c on when l_on + g_on &gt; l_off + g_off. Backward uses the soft
/// probability p = softmax((l + g)/τ)_on: ∂gate/∂l_on = −∂gate/∂l_off = p(1 − p)/τ. Inference is deterministic:
/// on when l_on &gt; l_off. Every training forward pass adds to the per-channel counts of how often a channel was on.
/// </remarks>
internal sealed class ChannelGateLayer : Layer
{
    private readonly DenseLayer _hidden;
    private readonly BatchNormLayer _norm;
    private readonly int _channels, _pixels, _seed;
    private readonly long[] _onCounts;
    private float[] _pooled = [], _h = [], _n = [], _r = [], _p = [], _gate = [], _noise = [], _dz = [], _dh = [], _dn = [], _dpooled = [];
    private ulong _calls;
    private double _auxiliaryLoss;

    public ChannelGateLayer(string name, int[] shape, float penalty, float temperature, LayerBuildContext context) : base(name, shape, shape)
    {
        if (!(penalty >= 0 && float.IsFinite(penalty)))
            throw new ArgumentOutOfRangeException(nameof(penalty), penalty, $"Layer '{name}': the gate penalty λ must be a finite number ≥ 0.");
        if (!(temperature > 0 && float.IsFinite(temperature)))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, $"Layer '{name}': the temperature must be positive.");
        (Penalty, Temperature) = (penalty, temperature);
        _channels = shape[2];
        _pixels = shape[0] * shape[1];
        _hidden = new DenseLayer(name + ".hidden", _channels, _channels, true, context);
        _norm = new BatchNormLayer(name + ".norm", [_channels], 0.1f, 1e-5f, context);
        OffWeight = context.NewParameter(name, "off.weight", [_channels], ParameterKind.Weight);
        OffBias = context.NewParameter(name, "off.bias", [_channels], ParameterKind.Bias);
        OnWeight = context.NewParameter(name, "on.weight", [_channels], ParameterKind.Weight);
        OnBias = context.NewParameter(name, "on.bias", [_channels], ParameterKind.Bias);
        var random = new Random(context.NextSeed());
        foreach (var w in new[] { OffWeight, OnWeight })
            for (int c = 0; c < _channels; c++)
                w.Value[c] = (float)(0.001 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        OffBias.Value.AsSpan().Fill(0.1f);
        OnBias.Value.AsSpan().Fill(2.0f);
        _seed = context.NextSeed();
        _onCounts = new long[_channels];
        Parameters = [_hidden.Weight, _hidden.Bias!, _norm.Gamma, _norm.Beta, OffWeight, OffBias, OnWeight, OnBias];
    }

    public float Penalty { get; }
    public float Temperature { get; }
    public Parameter OffWeight { get; }
    public Parameter OffBias { get; }
    public Parameter OnWeight { get; }
    public Parameter OnBias { get; }
    public override IReadOnlyList<Parameter> Parameters { get; }
    public override long MultiplyAdds => (long)_channels * _channels + 2L * _pixels * _channels;

    /// <summary>λ·mean(gate) of the last training forward pass (0 after an inference pass).</summary>
    public override double AuxiliaryLoss => _auxiliaryLoss;

    /// <summary>The gates of the last forward pass, [batch, C].</summary>
    public ReadOnlySpan<float> Gates(int batch) => _gate.AsSpan(0, batch * _channels);

    /// <summary>Test seam: the forward pass uses the soft probability as the gate (the relaxation whose gradient the straight-through estimator uses).</summary>
    internal bool Relaxed { get; set; }

    /// <summary>Test seam: training forward passes reuse the previous pass's noise.</summary>
    internal bool ReplayNoise { get; set; }

    /// <summary>Examples seen by training forward passes.</summary>
    public long Examples { get; private set; }

    /// <summary>For each channel, the fraction of training examples for which it was switched on.</summary>
    public double[] OnFrequencies() => _onCounts.Select(n => Examples == 0 ? 0 : (double)n / Examples).ToArray();

    public override void EnsureCapacity(int batch)
    {
        int n = batch * _channels;
        if (_pooled.Length < n)
            (_pooled, _h, _n, _r, _p, _gate, _noise, _dz, _dh, _dn, _dpooled) =
                (new float[n], new float[n], new float[n], new float[n], new float[n], new float[n], new float[2 * n], new float[n], new float[n], new float[n], new float[n]);
        _hidden.EnsureCapacity(batch);
        _norm.EnsureCapacity(batch);
    }

    public override void Forward(float[] x, float[] y, int batch, bool training)
    {
        EnsureCapacity(batch);
        int c = _channels, n = batch * c;
        for (int b = 0; b < batch; b++)
        {
            var sum = _pooled.AsSpan(b * c, c);
            x.AsSpan(b * InputSize, c).CopyTo(sum);
            for (int p = 1; p < _pixels; p++) TensorPrimitives.Add(sum, x.AsSpan(b * InputSize + p * c, c), sum);
            TensorPrimitives.Multiply(sum, 1f / _pixels, sum);
        }
        _hidden.Forward(_pooled, _h, batch, training);
        _norm.Forward(_h, _n, batch, training);
        TensorPrimitives.Max(_n.AsSpan(0, n), 0f, _r.AsSpan(0, n));
        if (training && !ReplayNoise) DrawNoise(n);
        for (int i = 0; i < n; i++)
        {
            int ch = i % c;
            float logitDifference = OnWeight.Value[ch] * _r[i] + OnBias.Value[ch] - (OffWeight.Value[ch] * _r[i] + OffBias.Value[ch]);
            if (!training)
            {
                _gate[i] = logitDifference > 0 ? 1f : 0f;
                continue;
            }
            float z = (logitDifference + _noise[2 * i + 1] - _noise[2 * i]) / Temperature;
            _p[i] = 1f / (1f + MathF.Exp(-z));
            _gate[i] = Relaxed ? _p[i] : z > 0 ? 1f : 0f;
            if (!Relaxed && z > 0) _onCounts[ch]++;
        }
        if (training && !Relaxed) Examples += batch;
        _auxiliaryLoss = training ? Penalty * TensorPrimitives.Sum(_gate.AsSpan(0, n)) / n : 0;
        for (int b = 0; b < batch; b++)
        {
            var gate = _gate.AsSpan(b * c, c);
            for (int p = 0; p < _pixels; p++)
            {
                int at = b * InputSize + p * c;
                TensorPrimitives.Multiply(x.AsSpan(at, c), gate, y.AsSpan(at, c));
            }
        }
    }

    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        int c = _channels, n = batch * c;
        // dL/dgate = Σ_pixels dy·x + λ/(batch·C); through the soft probability: dz = dL/dgate · p(1 − p)/τ.
        var dz = _dz.AsSpan(0, n);
        dz.Fill(Penalty / n);
        for (int b = 0; b < batch; b++)
        {
            var g = dz.Slice(b * c, c);
            for (int p = 0; p < _pixels; p++)
            {
                int at = b * InputSize + p * c;
                TensorPrimitives.MultiplyAdd(dy.AsSpan(at, c), x.AsSpan(at, c), g, g);
            }
        }
        for (int i = 0; i < n; i++) dz[i] *= _p[i] * (1 - _p[i]) / Temperature;
        // Logits: l_on = w_on·r + b_on gets +dz, l_off = w_off·r + b_off gets −dz.
        OnWeight.Gradient.AsSpan().Clear();
        OnBias.Gradient.AsSpan().Clear();
        for (int b = 0; b < batch; b++)
        {
            TensorPrimitives.MultiplyAdd(dz.Slice(b * c, c), _r.AsSpan(b * c, c), OnWeight.Gradient, OnWeight.Gradient);
            TensorPrimitives.Add(OnBias.Gradient, dz.Slice(b * c, c), OnBias.Gradient);
        }
        TensorPrimitives.Negate(OnWeight.Gradient, OffWeight.Gradient);
        TensorPrimitives.Negate(OnBias.Gradient, OffBias.Gradient);
        for (int i = 0; i < n; i++)
        {
            int ch = i % c;
            _dn[i] = _n[i] > 0 ? dz[i] * (OnWeight.Value[ch] - OffWeight.Value[ch]) : 0f;
        }
        _norm.Backward(_h, _n, _dn, _dh, batch);
        _hidden.Backward(_pooled, _h, _dh, _dpooled, batch);
        if (dx is null) return;
        TensorPrimitives.Multiply(_dpooled.AsSpan(0, n), 1f / _pixels, _dpooled.AsSpan(0, n));
        for (int b = 0; b < batch; b++)
        {
            var gate = _gate.AsSpan(b * c, c);
            var fromPool = _dpooled.AsSpan(b * c, c);
            for (int p = 0; p < _pixels; p++)
            {
                int at = b * InputSize + p * c;
                TensorPrimitives.MultiplyAdd(dy.AsSpan(at, c), gate, fromPool, dx.AsSpan(at, c));
            }
        }
    }

    /// <summary>Two Gumbel samples per gate (off, on) from SplitMix64 keyed by the seed and the call number.</summary>
    private void DrawNoise(int n)
    {
        ulong state = Seeds.SplitMix((ulong)(uint)_seed << 32 ^ ++_calls);
        for (int i = 0; i < 2 * n; i++)
        {
            state = Seeds.SplitMix(state);
            double u = ((state >> 40) + 0.5) / (1UL << 24);
            _noise[i] = (float)-Math.Log(-Math.Log(u));
        }
    }
}
