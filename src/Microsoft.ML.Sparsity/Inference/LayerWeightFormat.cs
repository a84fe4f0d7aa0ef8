namespace Microsoft.ML.Sparsity.Inference;

/// <summary>The storage a trained model uses for one layer's weight at prediction time.</summary>
/// <param name="LayerName">The layer.</param>
/// <param name="SingleExample">The format that serves one example at a time (batch 1).</param>
/// <param name="Batched">The format that serves batches (and convolutions, whose rows are pixels).</param>
/// <param name="Density">The fraction of non-zero weights.</param>
/// <param name="Pattern">The sparsity structure found in the weight: "dense", "unstructured" or "N:M" (e.g. "2:4").</param>
/// <param name="Bytes">Bytes the formats hold (both, when they differ).</param>
public sealed record LayerWeightFormat(string LayerName, WeightFormat SingleExample, WeightFormat Batched, double Density, string Pattern, long Bytes)
{
    /// <summary>How the formats were chosen: asked for, measured on this machine, or by the fixed rule.</summary>
    public FormatChoice ChosenBy { get; init; }

    /// <summary>
    /// The vector instructions the single-example format's kernel runs on this CPU: "AVX-512", "AVX2",
    /// "Vector128 (SSE)", "Vector128 (NEON)", or "scalar" for a plain loop.
    /// </summary>
    public string SingleExampleKernel { get; init; } = "";

    /// <summary>The vector instructions the batched format's kernel runs on this CPU (as <see cref="SingleExampleKernel"/>).</summary>
    public string BatchedKernel { get; init; } = "";

    /// <summary>
    /// What to know about the choice, empty when nothing: a format that runs a scalar fallback on this CPU (a forced
    /// format is honoured even so), or a calibration that could not measure and left the choice to the fixed rule.
    /// </summary>
    public string Note { get; init; } = "";
}

/// <summary>How a layer's prediction formats were chosen (<see cref="LayerWeightFormat.ChosenBy"/>).</summary>
public enum FormatChoice
{
    /// <summary>Timed on this machine (<see cref="WeightFormat.Auto"/>).</summary>
    Calibrated = 0,

    /// <summary>
    /// By the fixed rule for this CPU's vector instructions: asked for (<see cref="WeightFormat.FixedRule"/>), or
    /// because a calibration could not measure (<see cref="LayerWeightFormat.Note"/> says why).
    /// </summary>
    FixedRule,

    /// <summary>Forced by <c>WithWeightFormats</c>.</summary>
    Requested,
}
