namespace Microsoft.ML.Sparsity.Network;

/// <summary>
/// Layers applied in order, with the activation and gradient buffers they read and write. Buffers grow to the
/// largest batch seen and are reused, so steady-state forward and backward passes allocate nothing.
/// </summary>
internal sealed class SequentialNetwork
{
    private float[][] _activations = [];
    private float[][] _gradients = [];
    private int[] _fused;

    public SequentialNetwork(IReadOnlyList<LayerDefinition> definitions, int[] inputShape, LayerBuildContext context)
    {
        if (definitions.Count == 0) throw new ArgumentException("A network needs at least one layer.", nameof(definitions));
        InputShape = (int[])inputShape.Clone();
        Pool = context.Pool;
        var layers = new Layer[definitions.Count];
        var names = new HashSet<string>(StringComparer.Ordinal);
        var kindCounts = new Dictionary<string, int>();
        int[] shape = InputShape;
        for (int i = 0; i < definitions.Count; i++)
        {
            var definition = definitions[i] ?? throw new ArgumentException($"Layer {i} is null.", nameof(definitions));
            kindCounts.TryGetValue(definition.Kind, out int n);
            kindCounts[definition.Kind] = n + 1;
            string name = definition.Name ?? definition.Kind + n;
            if (!names.Add(name)) throw new ArgumentException($"Layer {i}: the name '{name}' is used by another layer.", nameof(definitions));
            try
            {
                layers[i] = definition.Build(name, shape, context);
            }
            catch (OverflowException e)
            {
                throw new ArgumentException($"Layer '{name}' ({definition.Kind}) on input {Engine.Shape.Format(shape)}: its sizes overflow 32-bit integers.", nameof(definitions), e);
            }
            shape = layers[i].OutputShape;
        }
        Layers = layers;
        _fused = new int[layers.Length];
        Definitions = definitions.ToArray();
        Parameters = layers.SelectMany(l => l.Parameters).ToArray();
        StateArrays = Parameters.Select(p => p.Value)
            .Concat(layers.OfType<BatchNormLayer>().SelectMany(b => new[] { b.RunningMean, b.RunningVariance }))
            .ToArray();
    }

    public IReadOnlyList<Layer> Layers { get; }

    /// <summary>The worker pool the layers run on.</summary>
    public Engine.WorkerPool Pool { get; }
    public IReadOnlyList<LayerDefinition> Definitions { get; }
    public int[] InputShape { get; }
    public int InputSize => Layers[0].InputSize;
    public int OutputSize => Layers[^1].OutputSize;
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>
    /// The sparsity levels the network was trained to serve, densest first (<see cref="NestedSparsity.NestedSparsityOptions"/>);
    /// each weight's <see cref="Parameter.LevelCodes"/> say which levels keep it. Null for a network of one level.
    /// </summary>
    public double[]? SparsityLevels { get; set; }

    /// <summary>The index in <see cref="SparsityLevels"/> of the level the network predicts at (0, the densest, by default).</summary>
    public int ActiveLevel { get; set; }

    /// <summary>Everything that defines the network's function: parameter values, then batch-norm running statistics.</summary>
    public IReadOnlyList<float[]> StateArrays { get; }
    public int Capacity { get; private set; }

    /// <summary>The sum of the layers' <see cref="Layer.AuxiliaryLoss"/> terms of the last training forward pass.</summary>
    public double AuxiliaryLoss
    {
        get
        {
            double sum = 0;
            for (int i = 0; i < Layers.Count; i++) sum += Layers[i].AuxiliaryLoss;
            return sum;
        }
    }

    /// <summary>The network's input buffer (row-major, <see cref="InputSize"/> values per example): fill it, then call <see cref="Forward"/>.</summary>
    public float[] Input => _activations[0];

    /// <summary>The loss gradient with respect to the network's output: fill it, then call <see cref="Backward"/>.</summary>
    public float[] OutputGradient => _gradients[^1];

    /// <summary>A copy with the same layers, parameter values, masks, level codes (shared: set once, when training ends) and normalisation statistics, and buffers of its own.</summary>
    /// <param name="pool">The copy's worker pool.</param>
    /// <param name="seed">Seeds the copy's dropout layers.</param>
    public SequentialNetwork Clone(Engine.WorkerPool pool, int seed = 0)
    {
        var copy = new SequentialNetwork(Definitions, InputShape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, seed));
        for (int i = 0; i < StateArrays.Count; i++) StateArrays[i].CopyTo(copy.StateArrays[i], 0);
        for (int i = 0; i < Parameters.Count; i++)
        {
            copy.Parameters[i].Mask = (float[]?)Parameters[i].Mask?.Clone();
            copy.Parameters[i].SparsityNote = Parameters[i].SparsityNote;
            copy.Parameters[i].LevelCodes = Parameters[i].LevelCodes;
        }
        copy.SparsityLevels = SparsityLevels;
        copy.ActiveLevel = ActiveLevel;
        return copy;
    }

    /// <summary>
    /// A copy of the <see cref="ActiveLevel"/> alone: the weights it prunes zeroed and masked, without levels or codes.
    /// For a network of one level, the same as <see cref="Clone"/>.
    /// </summary>
    public SequentialNetwork CloneAtActiveLevel(Engine.WorkerPool pool, int seed = 0)
    {
        var copy = Clone(pool, seed);
        if (SparsityLevels is null) return copy;
        foreach (var parameter in copy.Parameters)
        {
            if (parameter.LevelCodes is not { } codes) continue;
            parameter.Mask = new float[parameter.Length];
            NestedSparsity.NestedLevelCodes.Mask(codes, ActiveLevel, parameter.Mask);
            System.Numerics.Tensors.TensorPrimitives.Multiply(parameter.Value, parameter.Mask, parameter.Value);
            parameter.LevelCodes = null;
        }
        copy.SparsityLevels = null;
        copy.ActiveLevel = 0;
        return copy;
    }

    public void EnsureCapacity(int batch)
    {
        if (batch <= Capacity) return;
        _activations = new float[Layers.Count + 1][];
        _gradients = new float[Layers.Count + 1][];
        _activations[0] = new float[batch * InputSize];
        _gradients[0] = [];
        for (int i = 0; i < Layers.Count; i++)
        {
            _activations[i + 1] = new float[batch * Layers[i].OutputSize];
            _gradients[i + 1] = new float[batch * Layers[i].OutputSize];
            Layers[i].EnsureCapacity(batch);
        }
        Capacity = batch;
    }

    /// <summary>
    /// On a prediction copy: lets each convolution take over the ReLU and max pooling that follow it
    /// (<see cref="Conv2dLayer.FuseFollowing"/>) and each dense layer the ReLU after it (<see cref="DenseLayer.FuseFollowing"/>), and the layer before a flatten write the flattened buffer (a flatten
    /// moves no value: activations are channels-last, so its output is its input; copying it cost two threads 20–25 µs
    /// of the CNN's 830 at batch 16, the halves being in the other core's cache); inference forwards then skip the
    /// layers taken. Call after the prediction weights are attached.
    /// </summary>
    public void FuseForInference()
    {
        for (int i = 0; i < Layers.Count; i++)
        {
            _fused[i] = Layers[i] switch
            {
                Conv2dLayer conv => conv.FuseFollowing(Layers.Skip(i + 1)),
                DenseLayer dense => dense.FuseFollowing(Layers.Skip(i + 1)),
                _ => 0,
            };
            while (i + 1 + _fused[i] < Layers.Count && Layers[i + 1 + _fused[i]] is FlattenLayer)
                _fused[i]++;
            i += _fused[i];
        }
    }

    /// <summary>How many layers after layer <paramref name="i"/> its inference forward applies too (0 unless fused by <see cref="FuseForInference"/>).</summary>
    public int FusedAfter(int i) => _fused[i];

    /// <summary>The most values per example an inference forward writes into one activation buffer (layers fused away write none).</summary>
    public int WidestInferenceActivation()
    {
        int widest = InputSize;
        for (int i = 0; i < Layers.Count; i += 1 + _fused[i])
            widest = Math.Max(widest, Layers[i + _fused[i]].OutputSize);
        return widest;
    }

    /// <summary>Runs the layers on the first <paramref name="batch"/> examples of <see cref="Input"/>; returns the output buffer.</summary>
    public float[] Forward(int batch, bool training)
    {
        for (int i = 0; i < Layers.Count; i++)
        {
            int fused = training ? 0 : _fused[i];
            Layers[i].Forward(_activations[i], _activations[i + 1 + fused], batch, training);
            i += fused;
        }

        return _activations[^1];
    }

    /// <summary>Back-propagates <see cref="OutputGradient"/>, leaving each parameter's gradient in place.</summary>
    public void Backward(int batch)
    {
        for (int i = Layers.Count - 1; i >= 0; i--)
            Layers[i].Backward(_activations[i], _activations[i + 1], _gradients[i + 1], i == 0 ? null : _gradients[i], batch);
    }
}
