using System.Numerics.Tensors;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>
/// Batch normalisation over the last dimension (a vector's features or a channels-last image's channels).
/// Training normalises with the batch's mean and biased variance and updates the running estimates (with the
/// unbiased variance, as PyTorch does); inference uses the running estimates.
/// </summary>
internal sealed class BatchNormLayer : Layer
{
    private readonly float[] _mean, _invStd, _scale, _shift;
    private float[] _xHat = [];

    public BatchNormLayer(string name, int[] shape, float momentum, float epsilon, LayerBuildContext context) : base(name, shape, shape)
    {
        Channels = shape[^1];
        Momentum = momentum;
        Epsilon = epsilon;
        Gamma = context.NewParameter(name, "gamma", [Channels], ParameterKind.Normalization);
        Beta = context.NewParameter(name, "beta", [Channels], ParameterKind.Normalization);
        Gamma.Value.AsSpan().Fill(1f);
        RunningMean = new float[Channels];
        RunningVariance = new float[Channels];
        RunningVariance.AsSpan().Fill(1f);
        (_mean, _invStd, _scale, _shift) = (new float[Channels], new float[Channels], new float[Channels], new float[Channels]);
        Parameters = [Gamma, Beta];
    }

    public int Channels { get; }
    public float Momentum { get; }
    public float Epsilon { get; }
    public Parameter Gamma { get; }
    public Parameter Beta { get; }
    public float[] RunningMean { get; }
    public float[] RunningVariance { get; }
    public override IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Inference's y = x·scale + shift per channel, from the running estimates: scale = γ / √(var + ε), shift = β − mean·scale.</summary>
    public void InferenceAffine(Span<float> scale, Span<float> shift)
    {
        for (int c = 0; c < Channels; c++)
        {
            scale[c] = Gamma.Value[c] / MathF.Sqrt(RunningVariance[c] + Epsilon);
            shift[c] = Beta.Value[c] - RunningMean[c] * scale[c];
        }
    }

    public override void EnsureCapacity(int batch)
    {
        if (_xHat.Length < batch * InputSize) _xHat = new float[batch * InputSize];
    }

    public override void Forward(float[] x, float[] y, int batch, bool training)
    {
        int rows = batch * InputSize / Channels;
        if (training)
        {
            EnsureCapacity(batch);
            RowOps.SumRows(x, _mean, rows);
            TensorPrimitives.Multiply(_mean, 1f / rows, _mean);
            // Variance from the centred values (kept in xHat), then xHat is scaled in place.
            _invStd.AsSpan().Clear();
            for (int r = 0; r < rows; r++)
            {
                var centred = _xHat.AsSpan(r * Channels, Channels);
                TensorPrimitives.Subtract(x.AsSpan(r * Channels, Channels), _mean, centred);
                TensorPrimitives.MultiplyAdd(centred, centred, _invStd, _invStd);
            }
            for (int c = 0; c < Channels; c++)
            {
                float variance = _invStd[c] / rows;
                float unbiased = rows > 1 ? variance * rows / (rows - 1) : variance;
                RunningMean[c] = (1 - Momentum) * RunningMean[c] + Momentum * _mean[c];
                RunningVariance[c] = (1 - Momentum) * RunningVariance[c] + Momentum * unbiased;
                _invStd[c] = 1f / MathF.Sqrt(variance + Epsilon);
            }
            for (int r = 0; r < rows; r++)
            {
                var xHat = _xHat.AsSpan(r * Channels, Channels);
                TensorPrimitives.Multiply(xHat, _invStd, xHat);
                TensorPrimitives.MultiplyAdd(xHat, Gamma.Value, Beta.Value, y.AsSpan(r * Channels, Channels));
            }
        }
        else
        {
            InferenceAffine(_scale, _shift);
            for (int r = 0; r < rows; r++)
                TensorPrimitives.MultiplyAdd(x.AsSpan(r * Channels, Channels), _scale, _shift, y.AsSpan(r * Channels, Channels));
        }
    }

    // With g = γ·invStd: dβ = Σ dy, dγ = Σ dy·x̂, dx = g/N · (N·dy − dβ − x̂·dγ).
    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        int rows = batch * InputSize / Channels;
        RowOps.SumRows(dy, Beta.Gradient, rows);
        Gamma.Gradient.AsSpan().Clear();
        for (int r = 0; r < rows; r++)
            TensorPrimitives.MultiplyAdd(dy.AsSpan(r * Channels, Channels), _xHat.AsSpan(r * Channels, Channels), Gamma.Gradient, Gamma.Gradient);
        if (dx is null) return;
        TensorPrimitives.Multiply(Gamma.Value, _invStd, _scale);
        TensorPrimitives.Multiply(_scale, 1f / rows, _scale);
        TensorPrimitives.Negate(Gamma.Gradient, _shift);
        for (int r = 0; r < rows; r++)
        {
            var d = dx.AsSpan(r * Channels, Channels);
            TensorPrimitives.Multiply(dy.AsSpan(r * Channels, Channels), rows, d);
            TensorPrimitives.Subtract(d, Beta.Gradient, d);
            TensorPrimitives.MultiplyAdd(_xHat.AsSpan(r * Channels, Channels), _shift, d, d);
            TensorPrimitives.Multiply(d, _scale, d);
        }
    }
}
