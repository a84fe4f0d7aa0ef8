namespace Microsoft.ML.Sparsity.Inference;

/// <summary>How a trained model stores a layer's weight for prediction, and so which kernels multiply by it.</summary>
/// <remarks>
/// The trained model picks a format per dense or convolution layer with <see cref="Auto"/> (the rule is in
/// docs/inference.md, calibrated by the benchmark harness); <see cref="Models.NeuralNetworkMulticlassModel.WithWeightFormats(WeightFormat)"/>
/// forces one. Every format gives the dense masked product to within float rounding (1e-5 relative).
/// </remarks>
public enum WeightFormat
{
    /// <summary>Chosen per layer from its sparsity pattern, density and shape.</summary>
    Auto = 0,

    /// <summary>Dense row-major float32, multiplied by the packed GEMM (GEMV at batch 1).</summary>
    Dense,

    /// <summary>Compressed sparse rows with 16-bit column indices (32-bit past 65,536 columns).</summary>
    Csr,

    /// <summary>
    /// Sliced ELLPACK: rows in tiles of 16 whose non-zeros are read through windows of 64 inputs, values padded per
    /// tile so that vector permutes replace gathers. The fastest unstructured format at batch 1; larger than CSR.
    /// </summary>
    SlicedEll,

    /// <summary>N:M compressed (N values and small indices per group of M inputs); the layer must be N:M sparse.</summary>
    NM,
}
