namespace Microsoft.ML.Sparsity.Inference;

/// <summary>The storage a trained model uses for one layer's weight at prediction time.</summary>
/// <param name="LayerName">The layer.</param>
/// <param name="SingleExample">The format that serves one example at a time (batch 1).</param>
/// <param name="Batched">The format that serves batches (and convolutions, whose rows are pixels).</param>
/// <param name="Density">The fraction of non-zero weights.</param>
/// <param name="Pattern">The sparsity structure found in the weight: "dense", "unstructured" or "N:M" (e.g. "2:4").</param>
/// <param name="Bytes">Bytes the formats hold (both, when they differ).</param>
public sealed record LayerWeightFormat(string LayerName, WeightFormat SingleExample, WeightFormat Batched, double Density, string Pattern, long Bytes);
