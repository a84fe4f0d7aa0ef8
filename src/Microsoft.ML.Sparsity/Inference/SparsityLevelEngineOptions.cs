namespace Microsoft.ML.Sparsity.Inference;

/// <summary>How a <see cref="SparsityLevelPredictionEngine{TSrc, TDst}"/> chooses the sparsity level of its predictions.</summary>
public sealed class SparsityLevelEngineOptions
{
    /// <summary>
    /// The latency each prediction should stay within, or null (default) for no automatic choice. With a budget the
    /// engine times every level at warm-up, starts at the densest level that fits (the sparsest when none does; see
    /// <see cref="SparsityLevelPredictionEngine{TSrc, TDst}.WithinBudget"/>) and reroutes to sparser levels and back as
    /// the latencies it observes under load rise and fall.
    /// </summary>
    public TimeSpan? LatencyBudget;

    /// <summary>The level predictions use without a budget, one of the model's levels; null (default) is the densest.</summary>
    public double? Level;

    /// <summary>Predictions timed per level at warm-up, in interleaved rounds (the median is kept), &gt; 0. Default 200.</summary>
    public int WarmUpPredictions = 200;
}
