using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// Single predictions from a model trained at nested sparsity levels (<see cref="NestedSparsity.NestedSparsityOptions"/>),
/// the level chosen per call, per engine or automatically for a latency budget (<see cref="SparsityLevelEngineOptions"/>).
/// Made by <c>mlContext.Sparsity().CreatePredictionEngine</c> from the model or a pipeline ending in it. Every level
/// holds its layers in its own sparse prediction formats, prepared when the engine is made: switching level reloads
/// nothing and allocates nothing.
/// </summary>
/// <remarks>
/// Thread-safe, unlike ML.NET's <c>PredictionEngine</c>: concurrent callers each get an ML.NET engine of the level they
/// use (made on first need, then reused). Not disposable: an ML.NET engine disposes the transformers it was made from,
/// which here are the caller's pipeline, so the level engines are left to the garbage collector (they hold no
/// unmanaged resources of their own). With a budget, every prediction's latency feeds the choice of level; a
/// server that queues requests passes the time each was received, so the queueing delay counts too.
/// </remarks>
public sealed class SparsityLevelPredictionEngine<TSrc, TDst> where TSrc : class where TDst : class, new()
{
    private readonly Func<int, PredictionEngine<TSrc, TDst>> _create;
    private readonly ConcurrentBag<PredictionEngine<TSrc, TDst>>[] _engines;
    private readonly double[] _levels;
    private readonly int _fixedLevel;
    private readonly SparsityLevelEngineOptions _options;
    private readonly object _pickerLock = new();
    private SparsityLevelPicker? _picker;
    private TimeSpan[] _warmUp = [];

    internal SparsityLevelPredictionEngine(MLContext context, ITransformer model, SparsityLevelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        if (options.WarmUpTime <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), options.WarmUpTime, "WarmUpTime must be positive.");
        if (options.LatencyBudget is { } budget && budget <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), budget, "LatencyBudget must be positive.");
        var (before, nested, after) = Split(model);
        _levels = [.. nested.SparsityLevels];
        _fixedLevel = options.Level is double level ? IndexOf(level, nameof(options)) : 0;
        _options = options;
        var pipelines = _levels.Select(l => Pipeline(before, nested.AtSparsityLevel(l), after)).ToArray();
        _create = i => context.Model.CreatePredictionEngine<TSrc, TDst>(pipelines[i]);
        _engines = [.. _levels.Select((_, i) => new ConcurrentBag<PredictionEngine<TSrc, TDst>> { _create(i) })];
    }

    /// <summary>The model's sparsity levels, densest first.</summary>
    public IReadOnlyList<double> Levels => _levels;

    /// <summary>The level the next prediction without a level of its own uses.</summary>
    public double Level => _levels[_picker?.Level ?? _fixedLevel];

    /// <summary>Each level's single-prediction latency measured at warm-up (empty before it, and without a budget unless <see cref="WarmUp"/> was called).</summary>
    public IReadOnlyList<TimeSpan> WarmUpLatencies => _warmUp;

    /// <summary>False when the level in use does not meet the budget: at warm-up none did (the sparsest is used), or latencies under load exceed it at the sparsest level. True without a budget.</summary>
    public bool WithinBudget => _picker?.WithinBudget ?? true;

    /// <summary>Predicts <paramref name="example"/> at every level in turn for <see cref="SparsityLevelEngineOptions.WarmUpTime"/>, keeps each level's median latency over the last quarter and, with a budget, picks the starting level. The first prediction does it when no call has.</summary>
    public void WarmUp(TSrc example)
    {
        ArgumentNullException.ThrowIfNull(example);
        lock (_pickerLock) WarmUpLocked(example);
    }

    private void WarmUpLocked(TSrc example)
    {
        // The levels take turns of a few predictions for WarmUpTime; the medians come from the last quarter of it, when
        // the JIT's optimised code has arrived (see SparsityLevelEngineOptions.WarmUpTime).
        const int Turn = 20;
        var times = _levels.Select(_ => new List<long>()).ToArray();
        var prediction = new TDst();
        long start = Stopwatch.GetTimestamp(), duration = (long)(_options.WarmUpTime.TotalSeconds * Stopwatch.Frequency);
        do
        {
            bool timed = Stopwatch.GetTimestamp() - start >= duration * 3 / 4;
            for (int i = 0; i < _levels.Length; i++)
            {
                var engine = Rent(i);
                for (int k = 0; k < Turn; k++)
                {
                    long begin = Stopwatch.GetTimestamp();
                    engine.Predict(example, ref prediction);
                    if (timed) times[i].Add(Stopwatch.GetTimestamp() - begin);
                }
                _engines[i].Add(engine);
            }
        }
        while (Stopwatch.GetTimestamp() - start < duration || times[0].Count == 0);
        double[] medians = [.. times.Select(t => (double)t.Order().ElementAt(t.Count / 2))];
        _warmUp = [.. medians.Select(m => Stopwatch.GetElapsedTime(0, (long)m))];
        if (_options.LatencyBudget is { } budget)
            _picker = new SparsityLevelPicker(medians, budget.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>Predicts <paramref name="example"/> at the engine's level (see <see cref="Level"/>).</summary>
    public TDst Predict(TSrc example)
    {
        var prediction = new TDst();
        Predict(example, ref prediction);
        return prediction;
    }

    /// <summary>Predicts <paramref name="example"/> into <paramref name="prediction"/> (reused: no allocation) at the engine's level; with a budget, the call's latency feeds the choice of level.</summary>
    public void Predict(TSrc example, ref TDst prediction) => PredictRequest(example, ref prediction, Stopwatch.GetTimestamp());

    /// <summary>
    /// As <see cref="Predict(TSrc, ref TDst)"/> for a request a server received at <paramref name="receivedTimestamp"/>
    /// (<see cref="Stopwatch.GetTimestamp"/>) and may have queued: its latency, queueing included, feeds the choice of level.
    /// </summary>
    public void PredictRequest(TSrc example, ref TDst prediction, long receivedTimestamp)
    {
        if (_options.LatencyBudget is not null && _picker is null)
            lock (_pickerLock)
                if (_picker is null) WarmUpLocked(example);
        long start = Stopwatch.GetTimestamp();
        Run(_picker?.Level ?? _fixedLevel, example, ref prediction);
        if (_picker is { } picker)
        {
            long end = Stopwatch.GetTimestamp();
            lock (_pickerLock) picker.Record(end - receivedTimestamp, end - start);
        }
    }

    /// <summary>Predicts <paramref name="example"/> at <paramref name="level"/>, one of <see cref="Levels"/>, whatever the engine's level (the latency does not feed its choice).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The model has no such level; the message lists its levels.</exception>
    public void Predict(TSrc example, ref TDst prediction, double level)
    {
        Run(IndexOf(level, nameof(level)), example, ref prediction);
    }

    private void Run(int level, TSrc example, ref TDst prediction)
    {
        var engine = Rent(level);
        try
        {
            engine.Predict(example, ref prediction);
        }
        finally
        {
            _engines[level].Add(engine);
        }
    }

    private PredictionEngine<TSrc, TDst> Rent(int level) => _engines[level].TryTake(out var engine) ? engine : _create(level);

    private int IndexOf(double level, string argument) => NestedSparsity.NestedSparsityOptions.IndexOf(_levels, level, argument);

    /// <summary>The transformers before the nested model, the model, and those after it.</summary>
    private static (ITransformer[] Before, NeuralNetworkModel Nested, ITransformer[] After) Split(ITransformer model)
    {
        ITransformer[] parts = model is TransformerChain<ITransformer> chain ? [.. chain] : [model];
        int at = Array.FindLastIndex(parts, t => t is NeuralNetworkModel { SparsityLevels.Count: > 0 });
        if (at < 0)
            throw new ArgumentException("The model has no sparsity levels: train it with nested sparsity (NestedSparsityOptions), or use ML.NET's CreatePredictionEngine.", nameof(model));
        return (parts[..at], (NeuralNetworkModel)parts[at], parts[(at + 1)..]);
    }

    private static ITransformer Pipeline(ITransformer[] before, ITransformer nested, ITransformer[] after) =>
        before.Length == 0 && after.Length == 0 ? nested : new TransformerChain<ITransformer>([.. before, nested, .. after]);
}
