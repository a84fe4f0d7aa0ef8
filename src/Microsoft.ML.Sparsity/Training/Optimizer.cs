using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// Updates parameters in place from their gradients. The update is element-wise, so the parameters are cut into
/// fixed chunks processed in parallel; results do not depend on the thread count.
/// </summary>
internal abstract class Optimizer
{
    private const int ChunkSize = 16384;
    private readonly WorkerPool _pool;
    private readonly (int Parameter, int Start, int Length)[] _chunks;
    private readonly Action<int> _body;
    private readonly byte[]?[] _masks;

    protected Optimizer(IReadOnlyList<Parameter> parameters, WorkerPool pool, int stateSlots)
    {
        Parameters = parameters;
        _masks = parameters.Select(p => Pack(p.Mask)).ToArray();
        _pool = pool;
        State = parameters.SelectMany(p => Enumerable.Range(0, stateSlots).Select(_ => new float[p.Length])).ToArray();
        StateSlots = stateSlots;
        _chunks = parameters
            .SelectMany((p, i) => Enumerable.Range(0, (p.Length + ChunkSize - 1) / ChunkSize)
                .Select(c => (i, c * ChunkSize, Math.Min(ChunkSize, p.Length - c * ChunkSize))))
            .ToArray();
        _body = c => Update(_chunks[c].Parameter, _chunks[c].Start, _chunks[c].Length);
    }

    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Per-parameter state arrays (momentum, moments): <see cref="StateSlots"/> consecutive arrays per parameter.</summary>
    public float[][] State { get; }

    public int StateSlots { get; }

    /// <summary>The number of steps taken (Adam's bias correction uses it).</summary>
    public long StepCount { get; set; }

    protected float LearningRate { get; private set; }

    public void Step(float learningRate)
    {
        LearningRate = learningRate;
        StepCount++;
        _pool.For(_chunks.Length, _body);
    }

    protected float[] StateOf(int parameter, int slot) => State[parameter * StateSlots + slot];

    /// <summary>
    /// Takes up the parameters' current masks and zeroes the optimiser state of masked entries. Whoever changes a mask
    /// while training calls this.
    /// </summary>
    public void ApplyMasks()
    {
        for (int p = 0; p < Parameters.Count; p++)
        {
            _masks[p] = Pack(Parameters[p].Mask, _masks[p]);
            if (Parameters[p].Mask is not { } mask) continue;
            for (int s = 0; s < StateSlots; s++)
                System.Numerics.Tensors.TensorPrimitives.Multiply(StateOf(p, s), mask, StateOf(p, s));
        }
    }

    /// <summary>Updates one chunk; a masked parameter's updated values and state are multiplied by its mask in the same pass.</summary>
    protected abstract void Update(int parameter, int start, int length);

    /// <summary>The chunk's mask as bytes (1 kept, 0 pruned), or empty when the parameter is dense.</summary>
    /// <remarks>The optimiser reads a byte per weight rather than the float mask: a quarter of the memory traffic.</remarks>
    protected ReadOnlySpan<byte> MaskOf(int parameter, int start, int length) =>
        _masks[parameter] is { } mask ? mask.AsSpan(start, length) : default;

    /// <summary>8 mask bytes as 8 floats (0 or 1).</summary>
    protected static Vector256<float> Widen(ReadOnlySpan<byte> mask)
    {
        var bytes = Vector128.CreateScalar(BinaryPrimitives.ReadUInt64LittleEndian(mask)).AsByte();
        var (low, high) = Vector128.Widen(Vector128.WidenLower(bytes));
        return Vector256.Create(Vector128.ConvertToSingle(low.AsInt32()), Vector128.ConvertToSingle(high.AsInt32()));
    }

    /// <summary>4 mask bytes as 4 floats (0 or 1).</summary>
    protected static Vector128<float> Widen4(ReadOnlySpan<byte> mask)
    {
        var bytes = Vector128.CreateScalar(BinaryPrimitives.ReadUInt32LittleEndian(mask)).AsByte();
        return Vector128.ConvertToSingle(Vector128.WidenLower(Vector128.WidenLower(bytes)).AsInt32());
    }

    /// <summary>The mask as bytes, written into <paramref name="reuse"/> when it has the length (mask updates repack every step they make).</summary>
    private static byte[]? Pack(float[]? mask, byte[]? reuse = null)
    {
        if (mask is null) return null;
        byte[] bytes = reuse?.Length == mask.Length ? reuse : new byte[mask.Length];
        for (int i = 0; i < mask.Length; i++) bytes[i] = mask[i] != 0 ? (byte)1 : (byte)0;
        return bytes;
    }
}

internal sealed class SgdOptimizer(IReadOnlyList<Parameter> parameters, WorkerPool pool, SgdOptimizerOptions options)
    : Optimizer(parameters, pool, options.Momentum > 0 ? 1 : 0)
{
    private readonly float _momentum = options.Momentum, _decay = options.WeightDecay;
    private readonly bool _nesterov = options.Nesterov;

    protected override void Update(int parameter, int start, int length)
    {
        var w = Parameters[parameter].Value.AsSpan(start, length);
        var g = Parameters[parameter].Gradient.AsSpan(start, length);
        var mask = MaskOf(parameter, start, length);
        bool masked = !mask.IsEmpty;
        float lr = LearningRate, mu = _momentum, decay = _decay;
        if (mu == 0)
        {
            for (int i = 0; i < w.Length; i++)
            {
                w[i] -= lr * (g[i] + decay * w[i]);
                if (masked) w[i] *= mask[i];
            }
            return;
        }
        var v = StateOf(parameter, 0).AsSpan(start, length);
        int k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vLr = Vector256.Create(lr);
            var vMu = Vector256.Create(mu);
            var vDecay = Vector256.Create(decay);
            for (; k <= w.Length - 8; k += 8)
            {
                var wi = Vector256.Create(w[k..]);
                var gi = Vector256.Create(g[k..]) + vDecay * wi;
                var vi = vMu * Vector256.Create(v[k..]) + gi;
                var step = _nesterov ? gi + vMu * vi : vi;
                wi -= vLr * step;
                if (masked)
                {
                    var mi = Widen(mask[k..]);
                    (vi, wi) = (vi * mi, wi * mi);
                }
                vi.CopyTo(v[k..]);
                wi.CopyTo(w[k..]);
            }
        }
        else if (Vector128.IsHardwareAccelerated) // ARM64 (NEON) and x86 without AVX2: the same operations, 4 lanes
        {
            var vLr = Vector128.Create(lr);
            var vMu = Vector128.Create(mu);
            var vDecay = Vector128.Create(decay);
            for (; k <= w.Length - 4; k += 4)
            {
                var wi = Vector128.Create(w[k..]);
                var gi = Vector128.Create(g[k..]) + vDecay * wi;
                var vi = vMu * Vector128.Create(v[k..]) + gi;
                var step = _nesterov ? gi + vMu * vi : vi;
                wi -= vLr * step;
                if (masked)
                {
                    var mi = Widen4(mask[k..]);
                    (vi, wi) = (vi * mi, wi * mi);
                }
                vi.CopyTo(v[k..]);
                wi.CopyTo(w[k..]);
            }
        }
        for (; k < w.Length; k++)
        {
            float gi = g[k] + decay * w[k];
            v[k] = mu * v[k] + gi;
            w[k] -= lr * (_nesterov ? gi + mu * v[k] : v[k]);
            if (masked) (v[k], w[k]) = (v[k] * mask[k], w[k] * mask[k]);
        }
    }
}

internal sealed class AdamOptimizer(IReadOnlyList<Parameter> parameters, WorkerPool pool, AdamOptimizerOptions options)
    : Optimizer(parameters, pool, 2)
{
    protected override void Update(int parameter, int start, int length)
    {
        var w = Parameters[parameter].Value.AsSpan(start, length);
        var g = Parameters[parameter].Gradient.AsSpan(start, length);
        var m = StateOf(parameter, 0).AsSpan(start, length);
        var v = StateOf(parameter, 1).AsSpan(start, length);
        var mask = MaskOf(parameter, start, length);
        bool masked = !mask.IsEmpty;
        float b1 = options.Beta1, b2 = options.Beta2, eps = options.Epsilon, decay = options.WeightDecay, lr = LearningRate;
        float correction1 = 1 - MathF.Pow(b1, StepCount), correction2 = 1 - MathF.Pow(b2, StepCount);
        float stepSize = lr / correction1, rootCorrection2 = MathF.Sqrt(correction2);
        bool decoupled = options.DecoupledWeightDecay;
        for (int i = 0; i < w.Length; i++)
        {
            float gi = decoupled ? g[i] : g[i] + decay * w[i];
            if (decoupled) w[i] *= 1 - lr * decay;
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            w[i] -= stepSize * m[i] / (MathF.Sqrt(v[i]) / rootCorrection2 + eps);
            if (masked) (w[i], m[i], v[i]) = (w[i] * mask[i], m[i] * mask[i], v[i] * mask[i]);
        }
    }
}
