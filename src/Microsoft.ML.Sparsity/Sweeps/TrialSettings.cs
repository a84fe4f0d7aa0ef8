using System.Globalization;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>
/// One trial's settings: plain values (the pattern and allocation by name), so a trial can be written to a journal or
/// sent to another machine and run there as it would run here.
/// </summary>
/// <param name="Method">The sparsity method.</param>
/// <param name="Sparsity">The target sparsity; null for the dense model and N:M (whose pattern fixes it).</param>
/// <param name="Pattern">The pattern's name ("unstructured", "2:4", "block 4×4", "output channels"); null for the dense model.</param>
/// <param name="Allocation">The allocation's name ("ERK", "ER", "uniform", "global"); null for the dense model, N:M and channel exploration (chosen by the layers).</param>
/// <param name="Epochs">Epochs of training.</param>
/// <param name="LearningRate">SGD's learning rate (momentum 0.9, cosine schedule).</param>
/// <param name="Width">The hidden layers' width multiplier.</param>
/// <param name="Seed">The training seed.</param>
public sealed record TrialSettings(SweepMethod Method, double? Sparsity, string? Pattern, string? Allocation, int Epochs, double LearningRate, double Width, int Seed)
{
    /// <summary>A short description, e.g. "GradualMagnitude 90% unstructured ERK, 20 epochs, lr 0.05, width 1".</summary>
    public override string ToString()
    {
        var c = CultureInfo.InvariantCulture;
        string what = Method switch
        {
            SweepMethod.Dense => "Dense",
            SweepMethod.NMFromScratch => $"NMFromScratch {Pattern}",
            SweepMethod.ChannelExploration => $"ChannelExploration {(Sparsity!.Value * 100).ToString("0.##", c)}% of channels",
            _ => $"{Method} {(Sparsity!.Value * 100).ToString("0.##", c)}% {Pattern} {Allocation}",
        };
        return $"{what}, {Epochs} epochs, lr {LearningRate.ToString("0.###", c)}, width {Width.ToString("0.##", c)}";
    }

    /// <summary>
    /// The multiclass trainer's options these settings train with, on <paramref name="layers"/> (the hidden layers, widened
    /// by <see cref="Width"/>; the trainer adds the output layer): e.g. to train a sweep's best trial again on all the data.
    /// </summary>
    /// <param name="context">The context whose <c>Sparsity()</c> catalog makes the sparsity method.</param>
    /// <param name="layers">The hidden layers before widening.</param>
    /// <param name="threads">The engine's thread count; null uses every processor.</param>
    /// <param name="batchSize">Examples per step.</param>
    /// <exception cref="ArgumentException">The pattern or allocation name is not one the package knows, or the method lacks a sparsity it needs.</exception>
    public NeuralNetworkMulticlassTrainer.Options ToTrainerOptions(MLContext context, IEnumerable<LayerDefinition> layers, int? threads = null, int batchSize = 64)
    {
        LayerDefinition[] widened = [.. (layers ?? throw new ArgumentNullException(nameof(layers))).Select(Widen)];
        return new()
        {
            Layers = widened,
            Epochs = Epochs,
            BatchSize = batchSize,
            Optimizer = new SgdOptimizerOptions { LearningRate = (float)LearningRate, Momentum = 0.9f },
            LearningRateSchedule = LearningRateSchedule.Cosine(),
            Seed = Seed,
            NumberOfThreads = threads,
            Sparsity = SparsityMethod(context ?? throw new ArgumentNullException(nameof(context)), widened),
        };
    }

    /// <summary>Levels of a lottery-ticket trial after the dense one.</summary>
    internal const int LotteryTicketLevels = 3;

    /// <summary>
    /// A lottery-ticket trial's iterative magnitude pruning: each level trains as <see cref="ToTrainerOptions"/> says
    /// (without a sparsity method), <see cref="LotteryTicketLevels"/> levels of global pruning at the rate p with
    /// (1 − p)^levels = 1 − sparsity, learning-rate rewinding.
    /// </summary>
    internal LotteryTickets.IterativeMagnitudePruningOptions LotteryTicketOptions(MLContext context, IEnumerable<LayerDefinition> layers, int? threads, int batchSize) => new()
    {
        Training = ToTrainerOptions(context, layers, threads, batchSize),
        Levels = LotteryTicketLevels,
        PruningRate = 1 - Math.Pow(1 - Target, 1.0 / LotteryTicketLevels),
        Global = true,
        OutputLayerAtHalfRate = false,
        Reset = LotteryTickets.LotteryTicketReset.LearningRateRewinding,
    };

    private LayerDefinition Widen(LayerDefinition layer) => layer switch
    {
        DenseDefinition dense => dense with { Units = Math.Max(1, (int)Math.Round(dense.Units * Width)) },
        Conv2dDefinition conv => conv with { OutChannels = Math.Max(1, (int)Math.Round(conv.OutChannels * Width)) },
        _ => layer,
    };

    private Masks.SparsityMethod? SparsityMethod(MLContext ml, IReadOnlyList<LayerDefinition> layers)
    {
        var sparsity = ml.Sparsity();
        switch (Method)
        {
            case SweepMethod.Dense or SweepMethod.LotteryTicket: // a lottery ticket's levels train dense and are pruned between them
                return null;
            case SweepMethod.ChannelExploration:
                return sparsity.ChannelExploration(Target, allocation: layers.Any(l => l is BatchNormDefinition)
                    ? ChannelPruning.ChannelAllocation.BatchNormScale : ChannelPruning.ChannelAllocation.Uniform);
            case SweepMethod.NMFromScratch:
                var nm = ParsePattern(Pattern) as SparsityPattern.NMPattern ?? throw new ArgumentException($"NMFromScratch needs an N:M pattern, not '{Pattern}'.", nameof(Pattern));
                var srste = sparsity.NMFromScratch(nm.N, nm.M);
                srste.ExcludedLayers.Add("-1"); // the output layer stays dense, as in the SR-STE paper
                return srste;
            case SweepMethod.GradualMagnitude or SweepMethod.Random:
                var pruning = Method == SweepMethod.GradualMagnitude ? sparsity.GradualMagnitudePruning(Target) : sparsity.RandomPruning(Target);
                pruning.Pattern = ParsePattern(Pattern);
                pruning.Allocation = ParseAllocation(Allocation);
                return pruning;
            case SweepMethod.RigL:
                return sparsity.RigL(Target, ParseAllocation(Allocation));
            case SweepMethod.Set:
                return sparsity.Set(Target, ParseAllocation(Allocation));
            case SweepMethod.GrowAndPrune:
                return sparsity.GrowAndPrune(Target, ParseAllocation(Allocation));
            default:
                throw new ArgumentOutOfRangeException(nameof(Method), Method, "Not a SweepMethod.");
        }
    }

    private double Target => Sparsity ?? throw new ArgumentException($"The {Method} trial has no target sparsity.", nameof(Sparsity));

    private static SparsityPattern ParsePattern(string? name) => SparsityPattern.Parse(name ?? throw new ArgumentNullException(nameof(Pattern), "The trial has no pattern."));

    private static LayerAllocation ParseAllocation(string? name) => LayerAllocation.Parse(name ?? throw new ArgumentNullException(nameof(Allocation), "The trial has no allocation."));
}
