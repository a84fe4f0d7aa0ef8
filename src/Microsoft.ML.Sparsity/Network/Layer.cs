using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>
/// A layer of the engine's sequential network. Activations are row-major batches: example b's values occupy
/// <c>[b * InputSize, (b + 1) * InputSize)</c>; image activations are channels-last (<c>[height, width, channels]</c>).
/// </summary>
/// <remarks>
/// Forward and backward write into buffers the network owns, so a training step allocates nothing.
/// Backward overwrites (not accumulates) each parameter's gradient.
/// </remarks>
internal abstract class Layer
{
    protected Layer(string name, int[] inputShape, int[] outputShape)
    {
        Name = name;
        InputShape = inputShape;
        OutputShape = outputShape;
        InputSize = Shape.Size(inputShape);
        OutputSize = Shape.Size(outputShape);
    }

    public string Name { get; }
    public int[] InputShape { get; }
    public int[] OutputShape { get; }
    public int InputSize { get; }
    public int OutputSize { get; }

    /// <summary>The trainable parameters, weights first.</summary>
    public virtual IReadOnlyList<Parameter> Parameters => [];

    /// <summary>The multiply-adds one example costs in the forward pass.</summary>
    public virtual long MultiplyAdds => 0;

    /// <summary>
    /// A term this layer adds to the training loss, as of its last training forward pass (e.g. a gate's λ·mean(gate));
    /// the layer's <see cref="Backward"/> adds the term's gradient itself. 0 for most layers.
    /// </summary>
    public virtual double AuxiliaryLoss => 0;

    /// <summary>Grows internal scratch buffers to hold <paramref name="batch"/> examples.</summary>
    public virtual void EnsureCapacity(int batch) { }

    public abstract void Forward(float[] x, float[] y, int batch, bool training);

    /// <param name="x">The forward input.</param>
    /// <param name="y">The forward output.</param>
    /// <param name="dy">The loss gradient with respect to <paramref name="y"/>.</param>
    /// <param name="dx">Receives the gradient with respect to <paramref name="x"/>; null when nobody needs it (the first layer).</param>
    /// <param name="batch">The number of examples.</param>
    public abstract void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch);
}

/// <summary>A trainable tensor with its gradient.</summary>
internal sealed class Parameter
{
    public Parameter(string name, int[] shape, ParameterKind kind)
    {
        Name = name;
        Shape = shape;
        Kind = kind;
        Value = new float[Engine.Shape.Size(shape)];
        Gradient = new float[Value.Length];
    }

    public string Name { get; }
    public int[] Shape { get; }
    public ParameterKind Kind { get; }
    public float[] Value { get; }
    public float[] Gradient { get; }
    public int Length => Value.Length;

    /// <summary>
    /// The sparsity mask (1 = kept, 0 = pruned), or null while the parameter is dense. Masked entries of
    /// <see cref="Value"/> are kept exactly 0: whoever sets or changes the mask zeroes them, and the optimiser
    /// multiplies each updated value (and its optimiser state) by the mask in the same pass.
    /// </summary>
    public float[]? Mask { get; set; }

    /// <summary>How the mask was made (e.g. "unstructured", "2:4"), or why the weight stayed dense; shown in sparsity reports.</summary>
    public string? SparsityNote { get; set; }

    /// <summary>
    /// In a network trained at nested sparsity levels (<see cref="SequentialNetwork.SparsityLevels"/>): for each value, how
    /// many of the levels, densest first, keep it (0: none, the value is pruned). Null for a weight every level keeps whole.
    /// </summary>
    public byte[]? LevelCodes { get; set; }
}

internal enum ParameterKind
{
    /// <summary>A weight matrix or kernel: what pruning acts on.</summary>
    Weight,
    Bias,
    /// <summary>Normalisation scale and shift.</summary>
    Normalization,
}
