using System.Runtime.Intrinsics;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>Max or average pooling over k×k windows of a channels-last image, without padding.</summary>
internal sealed class Pool2dLayer : Layer
{
    private readonly WorkerPool _pool;
    private readonly int _h, _w, _c, _k, _stride, _outH, _outW;
    private readonly Action<int> _forward, _backward, _inferMax;
    private int[] _argMax = [];
    private float[]? _x, _y, _dy, _dx;

    public Pool2dLayer(string name, int[] inputShape, PoolingKind kind, int kernel, int stride, LayerBuildContext context)
        : base(name, inputShape, OutputShapeOf(name, inputShape, kernel, stride))
    {
        _pool = context.Pool;
        Pooling = kind;
        (_h, _w, _c) = (inputShape[0], inputShape[1], inputShape[2]);
        (_k, _stride) = (kernel, stride);
        (_outH, _outW) = (OutputShape[0], OutputShape[1]);
        _forward = kind == PoolingKind.Max ? ForwardMax : ForwardAverage;
        _backward = kind == PoolingKind.Max ? BackwardMax : BackwardAverage;
        _inferMax = InferMax;
    }

    public PoolingKind Pooling { get; }
    public int KernelSize => _k;
    public int Stride => _stride;

    public override void EnsureCapacity(int batch)
    {
        if (Pooling == PoolingKind.Max && _argMax.Length < batch * OutputSize) _argMax = new int[batch * OutputSize];
    }

    public override void Forward(float[] x, float[] y, int batch, bool training)
    {
        // Inference needs no argmax (backward's scatter map): max pooling is then a plain vector max.
        bool plainMax = !training && Pooling == PoolingKind.Max;
        if (!plainMax)
            EnsureCapacity(batch);
        (_x, _y) = (x, y);
        _pool.For(batch, plainMax ? _inferMax : _forward);
        (_x, _y) = (null, null);
    }

    /// <summary>Max pooling of example <paramref name="b"/> without recording the argmax: one vector max per window tap and 8 channels.</summary>
    private void InferMax(int b)
    {
        float[] x = _x!, y = _y!;
        int inBase = b * InputSize, outBase = b * OutputSize;
        int wide = Vector256.IsHardwareAccelerated ? _c / 8 * 8 : 0, whole = Vector128.IsHardwareAccelerated ? wide + (_c - wide) / 4 * 4 : 0;
        for (int oy = 0; oy < _outH; oy++)
        for (int ox = 0; ox < _outW; ox++)
        {
            int o = outBase + (oy * _outW + ox) * _c, first = inBase + ((oy * _stride) * _w + ox * _stride) * _c;
            for (int c = 0; c < wide; c += 8)
            {
                var best = Vector256.Create(x, first + c);
                for (int ky = 0; ky < _k; ky++)
                for (int kx = 0; kx < _k; kx++)
                    best = Vector256.Max(best, Vector256.Create(x, first + (ky * _w + kx) * _c + c));
                best.CopyTo(y, o + c);
            }

            for (int c = wide; c < whole; c += 4) // ARM64 (NEON), x86 without AVX2, and 4 channels left over
            {
                var best = Vector128.Create(x, first + c);
                for (int ky = 0; ky < _k; ky++)
                for (int kx = 0; kx < _k; kx++)
                    best = Vector128.Max(best, Vector128.Create(x, first + (ky * _w + kx) * _c + c));
                best.CopyTo(y, o + c);
            }

            for (int c = whole; c < _c; c++)
            {
                float best = x[first + c];
                for (int ky = 0; ky < _k; ky++)
                for (int kx = 0; kx < _k; kx++)
                    best = MathF.Max(best, x[first + (ky * _w + kx) * _c + c]);
                y[o + c] = best;
            }
        }
    }

    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        if (dx is null) return;
        (_dy, _dx) = (dy, dx);
        _pool.For(batch, _backward);
        (_dy, _dx) = (null, null);
    }

    // The argmax is recorded as an index into the example's input, so backward is a scatter.
    private void ForwardMax(int b)
    {
        var x = _x!;
        var y = _y!;
        int inBase = b * InputSize, outBase = b * OutputSize;
        for (int oy = 0; oy < _outH; oy++)
        for (int ox = 0; ox < _outW; ox++)
        {
            int o = outBase + (oy * _outW + ox) * _c;
            int first = ((oy * _stride) * _w + ox * _stride) * _c;
            int c = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; c <= _c - 8; c += 8)
                {
                    var best = Vector256.Create(x, inBase + first + c);
                    var bestAt = Vector256.Create(first + c) + Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
                    for (int ky = 0; ky < _k; ky++)
                    for (int kx = 0; kx < _k; kx++)
                    {
                        int at = ((oy * _stride + ky) * _w + ox * _stride + kx) * _c + c;
                        var v = Vector256.Create(x, inBase + at);
                        var greater = Vector256.GreaterThan(v, best);
                        best = Vector256.ConditionalSelect(greater, v, best);
                        bestAt = Vector256.ConditionalSelect(greater.AsInt32(), Vector256.Create(at) + Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), bestAt);
                    }
                    best.CopyTo(y, o + c);
                    bestAt.CopyTo(_argMax, o + c);
                }
            }
            if (Vector128.IsHardwareAccelerated) // ARM64 (NEON), x86 without AVX2, and 4 channels left over
            {
                for (; c <= _c - 4; c += 4)
                {
                    var best = Vector128.Create(x, inBase + first + c);
                    var bestAt = Vector128.Create(first + c) + Vector128.Create(0, 1, 2, 3);
                    for (int ky = 0; ky < _k; ky++)
                    for (int kx = 0; kx < _k; kx++)
                    {
                        int at = ((oy * _stride + ky) * _w + ox * _stride + kx) * _c + c;
                        var v = Vector128.Create(x, inBase + at);
                        var greater = Vector128.GreaterThan(v, best);
                        best = Vector128.ConditionalSelect(greater, v, best);
                        bestAt = Vector128.ConditionalSelect(greater.AsInt32(), Vector128.Create(at) + Vector128.Create(0, 1, 2, 3), bestAt);
                    }
                    best.CopyTo(y, o + c);
                    bestAt.CopyTo(_argMax, o + c);
                }
            }
            for (; c < _c; c++)
            {
                int bestAt = first + c;
                float best = x[inBase + bestAt];
                for (int ky = 0; ky < _k; ky++)
                for (int kx = 0; kx < _k; kx++)
                {
                    int at = ((oy * _stride + ky) * _w + ox * _stride + kx) * _c + c;
                    if (x[inBase + at] > best) (best, bestAt) = (x[inBase + at], at);
                }
                y[o + c] = best;
                _argMax[o + c] = bestAt;
            }
        }
    }

    private void BackwardMax(int b)
    {
        var dx = _dx!;
        var dy = _dy!;
        int inBase = b * InputSize, outBase = b * OutputSize;
        dx.AsSpan(inBase, InputSize).Clear();
        for (int i = 0; i < OutputSize; i++) dx[inBase + _argMax[outBase + i]] += dy[outBase + i];
    }

    private void ForwardAverage(int b)
    {
        var x = _x!;
        var y = _y!;
        float scale = 1f / (_k * _k);
        int inBase = b * InputSize, outBase = b * OutputSize;
        for (int oy = 0; oy < _outH; oy++)
        for (int ox = 0; ox < _outW; ox++)
        {
            var sum = y.AsSpan(outBase + (oy * _outW + ox) * _c, _c);
            sum.Clear();
            for (int ky = 0; ky < _k; ky++)
            for (int kx = 0; kx < _k; kx++)
            {
                var v = x.AsSpan(inBase + ((oy * _stride + ky) * _w + ox * _stride + kx) * _c, _c);
                System.Numerics.Tensors.TensorPrimitives.Add(sum, v, sum);
            }
            System.Numerics.Tensors.TensorPrimitives.Multiply(sum, scale, sum);
        }
    }

    private void BackwardAverage(int b)
    {
        var dx = _dx!;
        var dy = _dy!;
        float scale = 1f / (_k * _k);
        int inBase = b * InputSize, outBase = b * OutputSize;
        dx.AsSpan(inBase, InputSize).Clear();
        for (int oy = 0; oy < _outH; oy++)
        for (int ox = 0; ox < _outW; ox++)
        {
            var g = dy.AsSpan(outBase + (oy * _outW + ox) * _c, _c);
            for (int ky = 0; ky < _k; ky++)
            for (int kx = 0; kx < _k; kx++)
            {
                var d = dx.AsSpan(inBase + ((oy * _stride + ky) * _w + ox * _stride + kx) * _c, _c);
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g, scale, d, d);
            }
        }
    }

    private static int[] OutputShapeOf(string name, int[] input, int k, int stride)
    {
        if (input[0] < k || input[1] < k)
            throw new ArgumentException($"Layer '{name}': a {k}×{k} pooling window does not fit the input {Shape.Format(input)}.", nameof(input));
        return [(input[0] - k) / stride + 1, (input[1] - k) / stride + 1, input[2]];
    }
}
