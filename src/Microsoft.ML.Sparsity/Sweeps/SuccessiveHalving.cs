namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>
/// Asynchronous successive halving (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020) as an
/// early-stopping rule: rungs at r, rη, rη², … epochs; a trial reaching a rung goes on only if its validation accuracy
/// is in the top 1/η of the accuracies recorded at that rung. Deviation, for reproducibility: a trial is compared with
/// the trials of lower index only (and waits for them to reach the rung or end), so decisions do not depend on which
/// trial finishes first, and a resumed or parallel sweep stops exactly the trials a sequential one stops. Second
/// deviation, for the Pareto front: a trial competes only with trials of its own <see cref="Bracket"/> (the same pattern
/// and target sparsity), since accuracy alone would stop every sparse trial in favour of the dense ones (measured:
/// in a 16-trial LeNet-300-100 sweep every gradual-pruning trial lost its rung to a dense one, mid-schedule).
/// </summary>
internal sealed class SuccessiveHalving(int firstRung, int reduction)
{
    public int FirstRung { get; } = firstRung;
    public int Reduction { get; } = reduction;

    /// <summary>
    /// The trials a trial competes with at its rungs: the dense ones, or those of the same pattern and target sparsity.
    /// Lottery tickets, whose curves count levels, not epochs, are never at a rung, and a bracket of their own keeps
    /// their levels out of other trials' rungs.
    /// </summary>
    public static string Bracket(TrialSettings settings) =>
        settings.Method == SweepMethod.Dense ? "dense"
        : (settings.Method == SweepMethod.LotteryTicket ? "lottery ticket " : "") + $"{settings.Pattern} {settings.Sparsity?.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>
    /// True when <paramref name="epoch"/> is a rung of a trial of <paramref name="settings"/> (its last epoch never is;
    /// a lottery ticket's curve counts levels, not epochs, so it never is at a rung and runs to the end).
    /// </summary>
    public bool IsRung(TrialSettings settings, int epoch)
    {
        if (settings.Method == SweepMethod.LotteryTicket || epoch >= settings.Epochs) return false;
        for (long rung = FirstRung; rung <= epoch; rung *= Reduction)
            if (rung == epoch) return true;
        return false;
    }

    /// <summary>
    /// Whether a trial with <paramref name="accuracy"/> at a rung goes on, given the accuracies of the earlier trials at
    /// that rung: its rank among them all (equal accuracies: the earlier trials first) is within the top
    /// max(1, ⌊n/η⌋) of the n.
    /// </summary>
    public bool Continues(double accuracy, IReadOnlyCollection<double> earlier)
    {
        int ahead = earlier.Count(a => a >= accuracy);
        return ahead < Math.Max(1, (earlier.Count + 1) / Reduction);
    }
}
