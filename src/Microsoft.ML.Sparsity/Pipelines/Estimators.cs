using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity;

/// <summary>Something that learns from data: <see cref="Fit"/> returns a fitted <typeparamref name="TTransformer"/>, as in ML.NET.</summary>
/// <typeparam name="TTransformer">The fitted result.</typeparam>
public interface IEstimator<out TTransformer> where TTransformer : ITransformer
{
    /// <summary>Learns from <paramref name="input"/> and returns the fitted transformer.</summary>
    TTransformer Fit(Dataset input);
}

/// <summary>A fitted step of a pipeline: maps a dataset to a new dataset (transformed features, or scores and predictions).</summary>
public interface ITransformer
{
    /// <summary>Applies the transformer to every row of <paramref name="input"/>.</summary>
    Dataset Transform(Dataset input);
}

/// <summary>Estimators applied in order: each is fitted on the output of the transformers fitted before it.</summary>
/// <typeparam name="TLastTransformer">The type of the last estimator's transformer (usually the model).</typeparam>
public sealed class EstimatorChain<TLastTransformer> : IEstimator<TransformerChain<TLastTransformer>>
    where TLastTransformer : class, ITransformer
{
    private readonly IReadOnlyList<IEstimator<ITransformer>> _estimators;

    internal EstimatorChain(IReadOnlyList<IEstimator<ITransformer>> estimators) => _estimators = estimators;

    /// <summary>Returns a chain that also runs <paramref name="estimator"/> after this chain's estimators.</summary>
    public EstimatorChain<TNew> Append<TNew>(IEstimator<TNew> estimator) where TNew : class, ITransformer
    {
        ArgumentNullException.ThrowIfNull(estimator);
        return new EstimatorChain<TNew>([.. _estimators, estimator]);
    }

    /// <summary>Fits each estimator in turn on the data transformed by the ones before it.</summary>
    public TransformerChain<TLastTransformer> Fit(Dataset input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var fitted = new List<ITransformer>(_estimators.Count);
        var data = input;
        for (int i = 0; i < _estimators.Count; i++)
        {
            var transformer = _estimators[i].Fit(data);
            fitted.Add(transformer);
            if (i < _estimators.Count - 1) data = transformer.Transform(data);
        }
        return new TransformerChain<TLastTransformer>(fitted);
    }
}

/// <summary>Fitted transformers applied in order; <see cref="LastTransformer"/> is usually the model.</summary>
/// <typeparam name="TLastTransformer">The last transformer's type.</typeparam>
public sealed class TransformerChain<TLastTransformer> : ITransformer, ITransformerChain where TLastTransformer : class, ITransformer
{
    internal TransformerChain(IReadOnlyList<ITransformer> transformers)
    {
        Transformers = transformers;
        LastTransformer = (TLastTransformer)transformers[^1];
    }

    /// <summary>The fitted transformers, in order.</summary>
    public IReadOnlyList<ITransformer> Transformers { get; }

    /// <summary>The last transformer.</summary>
    public TLastTransformer LastTransformer { get; }

    /// <summary>Runs every transformer in order.</summary>
    public Dataset Transform(Dataset input)
    {
        ArgumentNullException.ThrowIfNull(input);
        foreach (var t in Transformers) input = t.Transform(input);
        return input;
    }
}

/// <summary>The non-generic view of a <see cref="TransformerChain{TLastTransformer}"/>.</summary>
internal interface ITransformerChain
{
    IReadOnlyList<ITransformer> Transformers { get; }
}

/// <summary>Chaining estimators with <c>Append</c>, as in ML.NET.</summary>
public static class EstimatorExtensions
{
    /// <summary>Returns a chain that fits <paramref name="start"/> and then <paramref name="next"/> on its output.</summary>
    public static EstimatorChain<TNext> Append<TNext>(this IEstimator<ITransformer> start, IEstimator<TNext> next)
        where TNext : class, ITransformer
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(next);
        return new EstimatorChain<TNext>([start, next]);
    }
}
