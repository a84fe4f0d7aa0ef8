using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// Which channels of a channel-pruned network can be removed without changing its predictions, and what their
/// removal does to the layers after them (<see cref="CompactNetwork"/> carries it out).
/// </summary>
/// <remarks>
/// <para>
/// A pruned channel is an output channel (a dense layer's neuron, a convolution's filter) whose weights are all
/// masked. Its output is not zero but a constant: the layer's bias, then whatever the batch norms and activations up
/// to the next dense or convolution layer make of it (pooling, dropout at inference and flattening keep a constant).
/// The channel can go when the next layer gets that constant's effect back exactly: when the constant is 0 (nothing to
/// reproduce), or when the next layer is dense or an unpadded convolution, whose every output then sees the constant
/// through all of its weights on the channel, a fixed sum that is added to its bias. Into a padded convolution a
/// non-zero constant meets zero padding at the borders, so its effect depends on the position: such a channel is kept
/// and reported. The last dense or convolution layer's outputs are the network's and are never removed; a layer whose
/// every channel is pruned keeps one (a layer needs an output).
/// </para>
/// <para>
/// Features are the last axis of an activation: an image's channels, a vector's values. Flattening an
/// [h, w, c] image puts channel k at every c-th value from k, so a dense layer after it loses those columns.
/// </para>
/// </remarks>
internal sealed class CompactPlan
{
    private readonly Dictionary<int, int[]> _keptOutputs = [];
    private readonly Dictionary<int, int[]> _keptInputs = [];
    private readonly Dictionary<int, (int Feature, float Value)[]> _folds = [];
    private readonly List<string> _keptPruned = [];

    private CompactPlan(SequentialNetwork network) => Network = network;

    public SequentialNetwork Network { get; }

    /// <summary>The output channels layer <paramref name="layer"/> keeps, increasing; null when it keeps all.</summary>
    public int[]? KeptOutputs(int layer) => _keptOutputs.GetValueOrDefault(layer);

    /// <summary>The input features (last axis; a dense layer's input columns) layer <paramref name="layer"/> keeps, increasing; null when all.</summary>
    public int[]? KeptInputs(int layer) => _keptInputs.GetValueOrDefault(layer);

    /// <summary>The removed input features of dense or convolution layer <paramref name="layer"/> whose constant value is not 0, to fold into its bias.</summary>
    public (int Feature, float Value)[] Folds(int layer) => _folds.GetValueOrDefault(layer) ?? [];

    /// <summary>Channels pruned but kept, per layer, with the reason (for the compaction report).</summary>
    public IReadOnlyList<string> KeptPruned => _keptPruned;

    /// <summary>Plans the compaction of <paramref name="network"/>.</summary>
    /// <exception cref="ArgumentException">No layer but the last has a pruned output channel; a pruned layer is followed by a
    /// layer the compaction cannot see through; or no pruned channel can be removed exactly.</exception>
    public static CompactPlan For(SequentialNetwork network)
    {
        var plan = new CompactPlan(network);
        var layers = network.Layers;
        int[] weighted = Enumerable.Range(0, layers.Count).Where(i => layers[i] is DenseLayer or Conv2dLayer).ToArray();
        bool anyPruned = false;
        for (int n = 0; n + 1 < weighted.Length; n++)
        {
            int[] pruned = PrunedRows(layers[weighted[n]]);
            if (pruned.Length == 0) continue;
            anyPruned = true;
            plan.PlanChain(weighted[n], weighted[n + 1], pruned);
        }
        if (weighted.Length > 0 && PrunedRows(layers[weighted[^1]]) is { Length: > 0 } outputs)
            plan._keptPruned.Add($"'{layers[weighted[^1]].Name}': {outputs.Length} pruned output(s) kept: they are the network's outputs.");
        if (!anyPruned)
            throw new ArgumentException(
                "The model has no pruned channel: no dense or convolution layer before the output layer has an output channel whose weights are all masked. " +
                "Prune channels first (SparsityPattern.OutputChannels), then compact.", "model");
        if (plan._keptOutputs.Count == 0)
            throw new ArgumentException($"No pruned channel of the model can be removed exactly: {string.Join(" ", plan._keptPruned)}", "model");
        return plan;
    }

    /// <summary>The output channels of a dense or convolution layer whose weights are all masked.</summary>
    private static int[] PrunedRows(Layer layer)
    {
        Parameter weight = layer is DenseLayer d ? d.Weight : ((Conv2dLayer)layer).Weight;
        if (weight.Mask is not { } mask) return [];
        int rows = weight.Shape[0], columns = weight.Length / rows;
        return Enumerable.Range(0, rows).Where(r => !mask.AsSpan(r * columns, columns).ContainsAnyExcept(0f)).ToArray();
    }

    /// <summary>Follows the constant outputs of <paramref name="pruned"/> channels of layer <paramref name="from"/> to layer <paramref name="to"/> and decides which go.</summary>
    private void PlanChain(int from, int to, int[] pruned)
    {
        var layers = Network.Layers;
        Layer source = layers[from];
        float[]? bias = (source as DenseLayer)?.Bias?.Value ?? (source as Conv2dLayer)?.Bias?.Value;
        // Each pruned channel's features in the current activation, with their (equal until a 1-D batch norm) values.
        int[] owner = [.. pruned];
        int[] feature = [.. pruned];
        float[] value = pruned.Select(c => bias?[c] ?? 0f).ToArray();
        var seenAt = new List<(int Layer, int[] Owner, int[] Feature)>();
        for (int k = from + 1; k <= to; k++)
        {
            Layer layer = layers[k];
            int[] inputShape = layers[k - 1].OutputShape; // a dense layer's own InputShape is already flat
            if (layer is FlattenLayer || layer is DenseLayer && inputShape.Length > 1)
                (owner, feature, value) = Flatten(inputShape, owner, feature, value);
            switch (layer)
            {
                case DenseLayer or Conv2dLayer:
                    seenAt.Add((k, owner, feature));
                    break;
                case BatchNormLayer norm:
                    seenAt.Add((k, owner, feature));
                    for (int i = 0; i < feature.Length; i++) value[i] = Normalize(norm, feature[i], value[i]);
                    break;
                case ActivationLayer activation:
                    for (int i = 0; i < value.Length; i++) value[i] = Activate(activation.Activation, value[i]);
                    break;
                case Pool2dLayer or GlobalAveragePoolLayer or DropoutLayer or FlattenLayer:
                    break; // a constant image pools to the same constant; dropout is the identity at inference
                default:
                    throw new ArgumentException(
                        $"Layer '{layer.Name}' ({layer.GetType().Name.Replace("Layer", "", StringComparison.Ordinal)}) follows '{source.Name}', which has {pruned.Length} pruned channel(s): " +
                        "between a pruned layer and the next dense or convolution layer compaction follows only batch norm, activations, pooling, dropout and flatten.", "model");
            }
        }

        Layer next = layers[to];
        bool folds = next is DenseLayer || next is Conv2dLayer { Padding: 0 };
        var removed = new HashSet<int>(pruned);
        var constant = new List<int>();
        for (int i = 0; i < owner.Length; i++)
            if (!folds && value[i] != 0 && removed.Remove(owner[i]))
                constant.Add(owner[i]);
        if (constant.Count > 0)
            _keptPruned.Add($"'{source.Name}': pruned channel(s) {string.Join(", ", constant.Order())} kept: their constant output is not 0 and " +
                            $"'{next.Name}' pads its input, so its effect there depends on the position " +
                            "(PruningOptions.PruneBiases, or a zero batch-norm γ and β, makes a pruned channel's output 0 through ReLU, leaky ReLU or tanh; not through a sigmoid, σ(0) = 0.5).");
        int channels = source.OutputShape[^1];
        if (removed.Count == channels)
        {
            int first = removed.Min();
            removed.Remove(first);
            _keptPruned.Add($"'{source.Name}': pruned channel {first} kept: every channel is pruned and a layer needs one output.");
        }
        if (removed.Count == 0) return;

        _keptOutputs[from] = Enumerable.Range(0, channels).Where(c => !removed.Contains(c)).ToArray();
        foreach (var (k, owners, features) in seenAt)
        {
            int width = layers[k] is DenseLayer ? layers[k].InputSize : layers[k].InputShape[^1];
            var gone = new HashSet<int>(features.Where((_, i) => removed.Contains(owners[i])));
            _keptInputs[k] = Enumerable.Range(0, width).Where(f => !gone.Contains(f)).ToArray();
        }
        _folds[to] = Enumerable.Range(0, owner.Length).Where(i => removed.Contains(owner[i]) && value[i] != 0).Select(i => (feature[i], value[i])).ToArray();
    }

    /// <summary>Channel c of an [h, w, C] image becomes values p·C + c of the flat vector, for every pixel p.</summary>
    private static (int[] Owner, int[] Feature, float[] Value) Flatten(int[] shape, int[] owner, int[] feature, float[] value)
    {
        int channels = shape[^1], pixels = Engine.Shape.Size(shape) / channels;
        int n = owner.Length;
        var (o, f, v) = (new int[n * pixels], new int[n * pixels], new float[n * pixels]);
        for (int p = 0; p < pixels; p++)
        for (int i = 0; i < n; i++)
            (o[p * n + i], f[p * n + i], v[p * n + i]) = (owner[i], p * channels + feature[i], value[i]);
        return (o, f, v);
    }

    /// <summary>Batch norm at inference on one value of feature <paramref name="c"/>, computed as <see cref="BatchNormLayer"/> does.</summary>
    private static float Normalize(BatchNormLayer norm, int c, float x)
    {
        float scale = norm.Gamma.Value[c] / MathF.Sqrt(norm.RunningVariance[c] + norm.Epsilon);
        float shift = norm.Beta.Value[c] - norm.RunningMean[c] * scale;
        return x * scale + shift;
    }

    private static float Activate(ActivationKind kind, float x) => kind switch
    {
        ActivationKind.ReLU => Math.Max(x, 0f),
        ActivationKind.LeakyReLU => x > 0 ? x : ActivationLayer.LeakySlope * x,
        ActivationKind.Tanh => MathF.Tanh(x),
        ActivationKind.Sigmoid => 1f / (1f + MathF.Exp(-x)),
        _ => throw new InvalidOperationException($"Unknown activation {kind}."),
    };
}
