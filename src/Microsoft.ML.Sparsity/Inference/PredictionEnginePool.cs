using System.Collections.Concurrent;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// Thread-safe typed prediction for concurrent callers (a web service's requests, say): each call borrows a
/// <see cref="PredictionEngine{TSrc, TDst}"/> from the pool, creating one when all are busy, and returns it. Create
/// it with <c>context.Model.CreatePredictionEnginePool&lt;TSrc, TDst&gt;(model)</c>.
/// </summary>
/// <remarks>Engines share the model's sparse prediction formats; each holds its own copy of the network. Results equal a single engine's, bit for bit.</remarks>
public sealed class PredictionEnginePool<TSrc, TDst>
    where TSrc : class
    where TDst : class, new()
{
    private readonly NeuralNetworkMulticlassModel _model;
    private readonly PredictionEngineOptions _options;
    private readonly ConcurrentBag<PredictionEngine<TSrc, TDst>> _engines = [];

    internal PredictionEnginePool(NeuralNetworkMulticlassModel model, PredictionEngineOptions options)
    {
        _model = model;
        _options = options;
        _engines.Add(new PredictionEngine<TSrc, TDst>(model, options)); // checks the types' members now, not at the first call
    }

    /// <summary>Predicts one example into a new output object.</summary>
    public TDst Predict(TSrc example)
    {
        var prediction = new TDst();
        Predict(example, ref prediction);
        return prediction;
    }

    /// <summary>Predicts one example into <paramref name="prediction"/> (see <see cref="PredictionEngine{TSrc, TDst}.Predict(TSrc, ref TDst)"/>).</summary>
    public void Predict(TSrc example, ref TDst prediction)
    {
        PredictionEngine<TSrc, TDst> engine = _engines.TryTake(out var e) ? e : new PredictionEngine<TSrc, TDst>(_model, _options);
        try
        {
            engine.Predict(example, ref prediction);
        }
        finally
        {
            _engines.Add(engine);
        }
    }
}
