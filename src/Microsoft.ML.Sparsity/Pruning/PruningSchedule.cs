namespace Microsoft.ML.Sparsity.Pruning;

/// <summary>When pruning happens during training and how sparse the network is at each pruning step.</summary>
/// <remarks>Steps count optimiser updates from 0; "at step t" means after t updates (t = 0: before training starts).</remarks>
public abstract class PruningSchedule
{
    private protected PruningSchedule() { }

    /// <summary>Prunes once, to the target, after <paramref name="step"/> updates; training then fine-tunes with the mask fixed.</summary>
    public static PruningSchedule OneShot(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "The pruning step must not be negative.");
        return new OneShotSchedule(step);
    }

    /// <summary>
    /// Prunes to the target before training starts and keeps the mask fixed: constant sparsity from scratch. With
    /// <see cref="Masks.ImportanceCriterion.Random"/> this is random pruning at initialisation (Liu et al., "The
    /// Unreasonable Effectiveness of Random Pruning", 2022).
    /// </summary>
    public static PruningSchedule AtInitialization() => new OneShotSchedule(0);

    /// <summary>
    /// Gradual pruning (Zhu &amp; Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model
    /// compression", 2017): at steps t ∈ {t₀, t₀ + Δt, …, t_end} each layer is pruned to
    /// s_t = s_f + (s_i − s_f)·(1 − (t − t₀)/(t_end − t₀))^e, where s_f is the layer's final sparsity. Pruned weights never regrow.
    /// </summary>
    /// <param name="beginStep">t₀, the first pruning step.</param>
    /// <param name="endStep">t_end, the step at which the final sparsity is reached (pruning also happens here if Δt does not divide the span).</param>
    /// <param name="frequency">Δt, steps between pruning events (the paper finds 100 to 1000 equivalent). Default 100.</param>
    /// <param name="exponent">e, the polynomial's exponent. Default 3.</param>
    /// <param name="initialSparsity">s_i, the sparsity at t₀, in [0, 1). Default 0.</param>
    public static PruningSchedule Gradual(long beginStep, long endStep, int frequency = 100, double exponent = 3, double initialSparsity = 0)
    {
        if (beginStep < 0) throw new ArgumentOutOfRangeException(nameof(beginStep), beginStep, "Must not be negative.");
        if (endStep <= beginStep) throw new ArgumentOutOfRangeException(nameof(endStep), endStep, $"Must be after beginStep ({beginStep}).");
        if (frequency <= 0) throw new ArgumentOutOfRangeException(nameof(frequency), frequency, "Must be positive.");
        if (!(exponent > 0)) throw new ArgumentOutOfRangeException(nameof(exponent), exponent, "Must be positive.");
        if (!(initialSparsity >= 0 && initialSparsity < 1)) throw new ArgumentOutOfRangeException(nameof(initialSparsity), initialSparsity, "Must be in [0, 1).");
        return new GradualSchedule(beginStep, endStep, frequency, exponent, initialSparsity);
    }

    /// <summary>
    /// Gradual pruning (<see cref="Gradual"/>) placed by fractions of the run: from <paramref name="beginFraction"/> to
    /// <paramref name="endFraction"/> of the total optimiser steps, so it adapts to the epochs and batch size.
    /// </summary>
    /// <param name="beginFraction">Where pruning starts, in [0, 1). Default 0.1.</param>
    /// <param name="endFraction">Where the final sparsity is reached, in (beginFraction, 1]. Default 0.6, leaving 40% of training to recover.</param>
    /// <param name="frequency">Δt in steps. Default 100.</param>
    /// <param name="exponent">The polynomial's exponent. Default 3.</param>
    public static PruningSchedule GradualOverTraining(double beginFraction = 0.1, double endFraction = 0.6, int frequency = 100, double exponent = 3)
    {
        if (!(beginFraction >= 0 && beginFraction < 1)) throw new ArgumentOutOfRangeException(nameof(beginFraction), beginFraction, "Must be in [0, 1).");
        if (!(endFraction > beginFraction && endFraction <= 1)) throw new ArgumentOutOfRangeException(nameof(endFraction), endFraction, $"Must be in ({beginFraction}, 1].");
        if (frequency <= 0) throw new ArgumentOutOfRangeException(nameof(frequency), frequency, "Must be positive.");
        if (!(exponent > 0)) throw new ArgumentOutOfRangeException(nameof(exponent), exponent, "Must be positive.");
        return new FractionalSchedule(beginFraction, endFraction, frequency, exponent);
    }

    /// <summary>True for schedules with a single pruning event.</summary>
    internal virtual bool IsOneShot => false;

    /// <summary>The concrete schedule for a run of <paramref name="totalSteps"/> steps.</summary>
    internal virtual PruningSchedule Resolve(long totalSteps) => this;

    /// <summary>True when a pruning event happens after <paramref name="step"/> updates.</summary>
    public abstract bool IsPruningStep(long step);

    /// <summary>The sparsity a layer whose final sparsity is <paramref name="finalSparsity"/> has at <paramref name="step"/>.</summary>
    public abstract double SparsityAt(long step, double finalSparsity);

    /// <summary>The last pruning step: masks do not change after it.</summary>
    public abstract long LastPruningStep { get; }

    private sealed class OneShotSchedule(long step) : PruningSchedule
    {
        internal override bool IsOneShot => true;
        public override bool IsPruningStep(long t) => t == step;
        public override double SparsityAt(long t, double finalSparsity) => t >= step ? finalSparsity : 0;
        public override long LastPruningStep => step;
        public override string ToString() => step == 0 ? "at initialisation" : $"one-shot at step {step}";
    }

    private sealed class FractionalSchedule(double beginFraction, double endFraction, int frequency, double exponent) : PruningSchedule
    {
        internal override PruningSchedule Resolve(long totalSteps)
        {
            long begin = (long)Math.Round(beginFraction * totalSteps), end = Math.Max(begin + 1, (long)Math.Round(endFraction * totalSteps));
            return new GradualSchedule(begin, end, frequency, exponent, 0);
        }

        public override bool IsPruningStep(long step) => throw Unresolved();
        public override double SparsityAt(long step, double finalSparsity) => throw Unresolved();
        public override long LastPruningStep => throw Unresolved();

        private static InvalidOperationException Unresolved() =>
            new("A schedule given in fractions of training has steps only once the run's length is known.");

        public override string ToString() => $"gradual ({beginFraction:P0}–{endFraction:P0} of training every {frequency} steps, exponent {exponent})";
    }

    private sealed class GradualSchedule(long begin, long end, int frequency, double exponent, double initial) : PruningSchedule
    {
        public override bool IsPruningStep(long t) => t >= begin && t <= end && ((t - begin) % frequency == 0 || t == end);

        public override double SparsityAt(long t, double finalSparsity)
        {
            if (t < begin) return 0;
            double progress = Math.Min(1.0, (double)(t - begin) / (end - begin));
            return finalSparsity + (initial - finalSparsity) * Math.Pow(1 - progress, exponent);
        }

        public override long LastPruningStep => end;

        public override string ToString() => $"gradual (steps {begin}–{end} every {frequency}, exponent {exponent})";
    }
}
