using System.Globalization;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>What <see cref="SweepResult.Best"/> optimises.</summary>
public enum SweepGoal
{
    /// <summary>The highest validation accuracy.</summary>
    HighestAccuracy,

    /// <summary>The lowest single-prediction latency.</summary>
    LowestLatency,

    /// <summary>The smallest model file.</summary>
    SmallestFile,
}

/// <summary>A finished sweep: every trial, and the Pareto front of the completed ones.</summary>
public sealed class SweepResult
{
    internal SweepResult(IReadOnlyList<SweepTrial> trials, SweepObjectives objectives)
    {
        Trials = trials;
        Objectives = objectives;
        var completed = trials.Where(t => t.Status == SweepTrialStatus.Completed).ToList();
        ParetoFront = [.. completed.Where(t => !completed.Any(o => Dominates(o, t))).OrderByDescending(t => t.ValidationAccuracy).ThenBy(t => t.Index)];
    }

    /// <summary>Every trial that ran, by index.</summary>
    public IReadOnlyList<SweepTrial> Trials { get; }

    /// <summary>What was measured besides accuracy.</summary>
    public SweepObjectives Objectives { get; }

    /// <summary>
    /// The completed trials no other completed trial beats on every objective (at least as good on each, better on one):
    /// higher validation accuracy, and lower latency and bytes when measured. Highest accuracy first.
    /// </summary>
    public IReadOnlyList<SweepTrial> ParetoFront { get; }

    /// <summary>
    /// The best completed trial for <paramref name="goal"/> among those that meet every constraint given, e.g.
    /// <c>Best(SweepGoal.HighestAccuracy, maxLatencyMicroseconds: 5)</c> or
    /// <c>Best(SweepGoal.SmallestFile, minAccuracy: 0.89)</c>. Ties: the lower index.
    /// </summary>
    /// <exception cref="ArgumentException">The goal or a constraint needs an objective the sweep did not measure, or a constraint is out of range.</exception>
    /// <exception cref="InvalidOperationException">No completed trial meets the constraints; the message says which came closest.</exception>
    public SweepTrial Best(SweepGoal goal, double? minAccuracy = null, double? maxLatencyMicroseconds = null, long? maxBytes = null)
    {
        bool latency = Objectives.HasFlag(SweepObjectives.Latency), bytes = Objectives.HasFlag(SweepObjectives.Bytes);
        if ((goal == SweepGoal.LowestLatency || maxLatencyMicroseconds is not null) && !latency)
            throw new ArgumentException("The sweep did not measure latency (SparsitySweepOptions.Objectives).", goal == SweepGoal.LowestLatency ? nameof(goal) : nameof(maxLatencyMicroseconds));
        if ((goal == SweepGoal.SmallestFile || maxBytes is not null) && !bytes)
            throw new ArgumentException("The sweep did not measure bytes (SparsitySweepOptions.Objectives).", goal == SweepGoal.SmallestFile ? nameof(goal) : nameof(maxBytes));
        if (minAccuracy is { } a && !(a >= 0 && a <= 1)) throw new ArgumentOutOfRangeException(nameof(minAccuracy), a, "An accuracy is in [0, 1].");
        if (maxLatencyMicroseconds is { } l0 && !(l0 >= 0)) throw new ArgumentOutOfRangeException(nameof(maxLatencyMicroseconds), l0, "A latency is at least 0 µs.");
        if (maxBytes is { } b0 && b0 < 0) throw new ArgumentOutOfRangeException(nameof(maxBytes), b0, "A size is at least 0 bytes.");
        if (!Enum.IsDefined(goal)) throw new ArgumentOutOfRangeException(nameof(goal), goal, "Not a SweepGoal.");
        var completed = Trials.Where(t => t.Status == SweepTrialStatus.Completed).ToList();
        if (completed.Count == 0)
            throw new InvalidOperationException(Trials.FirstOrDefault(t => t.Status == SweepTrialStatus.Failed) is { } failed
                ? $"No trial completed, so there is no model to choose; trial {failed.Index} ({failed.Settings}) failed: {failed.Error}"
                : "No trial completed, so there is no model to choose.");
        var meeting = completed.Where(t =>
            (minAccuracy is not { } min || t.ValidationAccuracy >= min) &&
            (maxLatencyMicroseconds is not { } most || t.LatencyMicroseconds <= most) &&
            (maxBytes is not { } size || t.Bytes <= size)).ToList();
        if (meeting.Count == 0)
        {
            var c = CultureInfo.InvariantCulture;
            string wanted = string.Join(" and ", new[]
            {
                minAccuracy is { } m ? $"accuracy ≥ {Percentages.Format(m)}" : null,
                maxLatencyMicroseconds is { } l ? $"latency ≤ {l.ToString("0.##", c)} µs" : null,
                maxBytes is { } b ? $"≤ {b.ToString(c)} bytes" : null,
            }.Where(s => s is not null));
            throw new InvalidOperationException($"No completed trial has {wanted}; the front is: {string.Join("; ", ParetoFront.Select(Describe))}.");
        }
        return goal switch
        {
            SweepGoal.HighestAccuracy => meeting.OrderByDescending(t => t.ValidationAccuracy).ThenBy(t => t.Index).First(),
            SweepGoal.LowestLatency => meeting.OrderBy(t => t.LatencyMicroseconds).ThenBy(t => t.Index).First(),
            _ => meeting.OrderBy(t => t.Bytes).ThenBy(t => t.Index).First(),
        };
    }

    /// <summary>"#3 89.10%, 4.2 µs, 120,331 bytes".</summary>
    internal string Describe(SweepTrial t)
    {
        var c = CultureInfo.InvariantCulture;
        return $"#{t.Index} {Percentages.Format(t.ValidationAccuracy)}" +
            (Objectives.HasFlag(SweepObjectives.Latency) ? $", {t.LatencyMicroseconds?.ToString("0.##", c)} µs" : "") +
            (Objectives.HasFlag(SweepObjectives.Bytes) ? $", {t.Bytes?.ToString("N0", c)} bytes" : "");
    }

    private bool Dominates(SweepTrial a, SweepTrial b)
    {
        int better = 0;
        if (a.ValidationAccuracy < b.ValidationAccuracy) return false;
        if (a.ValidationAccuracy > b.ValidationAccuracy) better++;
        if (Objectives.HasFlag(SweepObjectives.Latency))
        {
            if (a.LatencyMicroseconds > b.LatencyMicroseconds) return false;
            if (a.LatencyMicroseconds < b.LatencyMicroseconds) better++;
        }
        if (Objectives.HasFlag(SweepObjectives.Bytes))
        {
            if (a.Bytes > b.Bytes) return false;
            if (a.Bytes < b.Bytes) better++;
        }
        return better > 0;
    }
}
