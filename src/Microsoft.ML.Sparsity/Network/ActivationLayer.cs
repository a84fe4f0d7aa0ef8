using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>Element-wise activations, processed in parallel chunks (they are memory-bound).</summary>
internal sealed class ActivationLayer : Layer
{
    private const int Chunk = 1 << 15;
    internal const float LeakySlope = 0.01f;
    private readonly Action<int> _forward, _backward;
    private readonly WorkerPool _pool;
    private float[]? _x, _y, _dy, _dx;
    private int _length;

    public ActivationLayer(string name, int[] shape, ActivationKind kind, WorkerPool pool) : base(name, shape, shape)
    {
        _pool = pool;
        Activation = kind;
        _forward = ForwardChunk;
        _backward = BackwardChunk;
    }

    public ActivationKind Activation { get; }

    public override void Forward(float[] x, float[] y, int batch, bool training)
    {
        (_x, _y, _length) = (x, y, batch * InputSize);
        Run(_forward);
        (_x, _y) = (null, null);
    }

    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        if (dx is null) return;
        (_x, _y, _dy, _dx, _length) = (x, y, dy, dx, batch * InputSize);
        Run(_backward);
        (_x, _y, _dy, _dx) = (null, null, null, null);
    }

    private void Run(Action<int> body)
    {
        int chunks = (_length + Chunk - 1) / Chunk;
        _pool.For(chunks, body);
    }

    private void ForwardChunk(int chunk)
    {
        int start = chunk * Chunk, n = Math.Min(Chunk, _length - start);
        var x = _x.AsSpan(start, n);
        var y = _y.AsSpan(start, n);
        switch (Activation)
        {
            case ActivationKind.ReLU: TensorPrimitives.Max(x, 0f, y); break;
            case ActivationKind.LeakyReLU:
                for (int i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : LeakySlope * x[i];
                break;
            case ActivationKind.Tanh: TensorPrimitives.Tanh(x, y); break;
            case ActivationKind.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            default: throw new InvalidOperationException($"Unknown activation {Activation}.");
        }
    }

    private void BackwardChunk(int chunk)
    {
        int start = chunk * Chunk, n = Math.Min(Chunk, _length - start);
        var x = _x.AsSpan(start, n);
        var y = _y.AsSpan(start, n);
        var dy = _dy.AsSpan(start, n);
        var dx = _dx.AsSpan(start, n);
        switch (Activation)
        {
            case ActivationKind.ReLU: ReluBackward(y, dy, dx); break;
            case ActivationKind.LeakyReLU:
                for (int i = 0; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : LeakySlope * dy[i];
                break;
            case ActivationKind.Tanh:
                // dx = dy · (1 − y²)
                TensorPrimitives.Multiply(y, y, dx);
                TensorPrimitives.Subtract(1f, dx, dx);
                TensorPrimitives.Multiply(dx, dy, dx);
                break;
            case ActivationKind.Sigmoid:
                // dx = dy · y · (1 − y)
                TensorPrimitives.Subtract(1f, y, dx);
                TensorPrimitives.Multiply(dx, y, dx);
                TensorPrimitives.Multiply(dx, dy, dx);
                break;
            default: throw new InvalidOperationException($"Unknown activation {Activation}.");
        }
    }

    private static void ReluBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= y.Length - 8; i += 8)
            {
                var mask = Vector256.GreaterThan(Vector256.Create(y[i..]), Vector256<float>.Zero);
                (mask & Vector256.Create(dy[i..])).CopyTo(dx[i..]);
            }
        }
        else if (Vector128.IsHardwareAccelerated) // ARM64 (NEON) and x86 without AVX2
        {
            for (; i <= y.Length - 4; i += 4)
            {
                var mask = Vector128.GreaterThan(Vector128.Create(y[i..]), Vector128<float>.Zero);
                (mask & Vector128.Create(dy[i..])).CopyTo(dx[i..]);
            }
        }
        for (; i < y.Length; i++) dx[i] = y[i] > 0 ? dy[i] : 0f;
    }
}
