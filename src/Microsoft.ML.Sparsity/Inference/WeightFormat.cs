namespace Microsoft.ML.Sparsity.Inference;

/// <summary>How a trained model stores a layer's weight for prediction, and so which kernels multiply by it.</summary>
/// <remarks>
/// The trained model picks a format per dense or convolution layer with <see cref="Auto"/>, by timing the formats the
/// layer can take on the machine it runs on, or with <see cref="FixedRule"/> from a fixed table;
/// <see cref="Models.NeuralNetworkMulticlassModel.WithWeightFormats(WeightFormat)"/> sets either or forces a format, and
/// <see cref="LayerWeightFormat"/> reports what each layer got, how, and which vector instructions its kernels run.
/// Every format gives the dense masked product to within float rounding (1e-5 relative).
/// </remarks>
public enum WeightFormat
{
    /// <summary>
    /// Chosen per layer by measurement on this machine (the default): the formats the layer can take are timed on its
    /// weight at batch 1 and at a batch of 64, alternating, and the fastest by median serves each. The measurement
    /// takes milliseconds per layer and is done once per process for each weight shape, density and N:M pattern. A
    /// machine whose timer cannot measure it gets <see cref="FixedRule"/>'s choice, and the report says so.
    /// </summary>
    /// <remarks>Different machines (or one machine under different load) may choose differently; results differ only by float rounding.</remarks>
    Auto = 0,

    /// <summary>Dense row-major float32, multiplied by the packed GEMM (GEMV at batch 1).</summary>
    Dense,

    /// <summary>Compressed sparse rows with 16-bit column indices (32-bit past 65,536 columns).</summary>
    Csr,

    /// <summary>
    /// Sliced ELLPACK: rows in tiles (16 with AVX-512, 24 with AVX2, 4 on 128 bits) whose non-zeros are read through
    /// windows of inputs (64, 8, 4), values padded per tile so that vector permutes replace gathers. The fastest
    /// unstructured format at batch 1; larger than CSR.
    /// </summary>
    SlicedEll,

    /// <summary>N:M compressed (N values and small indices per group of M inputs); the layer must be N:M sparse.</summary>
    NM,

    /// <summary>
    /// Chosen per layer by a fixed rule of density and N:M pattern, with thresholds per vector instruction set
    /// (AVX-512, AVX2, 128-bit vectors) measured by the benchmark harness (docs/inference.md, "Which format a layer
    /// gets"): the same weight on the same kind of CPU always gets the same formats. For users who need the choice
    /// reproducible; <see cref="Auto"/> is usually as fast or faster.
    /// </summary>
    FixedRule,
}
