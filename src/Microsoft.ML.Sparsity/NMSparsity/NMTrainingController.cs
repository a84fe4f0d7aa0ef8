using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.NMSparsity;

/// <summary>
/// Trains N:M weights from scratch. The optimiser owns the dense weights W; around each step the controller swaps in
/// the projected weights W̃ = W ⊙ (E + (1 − E)·β) for the forward and backward passes (E: top-N |w| per group of M, ⌈N·r/M⌉ of a ragged last group of r inputs),
/// then adds λ·(1 − E) ⊙ W to the gradient and swaps W back for the update (straight-through estimator).
/// </summary>
internal sealed class NMTrainingController : SparsityController
{
    private readonly NMTrainingOptions _options;
    private readonly Optimizer _optimizer;
    private readonly Action<string>? _log;
    private readonly IReadOnlyList<PrunableLayer> _layers;
    private readonly float[][] _dense, _mask, _epochMask, _scratch;
    private readonly long _prunableCount;
    private int _stepsPerEpoch;
    private long _totalSteps;
    private int? _n;              // the pattern in force (null: dense phase)
    private bool _projected;      // the layers hold W̃ and _dense holds W
    private bool _fixed;          // the mask is fixed and exact masked training has taken over
    private bool _haveEpochMask;

    public NMTrainingController(NMTrainingOptions options, SequentialNetwork network, Optimizer optimizer, Action<string>? log)
    {
        options.Validate();
        _options = options;
        _optimizer = optimizer;
        _log = log;
        var all = PrunableLayer.From(network);
        _prunableCount = Math.Max(1, all.Sum(l => (long)l.Count));
        _layers = LayerSelection.Select(all, options.ExcludedLayers, nameof(NMTrainingOptions.ExcludedLayers),
            SparsityPattern.NM(options.N, options.M), options.LeaveMisfitLayersDense, nameof(NMTrainingOptions.M));
        _dense = _layers.Select(l => new float[l.Count]).ToArray();
        _mask = _layers.Select(l => new float[l.Count]).ToArray();
        _epochMask = _layers.Select(l => new float[l.Count]).ToArray();
        _scratch = _layers.Select(l => new float[l.Count]).ToArray();
    }

    /// <summary>The fraction of all prunable weights (excluded layers included) zeroed by the pattern in force.</summary>
    public override double Sparsity => _n is int n
        ? _layers.Sum(l => l.Count - NMSelection.KeptCount(l.Count, l.InChannels, n, _options.M)) / (double)_prunableCount
        : 0;

    public override void Start(int stepsPerEpoch, long totalSteps)
    {
        (_stepsPerEpoch, _totalSteps) = (stepsPerEpoch, totalSteps);
        if (_options is StepwiseNMOptions s && (long)(s.DenseEpochs + s.FineTuneEpochs) * stepsPerEpoch >= totalSteps)
            throw new ArgumentException(
                $"The stepwise N:M schedule needs more epochs than DenseEpochs ({s.DenseEpochs}) + FineTuneEpochs ({s.FineTuneEpochs}).", nameof(StepwiseNMOptions.DenseEpochs));
    }

    public override void BeforeForward(long step)
    {
        if (_fixed) return;
        var (n, fix) = _options.PatternAt(step, _stepsPerEpoch, _totalSteps);
        if (n is null) { _n = null; return; }
        if (fix) { FixMask(n.Value); return; }
        _n = n;
        Project(n.Value, _options.PrunedScaleAt(step));
    }

    public override void AfterBackward(long step)
    {
        if (!_projected) return;
        float decay = _options.PrunedDecay;
        for (int l = 0; l < _layers.Count; l++)
        {
            var w = _layers[l].Weight;
            if (decay > 0)
            {
                // g += λ·(1 − E) ⊙ W, on the pruned entries only.
                TensorPrimitives.Subtract(1f, _mask[l], _scratch[l]);
                TensorPrimitives.Multiply(_scratch[l], _dense[l], _scratch[l]);
                TensorPrimitives.MultiplyAdd(_scratch[l], decay, w.Gradient, w.Gradient);
            }
            _dense[l].CopyTo(w.Value, 0);
        }
        _projected = false;
    }

    public override void BeforeEvaluation()
    {
        // Validation sees the N:M model itself. Between steps the layers hold W, unless EndEpoch just projected (β = 0).
        if (_fixed || _n is null || _projected) return;
        Project(_n.Value, 0f);
    }

    public override EpochMaskActivity EndEpoch()
    {
        if (_n is null || _fixed) return default;
        if (!_projected) Project(_n.Value, 0f);
        long changed = 0;
        for (int l = 0; l < _layers.Count; l++)
        {
            if (_haveEpochMask)
                for (int i = 0; i < _mask[l].Length; i++) if (_mask[l][i] != _epochMask[l][i]) changed++;
            _mask[l].CopyTo(_epochMask[l], 0);
        }
        bool first = !_haveEpochMask;
        _haveEpochMask = true;
        return new EpochMaskActivity(0, first ? null : changed);
    }

    public override void Finish()
    {
        if (_fixed) return;
        if (_projected) Restore();
        FixMask(_options.N);
        _log?.Invoke($"N:M training finished: {_options} on {_layers.Count} layers, sparsity {Sparsity:P2} of prunable weights.");
    }

    /// <summary>Early stopping may keep weights from before the fixed-mask phase of a stepwise schedule only if that phase has not begun.</summary>
    public override bool MasksFinal(long completedSteps) =>
        _options is not StepwiseNMOptions || _options.PatternAt(completedSteps, _stepsPerEpoch, _totalSteps).Fixed;

    /// <summary>Layers hold W ⊙ (E + (1 − E)·β), with E recomputed from the dense weights.</summary>
    private void Project(int n, float beta)
    {
        for (int l = 0; l < _layers.Count; l++)
        {
            var w = _layers[l].Weight;
            if (!_projected) w.Value.CopyTo(_dense[l], 0);
            NMSelection.TopN(_dense[l], absolute: true, n, _options.M, _mask[l], _layers[l].InChannels);
            if (beta == 0) TensorPrimitives.Multiply(_dense[l], _mask[l], w.Value);
            else
            {
                // E + (1 − E)·β = β + (1 − β)·E
                TensorPrimitives.Multiply(_mask[l], 1 - beta, _scratch[l]);
                TensorPrimitives.Add(_scratch[l], beta, _scratch[l]);
                TensorPrimitives.Multiply(_dense[l], _scratch[l], w.Value);
            }
        }
        _projected = true;
    }

    private void Restore()
    {
        for (int l = 0; l < _layers.Count; l++) _dense[l].CopyTo(_layers[l].Weight.Value, 0);
        _projected = false;
    }

    /// <summary>From now on the N:M mask is fixed: exact masked training on W ⊙ E.</summary>
    private void FixMask(int n)
    {
        if (_projected) Restore();
        for (int l = 0; l < _layers.Count; l++)
        {
            var w = _layers[l].Weight;
            NMSelection.TopN(w.Value, absolute: true, n, _options.M, _mask[l], _layers[l].InChannels);
            _layers[l].ApplyMask(_mask[l]);
            w.SparsityNote = $"{n}:{_options.M} ({_options.Describe()})";
        }
        _optimizer.ApplyMasks();
        (_n, _fixed) = (n, true);
    }
}
