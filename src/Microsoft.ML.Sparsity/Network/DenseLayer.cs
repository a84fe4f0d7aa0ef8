using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>y = x·Wᵀ + b with W stored [outputs, inputs] row-major (the layout of PyTorch and of ONNX Gemm with transB = 1).</summary>
internal sealed class DenseLayer : Layer
{
    private readonly WorkerPool _pool;
    private bool _fusedReLU;

    public DenseLayer(string name, int inputs, int outputs, bool useBias, LayerBuildContext context)
        : base(name, [inputs], [outputs])
    {
        _pool = context.Pool;
        Weight = context.NewParameter(name, "weight", [outputs, inputs], ParameterKind.Weight);
        context.Initialize(Weight.Value, inputs, outputs);
        Bias = useBias ? context.NewParameter(name, "bias", [outputs], ParameterKind.Bias) : null;
        Parameters = Bias is null ? [Weight] : [Weight, Bias];
    }

    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    public int Inputs => InputSize;
    public int Outputs => OutputSize;
    public override IReadOnlyList<Parameter> Parameters { get; }
    public override long MultiplyAdds => (long)Inputs * Outputs;

    /// <summary>The weight in an inference format (set on trained models' networks only); inference forwards use it.</summary>
    public IWeightMatrix? InferenceWeight { get; set; }

    /// <summary>
    /// On a prediction copy (its <see cref="InferenceWeight"/> attached): takes over a ReLU that comes first among
    /// <paramref name="following"/>, applied right after the bias, so a single example's forward skips that layer's
    /// call (its dispatch through the pool cost 20–40 ns of a 2.1 µs sparse LeNet prediction). Returns how many layers it took (0 or 1); the network skips them at inference.
    /// </summary>
    public int FuseFollowing(IEnumerable<Layer> following)
    {
        _fusedReLU = InferenceWeight is not null && following.FirstOrDefault() is ActivationLayer { Activation: ActivationKind.ReLU };
        return _fusedReLU ? 1 : 0;
    }

    public override void Forward(float[] x, float[] y, int batch, bool training)
    {
        if (!training && InferenceWeight is not null)
            InferenceWeight.MultiplyTransposed(_pool, x.AsSpan(0, batch * Inputs), batch, y);
        else
            Gemm.Multiply(_pool, false, true, batch, Outputs, Inputs, 1f, x, Inputs, Weight.Value, Inputs, 0f, y, Outputs);
        bool relu = !training && _fusedReLU;
        if (Bias is not null && relu)
            RowOps.AddToRowsThenReLU(y, Bias.Value, batch);
        else if (Bias is not null)
            RowOps.AddToRows(y, Bias.Value, batch);
        else if (relu)
            System.Numerics.Tensors.TensorPrimitives.Max(y.AsSpan(0, batch * Outputs), 0f, y.AsSpan(0, batch * Outputs)); // as ActivationLayer's ReLU
    }

    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        // dW[out, in] = dyᵀ · x ; db = Σ_rows dy ; dx = dy · W.
        Gemm.Multiply(_pool, true, false, Outputs, Inputs, batch, 1f, dy, Outputs, x, Inputs, 0f, Weight.Gradient, Inputs);
        if (Bias is not null) RowOps.SumRows(dy, Bias.Gradient, batch);
        if (dx is not null)
            Gemm.Multiply(_pool, false, false, batch, Inputs, Outputs, 1f, dy, Outputs, Weight.Value, Inputs, 0f, dx, Inputs);
    }
}
