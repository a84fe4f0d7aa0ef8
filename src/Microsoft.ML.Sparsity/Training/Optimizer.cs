using System.Numerics;
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

    protected Optimizer(IReadOnlyList<Parameter> parameters, WorkerPool pool, int stateSlots)
    {
        Parameters = parameters;
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

    /// <summary>Zeroes the optimiser state of masked entries (after a mask changes).</summary>
    public void ApplyMasks()
    {
        for (int p = 0; p < Parameters.Count; p++)
        {
            if (Parameters[p].Mask is not { } mask) continue;
            for (int s = 0; s < StateSlots; s++)
                System.Numerics.Tensors.TensorPrimitives.Multiply(StateOf(p, s), mask, StateOf(p, s));
        }
    }

    /// <summary>Updates one chunk; a masked parameter's updated values and state are multiplied by its mask in the same pass.</summary>
    protected abstract void Update(int parameter, int start, int length);
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
        var mask = Parameters[parameter].Mask.AsSpan();
        bool masked = !mask.IsEmpty;
        if (masked) mask = mask.Slice(start, length);
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
        if (Vector.IsHardwareAccelerated)
        {
            var vLr = new Vector<float>(lr);
            var vMu = new Vector<float>(mu);
            var vDecay = new Vector<float>(decay);
            for (; k <= w.Length - Vector<float>.Count; k += Vector<float>.Count)
            {
                var wi = new Vector<float>(w[k..]);
                var gi = new Vector<float>(g[k..]) + vDecay * wi;
                var vi = vMu * new Vector<float>(v[k..]) + gi;
                var step = _nesterov ? gi + vMu * vi : vi;
                wi -= vLr * step;
                if (masked)
                {
                    var mi = new Vector<float>(mask[k..]);
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
        var mask = Parameters[parameter].Mask.AsSpan();
        bool masked = !mask.IsEmpty;
        if (masked) mask = mask.Slice(start, length);
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
