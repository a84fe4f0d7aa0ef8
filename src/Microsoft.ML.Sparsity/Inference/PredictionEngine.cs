using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.Intrinsics;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// Typed single-example prediction, as ML.NET's <c>PredictionEngine</c>: reads the features from a
/// <typeparamref name="TSrc"/> object and writes the class probabilities and predicted class into a
/// <typeparamref name="TDst"/> object. Create it with <c>context.Model.CreatePredictionEngine&lt;TSrc, TDst&gt;(model)</c>.
/// </summary>
/// <typeparam name="TSrc">The input type: a public <c>float[]</c> field or property with the features (a <c>double[]</c> one works but is converted, allocating, at every call).</typeparam>
/// <typeparam name="TDst">The output type: public <c>float[]</c> scores and a predicted-label member (see <see cref="PredictionEngineOptions"/>).</typeparam>
/// <remarks>
/// An engine is not thread-safe (like ML.NET's); give each thread its own or use <see cref="PredictionEnginePool{TSrc, TDst}"/>.
/// <see cref="Predict(TSrc, ref TDst)"/> allocates nothing once warm when the output object is reused: its score
/// array is filled in place. Sparse layers run on the calling thread; large dense products and convolutions may share
/// their work with the context's threads.
/// </remarks>
public sealed class PredictionEngine<TSrc, TDst>
    where TSrc : class
    where TDst : class, new()
{
    private readonly NeuralNetworkMulticlassModel _model;
    private readonly InferenceSession _session;
    private readonly PredictionEngineOptions _options;
    private readonly Func<TSrc, float[]?> _features;
    private readonly Func<TDst, float[]?> _getScore;
    private readonly Action<TDst, float[]> _setScore;
    private readonly Action<TDst, int> _setLabel;

    internal PredictionEngine(NeuralNetworkMulticlassModel model, PredictionEngineOptions options)
    {
        _model = model;
        _options = new PredictionEngineOptions
        {
            FeatureColumnName = options.FeatureColumnName,
            ScoreColumnName = options.ScoreColumnName,
            PredictedLabelColumnName = options.PredictedLabelColumnName,
            NonFiniteInput = options.NonFiniteInput,
        };
        _features = EnumerableLoader.FeatureGetter<TSrc>(options.FeatureColumnName);
        _getScore = ScoreGetter(options.ScoreColumnName);
        _setScore = Setter<float[]>(options.ScoreColumnName, "score", nameof(options.ScoreColumnName), Value<float[]>());
        _setLabel = Setter<int>(options.PredictedLabelColumnName, "predicted-label", nameof(options.PredictedLabelColumnName), LabelConversion);
        _session = model.CreateSession();
    }

    /// <summary>Predicts one example into a new output object.</summary>
    public TDst Predict(TSrc example)
    {
        var prediction = new TDst();
        Predict(example, ref prediction);
        return prediction;
    }

    /// <summary>Predicts one example into <paramref name="prediction"/>, reusing its score array when it has the right length.</summary>
    /// <exception cref="ArgumentException">The features are missing, of the wrong length, or (by default) not finite; the message names the column.</exception>
    public void Predict(TSrc example, ref TDst prediction)
    {
        ArgumentNullException.ThrowIfNull(example);
        prediction ??= new TDst();
        float[] features = _features(example)
            ?? throw new ArgumentException($"The feature column '{_options.FeatureColumnName}' of the example is null.", nameof(example));
        float[]? scores = _getScore(prediction);
        if (scores is null || scores.Length != _model.ClassCount)
        {
            scores = new float[_model.ClassCount];
            _setScore(prediction, scores);
        }

        _setLabel(prediction, Predict(features, scores));
    }

    /// <summary>Predicts one example given as raw features: writes the class probabilities into <paramref name="scores"/> and returns the predicted class.</summary>
    /// <exception cref="ArgumentException">Wrong lengths, or (by default) a non-finite feature; the message names the column.</exception>
    public int Predict(ReadOnlySpan<float> features, Span<float> scores)
    {
        _model.CheckFeatureLength(features.Length, nameof(features));
        if (scores.Length < _model.ClassCount)
            throw new ArgumentException($"The scores span has {scores.Length} elements; {_model.ClassCount} are needed.", nameof(scores));
        if (_options.NonFiniteInput == NonFiniteInputHandling.Throw && IndexOfNonFinite(features) is int bad and >= 0)
        {
            throw new ArgumentException(
                $"Feature column '{_options.FeatureColumnName}', index {bad}, is {features[bad]}; features must be finite " +
                $"(set {nameof(PredictionEngineOptions)}.{nameof(PredictionEngineOptions.NonFiniteInput)} to Propagate to score it anyway).",
                nameof(features));
        }

        return _session.Predict(features, scores[.._model.ClassCount]);
    }

    /// <summary>The index of the first NaN or infinity, or −1: x − x is 0 exactly when x is finite.</summary>
    internal static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= values.Length; i += 8)
            {
                Vector256<float> v = Vector256.Create(values.Slice(i, 8));
                if (!Vector256.EqualsAll(v - v, Vector256<float>.Zero))
                    break;
            }
        }

        for (; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
                return i;
        }

        return -1;
    }

    private Expression LabelConversion(Expression label, Type target) => target switch
    {
        _ when target == typeof(int) => label,
        _ when target == typeof(uint) || target == typeof(long) || target == typeof(float) => Expression.Convert(label, target),
        _ when target == typeof(string) => Expression.Call(Expression.Constant(this), typeof(PredictionEngine<TSrc, TDst>)
            .GetMethod(nameof(ClassName), BindingFlags.NonPublic | BindingFlags.Instance)!, label),
        _ => throw new ArgumentException(
            $"The predicted-label member '{_options.PredictedLabelColumnName}' of {typeof(TDst).FullName} is of type {target.Name}; " +
            "it must be int, uint, long, float or string.", nameof(PredictionEngineOptions.PredictedLabelColumnName)),
    };

    private string ClassName(int label) => _model.ClassNames is { } names ? names[label] : label.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static Func<Expression, Type, Expression> Value<T>() => (value, target) => target == typeof(T) ? value
        : throw new ArgumentException($"A member of {typeof(TDst).FullName} is of type {target.Name}; {typeof(T).Name} is needed.");

    private static Func<TDst, float[]?> ScoreGetter(string name)
    {
        var item = Expression.Parameter(typeof(TDst), "item");
        MemberExpression member = EnumerableLoader.Member<TDst>(item, name, "score", nameof(PredictionEngineOptions.ScoreColumnName));
        if (member.Type != typeof(float[]))
            throw new ArgumentException($"The member '{name}' of {typeof(TDst).FullName} is of type {member.Type.Name}; float[] is needed.", nameof(PredictionEngineOptions.ScoreColumnName));
        return Expression.Lambda<Func<TDst, float[]?>>(member, item).Compile();
    }

    private static Action<TDst, TValue> Setter<TValue>(string name, string role, string option, Func<Expression, Type, Expression> convert)
    {
        var item = Expression.Parameter(typeof(TDst), "item");
        var value = Expression.Parameter(typeof(TValue), "value");
        MemberExpression member = EnumerableLoader.Member<TDst>(item, name, role, option);
        if (member.Member is PropertyInfo { SetMethod.IsPublic: not true })
            throw new ArgumentException($"The property '{name}' of {typeof(TDst).FullName} has no public setter.", option);
        return Expression.Lambda<Action<TDst, TValue>>(Expression.Assign(member, convert(value, member.Type)), item, value).Compile();
    }
}
