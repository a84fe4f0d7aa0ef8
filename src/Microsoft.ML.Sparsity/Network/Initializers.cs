namespace Microsoft.ML.Sparsity.Network;

/// <summary>How a layer's weights are initialised. Biases always start at zero.</summary>
public enum WeightInitializer
{
    /// <summary>U(−a, a) with a = √(6 / (fanIn + fanOut)) (Glorot &amp; Bengio, "Understanding the difficulty of training deep feedforward neural networks", 2010).</summary>
    GlorotUniform,
    /// <summary>N(0, 2 / (fanIn + fanOut)) (Glorot &amp; Bengio, 2010).</summary>
    GlorotNormal,
    /// <summary>N(0, 2 / fanIn) (He et al., "Delving Deep into Rectifiers", 2015).</summary>
    HeNormal,
}

/// <summary>What building layers needs besides their definitions: the worker pool, the initialiser and a seeded random source.</summary>
internal sealed class LayerBuildContext
{
    private readonly Random _random;

    public LayerBuildContext(Engine.WorkerPool pool, WeightInitializer initializer, int seed)
    {
        Pool = pool;
        Initializer = initializer;
        _random = new Random(seed);
    }

    public Engine.WorkerPool Pool { get; }
    public WeightInitializer Initializer { get; }

    /// <summary>
    /// The most parameter values the layers built with this context may have in all (a model file's tensors bound its
    /// architecture: an edited layer size is refused before its weights are allocated); unlimited by default.
    /// </summary>
    public long ParameterBudget { get; init; } = long.MaxValue;

    private long _parameterValues;

    public int NextSeed() => _random.Next();

    /// <summary>The parameter <c>{layer}.{suffix}</c> of <paramref name="shape"/>, once its size is known to fit an array and the budget.</summary>
    public Parameter NewParameter(string layer, string suffix, int[] shape, ParameterKind kind)
    {
        long size = 1;
        foreach (int d in shape) size = Math.Min(size * Math.Max(d, 0), (long)Array.MaxLength + 1);
        string name = $"{layer}.{suffix}";
        if (size > Array.MaxLength)
            throw new ArgumentException($"Layer '{layer}': the parameter '{name}' of shape {Engine.Shape.Format(shape)} has more values than an array holds ({Array.MaxLength}).");
        if (size > ParameterBudget - _parameterValues)
            throw new ArgumentException(
                $"Layer '{layer}': the parameter '{name}' of shape {Engine.Shape.Format(shape)} needs {size} values, more than the {ParameterBudget - _parameterValues} " +
                $"left of the {ParameterBudget} the network may have.");
        _parameterValues += size;
        return new Parameter(name, shape, kind);
    }

    /// <summary>Fills <paramref name="weights"/> by <see cref="Initializer"/> for a layer with the given fans.</summary>
    public void Initialize(Span<float> weights, int fanIn, int fanOut)
    {
        switch (Initializer)
        {
            case WeightInitializer.GlorotUniform:
                float a = MathF.Sqrt(6f / (fanIn + fanOut));
                for (int i = 0; i < weights.Length; i++) weights[i] = (float)((_random.NextDouble() * 2 - 1) * a);
                break;
            case WeightInitializer.GlorotNormal:
                FillNormal(weights, MathF.Sqrt(2f / (fanIn + fanOut)));
                break;
            case WeightInitializer.HeNormal:
                FillNormal(weights, MathF.Sqrt(2f / fanIn));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(Initializer), Initializer, "Unknown weight initializer.");
        }
    }

    private void FillNormal(Span<float> weights, float std)
    {
        for (int i = 0; i < weights.Length; i++)
        {
            // Box–Muller; 1 − U avoids log(0).
            double u1 = 1.0 - _random.NextDouble(), u2 = _random.NextDouble();
            weights[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
    }
}
