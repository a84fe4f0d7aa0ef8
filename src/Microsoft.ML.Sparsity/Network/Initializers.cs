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

    public int NextSeed() => _random.Next();

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
