using System.Text.Json.Serialization;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>
/// Describes one layer of a sequential network, in the order the data flows. Create definitions with the
/// factory methods of <see cref="Layers"/>; the trainer builds the layers once it knows the input shape.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(DenseDefinition), "dense")]
[JsonDerivedType(typeof(Conv2dDefinition), "conv2d")]
[JsonDerivedType(typeof(Pool2dDefinition), "pool2d")]
[JsonDerivedType(typeof(GlobalAveragePoolDefinition), "globalAveragePool")]
[JsonDerivedType(typeof(BatchNormDefinition), "batchNorm")]
[JsonDerivedType(typeof(ActivationDefinition), "activation")]
[JsonDerivedType(typeof(FlattenDefinition), "flatten")]
[JsonDerivedType(typeof(DropoutDefinition), "dropout")]
public abstract record LayerDefinition
{
    private protected LayerDefinition() { }

    /// <summary>An optional name for the layer (unique within a network); by default <c>kind + index</c>, e.g. <c>dense0</c>.</summary>
    public string? Name { get; init; }

    internal abstract string Kind { get; }

    internal abstract Layer Build(string name, int[] inputShape, LayerBuildContext context);

    private protected static int[] RequireImage(string name, int[] inputShape, string kind) =>
        inputShape.Length == 3
            ? inputShape
            : throw new ArgumentException(
                $"Layer '{name}' ({kind}) needs image input of shape [height, width, channels]; it receives {Engine.Shape.Format(inputShape)}. " +
                "Give the trainer's Options.InputShape (e.g. [28, 28, 1]), or a features column with image dimensions " +
                "([VectorType(28, 28, 1)]), or put the layer after the convolutional part.", nameof(inputShape));
}

/// <summary>A fully connected layer: <c>y = x·Wᵀ + b</c>, with <c>W</c> of shape [units, inputs]. Flattens its input.</summary>
/// <param name="Units">The number of outputs.</param>
/// <param name="UseBias">Whether the layer adds a bias.</param>
public sealed record DenseDefinition(int Units, bool UseBias = true) : LayerDefinition
{
    internal override string Kind => "dense";

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context)
    {
        if (Units <= 0) throw new ArgumentOutOfRangeException(nameof(Units), Units, $"Layer '{name}': the number of units must be positive.");
        return new DenseLayer(name, Engine.Shape.Size(inputShape), Units, UseBias, context);
    }
}

/// <summary>A 2-D convolution over channels-last images, with weights of shape [outChannels, kernel, kernel, inChannels].</summary>
/// <param name="OutChannels">The number of filters.</param>
/// <param name="KernelSize">The square kernel's side.</param>
/// <param name="Stride">The step between kernel positions.</param>
/// <param name="Padding">Zero padding added on every side.</param>
/// <param name="UseBias">Whether the layer adds a bias per filter.</param>
public sealed record Conv2dDefinition(int OutChannels, int KernelSize, int Stride = 1, int Padding = 0, bool UseBias = true) : LayerDefinition
{
    internal override string Kind => "conv";

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context)
    {
        RequireImage(name, inputShape, "Conv2d");
        if (OutChannels <= 0) throw new ArgumentOutOfRangeException(nameof(OutChannels), OutChannels, $"Layer '{name}': must be positive.");
        if (KernelSize <= 0) throw new ArgumentOutOfRangeException(nameof(KernelSize), KernelSize, $"Layer '{name}': must be positive.");
        if (Stride <= 0) throw new ArgumentOutOfRangeException(nameof(Stride), Stride, $"Layer '{name}': must be positive.");
        if (Padding < 0) throw new ArgumentOutOfRangeException(nameof(Padding), Padding, $"Layer '{name}': must not be negative.");
        return new Conv2dLayer(name, inputShape, OutChannels, KernelSize, Stride, Padding, UseBias, context);
    }
}

/// <summary>Which statistic a pooling layer takes over each window.</summary>
public enum PoolingKind
{
    /// <summary>The largest value in the window.</summary>
    Max,
    /// <summary>The mean of the window (padding excluded: windows never leave the image).</summary>
    Average,
}

/// <summary>2-D pooling over square windows of channels-last images.</summary>
/// <param name="Pooling">Max or average.</param>
/// <param name="KernelSize">The window's side.</param>
/// <param name="Stride">The step between windows; 0 means <paramref name="KernelSize"/>.</param>
public sealed record Pool2dDefinition(PoolingKind Pooling, int KernelSize, int Stride = 0) : LayerDefinition
{
    internal override string Kind => Pooling == PoolingKind.Max ? "maxpool" : "avgpool";

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context)
    {
        RequireImage(name, inputShape, "Pool2d");
        if (KernelSize <= 0) throw new ArgumentOutOfRangeException(nameof(KernelSize), KernelSize, $"Layer '{name}': must be positive.");
        if (Stride < 0) throw new ArgumentOutOfRangeException(nameof(Stride), Stride, $"Layer '{name}': must not be negative.");
        return new Pool2dLayer(name, inputShape, Pooling, KernelSize, Stride == 0 ? KernelSize : Stride, context);
    }
}

/// <summary>Global average pooling: the mean of each channel over the image, giving [channels].</summary>
public sealed record GlobalAveragePoolDefinition : LayerDefinition
{
    internal override string Kind => "gap";

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context) =>
        new GlobalAveragePoolLayer(name, RequireImage(name, inputShape, "GlobalAveragePool"));
}

/// <summary>
/// Batch normalisation over the last dimension (features of a vector, channels of an image): training uses the
/// batch statistics and updates running estimates; inference uses the running estimates.
/// </summary>
/// <param name="Momentum">The weight of the current batch in the running estimates.</param>
/// <param name="Epsilon">Added to the variance for numerical stability.</param>
public sealed record BatchNormDefinition(float Momentum = 0.1f, float Epsilon = 1e-5f) : LayerDefinition
{
    internal override string Kind => "batchnorm";

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context)
    {
        if (!(Momentum > 0 && Momentum <= 1)) throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, $"Layer '{name}': must be in (0, 1].");
        if (!(Epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, $"Layer '{name}': must be positive.");
        return new BatchNormLayer(name, inputShape, Momentum, Epsilon, context);
    }
}

/// <summary>Element-wise activation functions.</summary>
public enum ActivationKind
{
    /// <summary>max(0, x).</summary>
    ReLU,
    /// <summary>x for x &gt; 0, 0.01·x otherwise.</summary>
    LeakyReLU,
    /// <summary>tanh(x).</summary>
    Tanh,
    /// <summary>1 / (1 + e^−x).</summary>
    Sigmoid,
}

/// <summary>An element-wise activation.</summary>
/// <param name="Activation">The function.</param>
public sealed record ActivationDefinition(ActivationKind Activation) : LayerDefinition
{
    internal override string Kind => Activation.ToString().ToLowerInvariant();

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context) =>
        new ActivationLayer(name, inputShape, Activation, context.Pool);
}

/// <summary>Flattens the input to a vector.</summary>
public sealed record FlattenDefinition : LayerDefinition
{
    internal override string Kind => "flatten";

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context) => new FlattenLayer(name, inputShape);
}

/// <summary>Inverted dropout: in training, zeroes each value with probability <paramref name="Rate"/> and scales the rest by 1/(1 − rate).</summary>
/// <param name="Rate">The drop probability, in [0, 1).</param>
public sealed record DropoutDefinition(float Rate) : LayerDefinition
{
    internal override string Kind => "dropout";

    internal override Layer Build(string name, int[] inputShape, LayerBuildContext context)
    {
        if (!(Rate >= 0 && Rate < 1)) throw new ArgumentOutOfRangeException(nameof(Rate), Rate, $"Layer '{name}': the dropout rate must be in [0, 1).");
        return new DropoutLayer(name, inputShape, Rate, context.NextSeed());
    }
}

/// <summary>Factory methods for <see cref="LayerDefinition"/>s and ready-made architectures.</summary>
public static class Layers
{
    /// <summary>A fully connected layer with <paramref name="units"/> outputs.</summary>
    public static DenseDefinition Dense(int units, bool useBias = true) => new(units, useBias);

    /// <summary>A 2-D convolution.</summary>
    public static Conv2dDefinition Conv2d(int outChannels, int kernelSize, int stride = 1, int padding = 0, bool useBias = true) =>
        new(outChannels, kernelSize, stride, padding, useBias);

    /// <summary>Max pooling over <paramref name="kernelSize"/>² windows (stride defaults to the kernel size).</summary>
    public static Pool2dDefinition MaxPool2d(int kernelSize, int stride = 0) => new(PoolingKind.Max, kernelSize, stride);

    /// <summary>Average pooling over <paramref name="kernelSize"/>² windows (stride defaults to the kernel size).</summary>
    public static Pool2dDefinition AvgPool2d(int kernelSize, int stride = 0) => new(PoolingKind.Average, kernelSize, stride);

    /// <summary>Global average pooling.</summary>
    public static GlobalAveragePoolDefinition GlobalAveragePool() => new();

    /// <summary>Batch normalisation (1-D over features, 2-D over the channels of an image).</summary>
    public static BatchNormDefinition BatchNorm(float momentum = 0.1f, float epsilon = 1e-5f) => new(momentum, epsilon);

    /// <summary>A ReLU activation.</summary>
    public static ActivationDefinition ReLU() => new(ActivationKind.ReLU);

    /// <summary>An element-wise activation.</summary>
    public static ActivationDefinition Activation(ActivationKind kind) => new(kind);

    /// <summary>Flattens the input.</summary>
    public static FlattenDefinition Flatten() => new();

    /// <summary>Dropout with the given rate.</summary>
    public static DropoutDefinition Dropout(float rate) => new(rate);

    /// <summary>
    /// The hidden layers of LeNet-300-100 (LeCun et al. 1998, as used by "The Lottery Ticket Hypothesis", 2019):
    /// 300 and 100 ReLU units; the trainer adds the output layer.
    /// </summary>
    public static LayerDefinition[] LeNet300100() => [Dense(300), ReLU(), Dense(100), ReLU()];

    /// <summary>
    /// A small CNN for 28×28 images: conv3×3-32 (same padding), ReLU, max-pool 2, conv3×3-64, ReLU, max-pool 2,
    /// dense 128, ReLU; the trainer adds the output layer.
    /// </summary>
    public static LayerDefinition[] SmallCnn() =>
        [Conv2d(32, 3, padding: 1), ReLU(), MaxPool2d(2), Conv2d(64, 3, padding: 1), ReLU(), MaxPool2d(2), Flatten(), Dense(128), ReLU()];

    /// <summary>
    /// A wider CNN for 28×28 images, where convolutions dominate the compute (about 29 million multiply-adds per
    /// example): conv3×3-64, conv3×3-128 and conv3×3-256 (same padding, no bias), each followed by batch norm and ReLU,
    /// max-pool 2 after the first two, then a global average pool; the trainer adds the output layer. The batch norms
    /// are what channel exploration (<see cref="ChannelPruning.ChexOptions"/>) ranks channels by.
    /// </summary>
    public static LayerDefinition[] WideCnn() =>
    [
        Conv2d(64, 3, padding: 1, useBias: false), BatchNorm(), ReLU(), MaxPool2d(2),
        Conv2d(128, 3, padding: 1, useBias: false), BatchNorm(), ReLU(), MaxPool2d(2),
        Conv2d(256, 3, padding: 1, useBias: false), BatchNorm(), ReLU(), GlobalAveragePool(),
    ];
}
