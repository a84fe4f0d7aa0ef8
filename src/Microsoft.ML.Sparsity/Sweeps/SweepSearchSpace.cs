using System.Globalization;
using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>The sparsity methods a sweep can try.</summary>
public enum SweepMethod
{
    /// <summary>No pruning: the dense reference.</summary>
    Dense,

    /// <summary>Gradual magnitude pruning (Zhu &amp; Gupta 2017), <see cref="SparsityCatalog.GradualMagnitudePruning"/>.</summary>
    GradualMagnitude,

    /// <summary>A random mask at initialisation, kept fixed (the control), <see cref="SparsityCatalog.RandomPruning"/>.</summary>
    Random,

    /// <summary>N:M sparsity trained from scratch with SR-STE (Zhou et al. 2021), <see cref="SparsityCatalog.NMFromScratch"/>; needs an N:M pattern.</summary>
    NMFromScratch,

    /// <summary>RigL (Evci et al. 2020), <see cref="SparsityCatalog.RigL"/>.</summary>
    RigL,

    /// <summary>SET (Mocanu et al. 2018), <see cref="SparsityCatalog.Set"/>.</summary>
    Set,

    /// <summary>Cyclic scheduled grow-and-prune, C-GaP (Ma et al. 2022), <see cref="SparsityCatalog.GrowAndPrune"/>.</summary>
    GrowAndPrune,

    /// <summary>
    /// Lottery tickets (Frankle &amp; Carbin 2019) by iterative magnitude pruning with learning-rate rewinding (Renda et al.
    /// 2020), <see cref="SparsityCatalog.LotteryTicket(LotteryTickets.IterativeMagnitudePruningOptions)"/>: three levels
    /// of global pruning at the rate that reaches the target, each level trained for the trial's epochs (four trainings
    /// in all). The trial's curve has one point per level, so successive halving never stops it.
    /// </summary>
    LotteryTicket,

    /// <summary>
    /// CHEX channel exploration (Hou et al. 2022), <see cref="SparsityCatalog.ChannelExploration"/>: the target is the
    /// fraction of channels removed (batch-norm allocation when the layers have batch norm, else uniform); the trained
    /// model is compacted into a smaller dense one before it is measured.
    /// </summary>
    ChannelExploration,
}

/// <summary>
/// What a sweep draws its trials from. Every trial draws each of its settings uniformly from the lists (the learning
/// rate log-uniformly from its range); a setting a method does not take (the sparsity of the dense model, the pattern
/// of RigL) is left out of its trials.
/// </summary>
public sealed class SweepSearchSpace
{
    /// <summary>
    /// The methods. Default: dense, gradual magnitude pruning, random, N:M from scratch, RigL, SET and C-GaP (lottery
    /// tickets, four trainings a trial, and channel exploration, whose target is a channel fraction, are listed by choice).
    /// </summary>
    public IList<SweepMethod> Methods = new List<SweepMethod>
    {
        SweepMethod.Dense, SweepMethod.GradualMagnitude, SweepMethod.Random, SweepMethod.NMFromScratch, SweepMethod.RigL, SweepMethod.Set, SweepMethod.GrowAndPrune,
    };

    /// <summary>Target sparsities (fractions of the prunable weights removed), each in (0, 1). Default 0.8, 0.9, 0.95, 0.98.</summary>
    public IList<double> Sparsities = new List<double> { 0.8, 0.9, 0.95, 0.98 };

    /// <summary>
    /// Patterns. <see cref="SweepMethod.NMFromScratch"/> takes the N:M ones, whose sparsity is their own;
    /// <see cref="SweepMethod.GradualMagnitude"/> and <see cref="SweepMethod.Random"/> the others; RigL, SET and GaP
    /// prune single weights whatever is listed. Default: unstructured, 2:4 and 1:8.
    /// </summary>
    public IList<SparsityPattern> Patterns = new List<SparsityPattern> { SparsityPattern.Unstructured, SparsityPattern.NM(2, 4), SparsityPattern.NM(1, 8) };

    /// <summary>How a target sparsity is shared among layers (not N:M). Default: ERK and uniform.</summary>
    public IList<LayerAllocation> Allocations = new List<LayerAllocation> { LayerAllocation.ErdosRenyiKernel, LayerAllocation.Uniform };

    /// <summary>Epochs of training. Default 20.</summary>
    public IList<int> Epochs = new List<int> { 20 };

    /// <summary>The smallest learning rate (SGD with momentum 0.9, cosine schedule). Default 0.02.</summary>
    public double MinLearningRate = 0.02;

    /// <summary>The largest learning rate. Default 0.1.</summary>
    public double MaxLearningRate = 0.1;

    /// <summary>Width multipliers of the hidden layers (units and filters scaled, at least 1), each in (0, 64]. Default 1.</summary>
    public IList<double> Widths = new List<double> { 1.0 };

    /// <summary>Checks every list, naming the first bad one.</summary>
    internal void Validate()
    {
        if (Methods is null || Methods.Count == 0) throw new ArgumentException("The search space has no method: list at least one in Methods.", nameof(Methods));
        foreach (var m in Methods)
            if (!Enum.IsDefined(m)) throw new ArgumentOutOfRangeException(nameof(Methods), m, "Not a SweepMethod.");
        if (Methods.Any(m => m is not (SweepMethod.Dense or SweepMethod.NMFromScratch)) && (Sparsities is null || Sparsities.Count == 0))
            throw new ArgumentException("The search space has no sparsity: list at least one in Sparsities.", nameof(Sparsities));
        foreach (double s in Sparsities ?? [])
            if (!(s > 0 && s < 1)) throw new ArgumentOutOfRangeException(nameof(Sparsities), s, "A target sparsity must be in (0, 1).");
        if (Patterns is null || Patterns.Any(p => p is null)) throw new ArgumentNullException(nameof(Patterns), "List the patterns; no entry may be null.");
        if (Methods.Contains(SweepMethod.NMFromScratch) && !Patterns.Any(p => p is SparsityPattern.NMPattern))
            throw new ArgumentException("NMFromScratch needs an N:M pattern in Patterns (e.g. SparsityPattern.NM(2, 4)).", nameof(Patterns));
        if (Methods.Any(m => m is SweepMethod.GradualMagnitude or SweepMethod.Random) && !Patterns.Any(p => p is not SparsityPattern.NMPattern))
            throw new ArgumentException("GradualMagnitude and Random need a pattern that is not N:M in Patterns (e.g. SparsityPattern.Unstructured).", nameof(Patterns));
        if (Allocations is null || Allocations.Count == 0 || Allocations.Any(a => a is null))
            throw new ArgumentException("List at least one allocation in Allocations; no entry may be null.", nameof(Allocations));
        if (Epochs is null || Epochs.Count == 0) throw new ArgumentException("List at least one epoch count in Epochs.", nameof(Epochs));
        foreach (int e in Epochs)
            if (e < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), e, "Epochs must be at least 1.");
        if (!(MinLearningRate > 0 && MaxLearningRate >= MinLearningRate && double.IsFinite(MaxLearningRate)))
            throw new ArgumentOutOfRangeException(nameof(MinLearningRate), $"The learning rates must satisfy 0 < MinLearningRate ≤ MaxLearningRate (here {MinLearningRate} and {MaxLearningRate}).");
        if (Widths is null || Widths.Count == 0) throw new ArgumentException("List at least one width multiplier in Widths.", nameof(Widths));
        foreach (double w in Widths)
            if (!(w > 0 && w <= 64)) throw new ArgumentOutOfRangeException(nameof(Widths), w, "A width multiplier must be in (0, 64].");
    }

    /// <summary>
    /// Trial <paramref name="index"/>'s settings, a function of the sweep's seed and the index alone (a resumed sweep draws
    /// the same). Trial 0 is the dense reference when <see cref="SweepMethod.Dense"/> is listed: the first epochs and
    /// width, the geometric middle of the learning rates.
    /// </summary>
    internal TrialSettings Draw(int seed, int index)
    {
        int trialSeed = Engine.Seeds.Derive(seed, index, 0x5357);
        var random = new Random(trialSeed);
        T Pick<T>(IList<T> list) => list[random.Next(list.Count)];
        double rate = Math.Exp(Math.Log(MinLearningRate) + random.NextDouble() * (Math.Log(MaxLearningRate) - Math.Log(MinLearningRate)));
        if (index == 0 && Methods.Contains(SweepMethod.Dense))
            return new TrialSettings(SweepMethod.Dense, null, null, null, Epochs[0], Math.Sqrt(MinLearningRate * MaxLearningRate), Widths[0], trialSeed);
        var method = Pick(Methods);
        int epochs = Pick(Epochs);
        double width = Pick(Widths);
        switch (method)
        {
            case SweepMethod.Dense:
                return new TrialSettings(method, null, null, null, epochs, rate, width, trialSeed);
            case SweepMethod.NMFromScratch:
                return new TrialSettings(method, null, Pick(Patterns.Where(p => p is SparsityPattern.NMPattern).ToList()).ToString(), null, epochs, rate, width, trialSeed);
            case SweepMethod.GradualMagnitude or SweepMethod.Random:
                var pattern = Pick(Patterns.Where(p => p is not SparsityPattern.NMPattern).ToList());
                return new TrialSettings(method, Pick(Sparsities), pattern.ToString(), Pick(Allocations).ToString(), epochs, rate, width, trialSeed);
            case SweepMethod.LotteryTicket:
                return new TrialSettings(method, Pick(Sparsities), SparsityPattern.Unstructured.ToString(), LayerAllocation.Global.ToString(), epochs, rate, width, trialSeed);
            case SweepMethod.ChannelExploration:
                return new TrialSettings(method, Pick(Sparsities), SparsityPattern.OutputChannels.ToString(), null, epochs, rate, width, trialSeed);
            default:
                return new TrialSettings(method, Pick(Sparsities), SparsityPattern.Unstructured.ToString(), Pick(Allocations).ToString(), epochs, rate, width, trialSeed);
        }
    }

    /// <summary>The search space as text lines, for a journal to check that it resumes the same sweep.</summary>
    internal IEnumerable<string> Describe()
    {
        var c = CultureInfo.InvariantCulture;
        yield return $"methods: {string.Join(", ", Methods)}";
        yield return $"sparsities: {string.Join(", ", Sparsities.Select(s => s.ToString("R", c)))}";
        yield return $"patterns: {string.Join(", ", Patterns)}";
        yield return $"allocations: {string.Join(", ", Allocations)}";
        yield return $"epochs: {string.Join(", ", Epochs)}";
        yield return $"learning rate: {MinLearningRate.ToString("R", c)} to {MaxLearningRate.ToString("R", c)}";
        yield return $"widths: {string.Join(", ", Widths.Select(w => w.ToString("R", c)))}";
    }
}
