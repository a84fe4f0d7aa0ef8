using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// Runs CHEX in the training loop (<see cref="ChexOptions"/>): the initial L1 pruning at <see cref="Start"/>, then an
/// update at the end of every ΔT-th epoch before T_max and one at T_max that fixes the masks at the target.
/// </summary>
/// <remarks>
/// Every parameter a channel owns carries a mask: its weight row, its bias, its batch norm's γ and β, and its columns
/// in the next layer's weight (a weight entry is kept when its row's channel and its column's channel both are).
/// Masked training then holds them, and their optimiser state, at exactly 0. The most recently used values live in one
/// store per parameter: before each update every unmasked entry is copied there, and an entry the update unmasks is
/// set back from it (batch-norm running statistics likewise per channel). A channel that was never active comes back
/// with its initial value.
/// </remarks>
internal sealed class ChexController : SparsityController
{
    private readonly ChexOptions _options;
    private readonly Optimizer _optimizer;
    private readonly Action<string>? _log;
    private readonly int _seed;
    private readonly IReadOnlyList<PrunableLayer> _layers;
    private readonly BatchNormLayer?[] _norms;
    private readonly bool[] _explored;
    private readonly bool[][] _active;
    private readonly ChexAllocation _allocation;
    private readonly List<(Parameter Parameter, float[] Store)> _stores = [];
    private readonly Dictionary<BatchNormLayer, (float[] Mean, float[] Variance)> _statistics = [];
    private int _stepsPerEpoch, _updateEpochs, _endEpoch, _epochUpdates, _totalUpdates;
    private double _sparsity, _initialRegrowth;
    private long _epochChanges, _totalChanges;

    public ChexController(ChexOptions options, SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log)
    {
        (_options, _optimizer, _seed, _log) = (options, optimizer, seed, log);
        _layers = PrunableLayer.From(network);
        if (_layers.Count < 2)
            throw new ArgumentException("CHEX prunes the output channels of every layer but the output layer; the network has no such layer.", nameof(options));
        var chains = ChannelChain.From(_layers, nameof(ChexOptions));
        var excluded = options.ExcludedLayers.Select(key => LayerSelection.Resolve(_layers, key, nameof(ChexOptions.ExcludedLayers))).ToHashSet();
        _explored = [.. _layers.Select(l => l.Index < _layers.Count - 1 && !excluded.Contains(l.Index))];
        if (!_explored.Any(e => e))
            throw new ArgumentException("ExcludedLayers leaves no layer to explore (the output layer never is).", nameof(ChexOptions.ExcludedLayers));
        _norms = [.. _layers.Select(l => l.Index < chains.Count ? chains[l.Index].BatchNorm : null)];
        if (options.Allocation == ChannelAllocation.BatchNormScale)
        {
            for (int p = 0; p < _layers.Count; p++)
                if (_explored[p] && _norms[p] is null)
                    throw new ArgumentException(
                        $"Layer '{_layers[p].Name}' has no batch norm after it, and the batch-norm-scale allocation ranks channels by its γ. " +
                        "Add a batch norm, exclude the layer, or use ChannelAllocation.Uniform.", nameof(ChexOptions.Allocation));
        }
        _active = [.. _layers.Select(l => Enumerable.Repeat(true, l.OutChannels).ToArray())];
        _allocation = new ChexAllocation([.. _layers.Select(l => l.OutChannels)], [.. _layers.Select(l => l.Layer.MultiplyAdds)], _explored, options.ChannelMultiple, [.. _layers.Select(l => l.Name)]);
        for (int p = 0; p < _layers.Count; p++)
        {
            if (_layers[p].Weight.Mask is { } mask && Array.IndexOf(mask, 0f) >= 0)
                throw new ArgumentException(
                    $"Layer '{_layers[p].Name}' already has masked weights: CHEX explores the channels of a network without masks, and would bring a masked " +
                    "channel back with zeros. Train from scratch, or continue the model without a sparsity method.", nameof(network));
            Track(_layers[p].Weight);
            if (_layers[p].Bias is { } bias) Track(bias);
            if (_norms[p] is { } norm)
            {
                Track(norm.Gamma);
                Track(norm.Beta);
                _statistics[norm] = ((float[])norm.RunningMean.Clone(), (float[])norm.RunningVariance.Clone());
            }
        }
    }

    /// <summary>Which output channels of each prunable layer are active now.</summary>
    public IReadOnlyList<bool[]> Active => _active;

    /// <summary>Epochs between updates and the epoch of the last update (T_max), known at <see cref="Start"/>.</summary>
    public (int UpdateEpochs, int EndEpoch) Schedule => (_updateEpochs, _endEpoch);

    public override double Sparsity => SparsityReport.PrunableSparsity(_layers);

    /// <summary>δ_t = δ₀·(1 + cos(π·t/T_max))/2, the regrowth budget at epoch <paramref name="epoch"/> (a fraction of channels, below S).</summary>
    private double RegrowthBudget(int epoch) => _initialRegrowth * (1 + Math.Cos(Math.PI * epoch / _endEpoch)) / 2;

    public override void Start(int stepsPerEpoch, long totalSteps)
    {
        int epochs = (int)(totalSteps / stepsPerEpoch);
        _stepsPerEpoch = stepsPerEpoch;
        _updateEpochs = _options.UpdateEpochs ?? Math.Max(1, (int)Math.Round(epochs * 2.0 / 250));
        _endEpoch = Math.Clamp((int)Math.Round(_options.ExplorationEnd * epochs), 1, epochs);
        // S: the channel sparsity asked, or the uniform fraction of every explored layer's channels that meets the FLOPs target.
        _sparsity = _options.FlopsReduction is double f
            ? _allocation.UniformSparsityAt(f, nameof(ChexOptions.FlopsReduction))
            : _options.ChannelSparsity;
        _initialRegrowth = _options.InitialRegrowthAt(_sparsity);
        if (_initialRegrowth >= _sparsity)
            throw new ArgumentOutOfRangeException(nameof(ChexOptions.InitialRegrowth), _options.InitialRegrowth,
                $"δ₀ must be below the channel sparsity, {_sparsity:0.###} for this network{(_options.FlopsReduction is null ? "" : " at the FlopsReduction asked")}.");
        if (_options.FlopsReduction is null) _allocation.CheckReachable(_sparsity, nameof(ChexOptions.ChannelSparsity));
        double startSparsity = _sparsity - _initialRegrowth;

        // Initial pruning: every explored layer loses a fraction S − δ₀ of its channels, those of smallest filter L1 norm.
        int[] pruned = _allocation.AtSparsity(startSparsity, null);
        var next = new bool[_layers.Count][];
        for (int p = 0; p < _layers.Count; p++)
        {
            next[p] = Enumerable.Repeat(true, _layers[p].OutChannels).ToArray();
            if (!_explored[p]) continue;
            Array.Fill(next[p], false);
            foreach (int c in KeepLargest(FilterNorms(_layers[p]), _layers[p].OutChannels - pruned[p]))
                next[p][c] = true;
        }
        Apply(next);
        _log?.Invoke($"CHEX: {_layers.Count(l => _explored[l.Index])} layers explored, {(double)pruned.Sum() / _allocation.ExploredChannels:P1} of their channels pruned at the start; " +
            $"updates every {_updateEpochs} epochs until epoch {_endEpoch} ({_options}).");
    }

    public override void AfterStep(long completedSteps)
    {
        if (completedSteps % _stepsPerEpoch != 0) return;
        int epoch = (int)(completedSteps / _stepsPerEpoch);
        if (epoch == _endEpoch || (epoch < _endEpoch && epoch % _updateEpochs == 0)) Update(epoch);
    }

    public override bool MasksFinal(long completedSteps) => completedSteps >= (long)_endEpoch * _stepsPerEpoch;

    public override EpochMaskActivity EndEpoch()
    {
        var activity = new EpochMaskActivity(_epochUpdates, _epochChanges);
        (_epochUpdates, _epochChanges) = (0, 0);
        return activity;
    }

    public override void Finish()
    {
        foreach (var layer in _layers.Where(l => _explored[l.Index]))
            layer.Weight.SparsityNote = $"output channels (CHEX: {_active[layer.Index].Count(a => a)} of {layer.OutChannels} kept)";
        _log?.Invoke($"CHEX finished: {_totalUpdates} mask updates flipped {_totalChanges:N0} mask entries; " +
            $"{Enumerable.Range(0, _layers.Count).Where(p => _explored[p]).Sum(p => _active[p].Count(a => !a))} of {_allocation.ExploredChannels} channels pruned, " +
            $"{1 - _allocation.MultiplyAdds(PrunedCounts()) / _allocation.MultiplyAdds(new int[_layers.Count]):P1} of the multiply-adds.");
    }

    /// <summary>An update at the end of epoch <paramref name="epoch"/>: allocate, select by CSS, regrow.</summary>
    /// <remarks>
    /// <para>
    /// A pruned channel ranks by the |γ| it last had while active (the stores), not by its masked 0, as mmrazor's CHEX
    /// ranks its masked parameters (the authors' code ranks it at 0, so a layer's pruned count can only grow:
    /// docs/channel-pruning.md), and can so win its place back through the allocation, in any layer. Column subset
    /// selection and the regrowth scores read the filters' last used values, with the columns that read a channel
    /// pruned after this update at 0, as they will compute.
    /// </para>
    /// <para>
    /// r_up is taken at S′·(1 − δ_t/S), where S′ is r_down's share of the explored channels: S′ = S at a channel sparsity
    /// (up to rounding), and at a FLOPs target, where the global ranking meets the target at a sparsity of its own, the
    /// regrowth keeps the share of the pruned channels it has in the paper (δ₀/S = 3/7 by default).
    /// </para>
    /// </remarks>
    internal void Update(int epoch)
    {
        SaveMostRecentlyUsed();
        float[][]? scores = _options.Allocation == ChannelAllocation.BatchNormScale
            ? [.. _norms.Select((n, p) => _explored[p] ? StoreOf(n!.Gamma).Select(MathF.Abs).ToArray() : [])]
            : null;
        int[] down = scores is null
            ? _allocation.AtSparsity(_sparsity, null)
            : _options.FlopsReduction is double f
                ? _allocation.AtFlopsReduction(f, scores, nameof(ChexOptions.FlopsReduction))
                : _allocation.AtSparsity(_sparsity, scores);
        double share = epoch >= _endEpoch ? 0 : RegrowthBudget(epoch) / _sparsity;
        double reached = scores is null ? _sparsity : (double)down.Sum() / _allocation.ExploredChannels;
        int[] up = share > 0 ? _allocation.AtSparsity(reached * (1 - share), scores) : down;
        var random = new Random(Seeds.Derive(_seed, 0xC4E, epoch));
        var next = new bool[_layers.Count][];
        for (int p = 0; p < _layers.Count; p++)
        {
            var layer = _layers[p];
            next[p] = Enumerable.Repeat(true, layer.OutChannels).ToArray();
            if (!_explored[p]) continue;
            int keep = layer.OutChannels - down[p], grow = Math.Max(0, down[p] - up[p]);
            float[] filters = Filters(p, next);
            var kept = ColumnSubsetSelection(filters, layer.OutChannels, keep);
            int[] candidates = [.. Enumerable.Range(0, layer.OutChannels).Except(kept)];
            double[]? orthogonality = _options.Regrowth == ChannelRegrowth.Orthogonality
                ? ChexRegrowth.Orthogonality([.. kept.Select(c => Row(filters, layer, c))], [.. candidates.Select(c => Row(filters, layer, c))])
                : null;
            var grown = ChexRegrowth.Draw(orthogonality, candidates.Length, Math.Min(grow, candidates.Length), random).Select(i => candidates[i]);
            Array.Fill(next[p], false);
            foreach (int c in kept.Concat(grown)) next[p][c] = true;
        }
        Apply(next);
    }

    /// <summary>Sets every mask from the active channels <paramref name="next"/>, zeroing what they drop and restoring what they bring back.</summary>
    private void Apply(bool[][] next)
    {
        long changes = 0;
        for (int p = 0; p < _layers.Count; p++)
        {
            var layer = _layers[p];
            bool[] rows = next[p], columns = p > 0 ? next[p - 1] : [];
            int inChannels = p > 0 ? _layers[p - 1].OutChannels : 1;
            changes += SetMask(layer.Weight, e => rows[e / layer.Columns] && (p == 0 || columns[InputChannel(layer, e, inChannels)]));
            if (layer.Bias is { } bias) changes += SetMask(bias, c => rows[c]);
            if (_norms[p] is { } norm)
            {
                changes += SetMask(norm.Gamma, c => rows[c]);
                changes += SetMask(norm.Beta, c => rows[c]);
                var (mean, variance) = _statistics[norm];
                for (int c = 0; c < rows.Length; c++)
                    if (rows[c] && !_active[p][c])
                        (norm.RunningMean[c], norm.RunningVariance[c]) = (mean[c], variance[c]);
            }
            rows.CopyTo(_active[p], 0);
        }
        _optimizer.ApplyMasks();
        _epochUpdates++;
        _totalUpdates++;
        _epochChanges += changes;
        _totalChanges += changes;
    }

    /// <summary>Masks <paramref name="parameter"/> by <paramref name="kept"/>: a newly masked entry becomes 0, a newly kept one its stored value. Returns the entries flipped.</summary>
    private long SetMask(Parameter parameter, Func<int, bool> kept)
    {
        float[] store = StoreOf(parameter);
        parameter.Mask ??= Enumerable.Repeat(1f, parameter.Length).ToArray();
        long flipped = 0;
        for (int e = 0; e < parameter.Length; e++)
        {
            bool now = kept(e), before = parameter.Mask[e] != 0;
            if (now == before) continue;
            flipped++;
            parameter.Mask[e] = now ? 1f : 0f;
            parameter.Value[e] = now ? store[e] : 0f;
        }
        return flipped;
    }

    /// <summary>Copies every unmasked entry, and each active channel's running statistics, into the stores.</summary>
    private void SaveMostRecentlyUsed()
    {
        foreach (var (parameter, store) in _stores)
            for (int e = 0; e < parameter.Length; e++)
                if (parameter.Mask is null || parameter.Mask[e] != 0) store[e] = parameter.Value[e];
        for (int p = 0; p < _layers.Count; p++)
        {
            if (_norms[p] is not { } norm) continue;
            var (mean, variance) = _statistics[norm];
            for (int c = 0; c < _active[p].Length; c++)
                if (_active[p][c]) (mean[c], variance[c]) = (norm.RunningMean[c], norm.RunningVariance[c]);
        }
    }

    private void Track(Parameter parameter) => _stores.Add((parameter, (float[])parameter.Value.Clone()));

    private float[] StoreOf(Parameter parameter) => _stores.First(s => ReferenceEquals(s.Parameter, parameter)).Store;

    private int[] PrunedCounts() => [.. _active.Select((a, p) => _explored[p] ? a.Count(x => !x) : 0)];

    /// <summary>
    /// Layer <paramref name="p"/>'s most recently used filters with the columns of input channels that the update
    /// prunes (<paramref name="next"/>, decided for the layers before) at 0.
    /// </summary>
    private float[] Filters(int p, bool[][] next)
    {
        var layer = _layers[p];
        float[] filters = (float[])StoreOf(layer.Weight).Clone();
        if (p == 0) return filters;
        bool[] inputs = next[p - 1];
        for (int e = 0; e < filters.Length; e++)
            if (!inputs[InputChannel(layer, e, inputs.Length)]) filters[e] = 0;
        return filters;
    }

    /// <summary>The input channel weight entry <paramref name="e"/> of <paramref name="layer"/> reads, of <paramref name="channels"/> (channels last, through a flatten too).</summary>
    private static int InputChannel(PrunableLayer layer, int e, int channels) => e % layer.Columns % channels;

    private static float[] Row(float[] values, PrunableLayer layer, int channel) => values.AsSpan(channel * layer.Columns, layer.Columns).ToArray();

    private static double[] FilterNorms(PrunableLayer layer) =>
        [.. Enumerable.Range(0, layer.OutChannels).Select(c => (double)System.Numerics.Tensors.TensorPrimitives.SumOfMagnitudes(layer.Weight.Value.AsSpan(c * layer.Columns, layer.Columns)))];

    /// <summary>The <paramref name="count"/> channels of largest score, ascending by index (ties: the lower index).</summary>
    private static int[] KeepLargest(double[] scores, int count) =>
        [.. Enumerable.Range(0, scores.Length).OrderByDescending(c => scores[c]).ThenBy(c => c).Take(count).Order()];

    /// <summary>
    /// The <paramref name="keep"/> of <paramref name="channels"/> filters (the rows of <paramref name="filters"/>) CHEX's
    /// column subset selection keeps (<see cref="ChannelPruning.ColumnSubsetSelection"/>), ascending.
    /// </summary>
    internal static int[] ColumnSubsetSelection(float[] filters, int channels, int keep)
    {
        var scores = new float[channels];
        ChannelPruning.ColumnSubsetSelection.Scores(filters, channels, keep, scores);
        return KeepLargest([.. scores.Select(x => (double)x)], keep);
    }
}
