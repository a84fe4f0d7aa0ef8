using System.Numerics.Tensors;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>Reshapes to a vector; the values are unchanged (channels-last order).</summary>
internal sealed class FlattenLayer(string name, int[] inputShape) : Layer(name, inputShape, [Engine.Shape.Size(inputShape)])
{
    public override void Forward(float[] x, float[] y, int batch, bool training) => x.AsSpan(0, batch * InputSize).CopyTo(y);

    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        if (dx is not null) dy.AsSpan(0, batch * InputSize).CopyTo(dx);
    }
}

/// <summary>The mean of each channel over the image: [h, w, c] → [c].</summary>
internal sealed class GlobalAveragePoolLayer(string name, int[] inputShape) : Layer(name, inputShape, [inputShape[2]])
{
    private int Channels => OutputSize;
    private int Pixels => InputSize / OutputSize;

    public override void Forward(float[] x, float[] y, int batch, bool training)
    {
        for (int b = 0; b < batch; b++)
        {
            var sum = y.AsSpan(b * Channels, Channels);
            x.AsSpan(b * InputSize, Channels).CopyTo(sum);
            for (int p = 1; p < Pixels; p++) TensorPrimitives.Add(sum, x.AsSpan(b * InputSize + p * Channels, Channels), sum);
            TensorPrimitives.Multiply(sum, 1f / Pixels, sum);
        }
    }

    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        if (dx is null) return;
        for (int b = 0; b < batch; b++)
        {
            var g = dy.AsSpan(b * Channels, Channels);
            for (int p = 0; p < Pixels; p++) TensorPrimitives.Multiply(g, 1f / Pixels, dx.AsSpan(b * InputSize + p * Channels, Channels));
        }
    }
}

/// <summary>
/// Inverted dropout. The keep/drop pattern of each call comes from a counter-based generator seeded by the layer's
/// seed and the call number, so training is reproducible.
/// </summary>
internal sealed class DropoutLayer(string name, int[] shape, float rate, int seed) : Layer(name, shape, shape)
{
    private float[] _scale = [];
    private ulong _calls;

    public float Rate { get; } = rate;

    public override void EnsureCapacity(int batch)
    {
        if (_scale.Length < batch * InputSize) _scale = new float[batch * InputSize];
    }

    public override void Forward(float[] x, float[] y, int batch, bool training)
    {
        int n = batch * InputSize;
        if (!training || Rate == 0) { x.AsSpan(0, n).CopyTo(y); return; }
        EnsureCapacity(batch);
        float keep = 1f / (1f - Rate);
        ulong state = Engine.Seeds.SplitMix((ulong)(uint)seed << 32 ^ ++_calls);
        uint threshold = (uint)(Rate * uint.MaxValue);
        for (int i = 0; i < n; i++)
        {
            state = Engine.Seeds.SplitMix(state);
            _scale[i] = (uint)state >= threshold ? keep : 0f;
        }
        TensorPrimitives.Multiply(x.AsSpan(0, n), _scale.AsSpan(0, n), y.AsSpan(0, n));
    }

    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        if (dx is null) return;
        int n = batch * InputSize;
        if (Rate == 0) dy.AsSpan(0, n).CopyTo(dx);
        else TensorPrimitives.Multiply(dy.AsSpan(0, n), _scale.AsSpan(0, n), dx.AsSpan(0, n));
    }
}
