namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// How the learning rate changes over training, as a factor of the optimiser's base rate. The factor is a pure
/// function of the step number (its position), so rewinding training to step k also rewinds the schedule.
/// </summary>
/// <remarks>Create one with <see cref="Constant"/>, <see cref="Step"/> or <see cref="Cosine"/>; add a linear warm-up with <see cref="WithWarmup"/>.</remarks>
public abstract class LearningRateSchedule
{
    private protected LearningRateSchedule() { }

    /// <summary>The number of steps over which the rate rises linearly from base/steps to the base rate before the schedule proper starts (0 = none).</summary>
    public int WarmupSteps { get; private init; }

    /// <summary>The same rate at every step.</summary>
    public static LearningRateSchedule Constant() => new ConstantSchedule();

    /// <summary>Multiplies the rate by <paramref name="gamma"/> every <paramref name="epochs"/> epochs.</summary>
    public static LearningRateSchedule Step(int epochs, float gamma = 0.1f)
    {
        if (epochs <= 0) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "Must be at least 1 epoch.");
        if (!(gamma > 0 && gamma <= 1)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "Must be in (0, 1].");
        return new StepSchedule(epochs, gamma);
    }

    /// <summary>
    /// Cosine annealing from the base rate to <paramref name="minimumFactor"/>·base at the last step
    /// (Loshchilov &amp; Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", 2017, without restarts).
    /// </summary>
    public static LearningRateSchedule Cosine(float minimumFactor = 0f)
    {
        if (!(minimumFactor >= 0 && minimumFactor <= 1)) throw new ArgumentOutOfRangeException(nameof(minimumFactor), minimumFactor, "Must be in [0, 1].");
        return new CosineSchedule(minimumFactor);
    }

    /// <summary>Returns this schedule preceded by a linear warm-up of <paramref name="steps"/> steps.</summary>
    public LearningRateSchedule WithWarmup(int steps)
    {
        if (steps < 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "Must not be negative.");
        return this switch
        {
            ConstantSchedule => new ConstantSchedule { WarmupSteps = steps },
            StepSchedule x => new StepSchedule(x.Epochs, x.Gamma) { WarmupSteps = steps },
            CosineSchedule x => new CosineSchedule(x.MinimumFactor) { WarmupSteps = steps },
            _ => throw new InvalidOperationException("Unknown schedule."),
        };
    }

    /// <summary>
    /// The schedule as plain values (its kind, step length in epochs, γ or minimum factor, and warm-up), so that it can
    /// travel to another machine; <see cref="FromValues"/> makes the same schedule again.
    /// </summary>
    internal (string Kind, int Epochs, float Value, int WarmupSteps) Values => this switch
    {
        ConstantSchedule => ("constant", 0, 0f, WarmupSteps),
        StepSchedule x => ("step", x.Epochs, x.Gamma, WarmupSteps),
        CosineSchedule x => ("cosine", 0, x.MinimumFactor, WarmupSteps),
        _ => throw new InvalidOperationException($"The schedule {this} has no plain values."),
    };

    /// <summary>The schedule <see cref="Values"/> describes.</summary>
    /// <exception cref="ArgumentException">The kind is not constant, step or cosine.</exception>
    internal static LearningRateSchedule FromValues(string kind, int epochs, float value, int warmupSteps) => (kind switch
    {
        "constant" => Constant(),
        "step" => Step(epochs, value),
        "cosine" => Cosine(value),
        _ => throw new ArgumentException($"'{kind}' is not a learning-rate schedule (constant, step or cosine).", nameof(kind)),
    }).WithWarmup(warmupSteps);

    /// <summary>The factor applied to the base rate at <paramref name="step"/> (0-based).</summary>
    /// <param name="step">The step number.</param>
    /// <param name="stepsPerEpoch">Optimiser steps in one epoch.</param>
    /// <param name="totalSteps">Optimiser steps in the whole run.</param>
    public float Factor(long step, int stepsPerEpoch, long totalSteps)
    {
        if (step < WarmupSteps) return (step + 1f) / WarmupSteps;
        return ScheduleFactor(step - WarmupSteps, stepsPerEpoch, Math.Max(1, totalSteps - WarmupSteps));
    }

    private protected abstract float ScheduleFactor(long step, int stepsPerEpoch, long totalSteps);

    private sealed class ConstantSchedule : LearningRateSchedule
    {
        private protected override float ScheduleFactor(long step, int stepsPerEpoch, long totalSteps) => 1f;

        public override string ToString() => "constant";
    }

    private sealed class StepSchedule(int epochs, float gamma) : LearningRateSchedule
    {
        public int Epochs => epochs;
        public float Gamma => gamma;

        private protected override float ScheduleFactor(long step, int stepsPerEpoch, long totalSteps) =>
            MathF.Pow(gamma, step / ((long)epochs * stepsPerEpoch));

        public override string ToString() => $"step(×{gamma} every {epochs} epochs)";
    }

    private sealed class CosineSchedule(float minimumFactor) : LearningRateSchedule
    {
        public float MinimumFactor => minimumFactor;

        private protected override float ScheduleFactor(long step, int stepsPerEpoch, long totalSteps) =>
            minimumFactor + (1 - minimumFactor) * 0.5f * (1 + MathF.Cos(MathF.PI * Math.Min(step, totalSteps) / totalSteps));

        public override string ToString() => $"cosine(to ×{minimumFactor})";
    }
}
