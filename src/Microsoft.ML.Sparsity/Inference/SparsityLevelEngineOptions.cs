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

    /// <summary>
    /// How long warm-up predicts each level in turn, &gt; 0; the latencies kept are the medians of its last quarter.
    /// Default 2 s: the JIT optimises prediction code in stages, and the small CNN's levels, timed after 0.2 s, measured
    /// 85, 110 and 99 µs (the sparser levels slower), after 1.2 s 60, 42 and 32 µs, as they stay.
    /// </summary>
    public TimeSpan WarmUpTime = TimeSpan.FromSeconds(2);
}
