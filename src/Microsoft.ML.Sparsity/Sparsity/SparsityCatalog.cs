using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;

namespace Microsoft.ML.Sparsity.Sparsity;

/// <summary>
/// Sparsity methods and operations on trained models: <c>context.Sparsity</c>. The methods returned here go into a
/// trainer's <c>Options.Sparsity</c>.
/// </summary>
public sealed class SparsityCatalog
{
    private readonly SparsityContext _context;

    internal SparsityCatalog(SparsityContext context) => _context = context;

    /// <summary>
    /// Gradual magnitude pruning (Zhu &amp; Gupta, "To prune, or not to prune", 2017) of every dense and convolution
    /// weight, each layer to <paramref name="targetSparsity"/>, on the cubic schedule from 10% to 60% of training.
    /// </summary>
    public PruningOptions GradualMagnitudePruning(double targetSparsity = 0.9) =>
        new() { TargetSparsity = targetSparsity, Schedule = PruningSchedule.GradualOverTraining() };

    /// <summary>
    /// Random pruning at initialisation, then training with the mask fixed (Liu et al., "The Unreasonable
    /// Effectiveness of Random Pruning", 2022).
    /// </summary>
    /// <param name="targetSparsity">The fraction of weights removed.</param>
    /// <param name="allocation">Per-layer densities; default <see cref="LayerAllocation.ErdosRenyiKernel"/>, the paper's best.</param>
    /// <param name="seed">The seed of the random mask; null uses the training seed.</param>
    public PruningOptions RandomPruning(double targetSparsity = 0.9, LayerAllocation? allocation = null, int? seed = null) =>
        new()
        {
            TargetSparsity = targetSparsity,
            Criterion = ImportanceCriterion.Random(seed),
            Allocation = allocation ?? LayerAllocation.ErdosRenyiKernel,
            Schedule = PruningSchedule.AtInitialization(),
        };

    /// <summary>
    /// N:M sparsity trained from scratch with SR-STE (Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural
    /// Networks From Scratch", 2021); <paramref name="decay"/> = 0 gives plain STE.
    /// </summary>
    public NMSparsity.SrSteOptions NMFromScratch(int n = 2, int m = 4, float decay = 2e-4f) => new() { N = n, M = m, Decay = decay };

    /// <summary>
    /// Prunes a trained model once, to <see cref="PruningOptions.TargetSparsity"/>, with the options' pattern, criterion
    /// and allocation (the schedule is not used). Returns a pruned copy; <paramref name="model"/> is unchanged. Read the
    /// result's <see cref="NeuralNetworkMulticlassModel.GetSparsityReport"/> for what was removed.
    /// </summary>
    /// <param name="model">The trained model.</param>
    /// <param name="options">What to prune and how.</param>
    /// <param name="data">Training examples for criteria that need gradients (Taylor); the first batches are used.</param>
    public NeuralNetworkMulticlassModel Prune(NeuralNetworkMulticlassModel model, PruningOptions options, Dataset? data = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        var network = model.Network.Clone(_context.Pool);
        if (options.PermuteChannels && options.Pattern is SparsityPattern.NMPattern nm)
            foreach (var result in NMSparsity.ChannelPermutation.PermuteAll(network, nm.N, nm.M))
                _context.WriteLog(nameof(SparsityCatalog),
                    $"Permuted the input channels of '{result.Layer}' (with '{result.Producer}'): N:M keeps {result.KeptAfter / result.Total:P2} of |w| instead of {result.KeptBefore / result.Total:P2}.");
        var plan = new PruningPlan(options, network, _context.Seed ?? 0);
        float[][]? taylor = null;
        if (options.Criterion.GradientBatches > 0)
        {
            if (data is null) throw new ArgumentNullException(nameof(data), "The Taylor criterion needs training data to compute gradients.");
            taylor = TaylorScores.Accumulate(network, plan.Layers, data, options.Criterion.GradientBatches);
        }
        plan.Prune(0, PruningSchedule.AtInitialization(), taylor);
        return model.WithNetwork(network);
    }

    /// <summary>
    /// Lottery tickets by iterative magnitude pruning (Frankle &amp; Carbin, "The Lottery Ticket Hypothesis", 2019) of
    /// LeNet-300-100 with Adam 1.2e-3, batch 60 and a 1/12 validation hold-out: <paramref name="levels"/> times, prune
    /// <paramref name="pruningRate"/> of each layer's surviving weights (the output layer at half the rate), reset the
    /// survivors to <paramref name="reset"/>, retrain for <paramref name="epochs"/> epochs.
    /// </summary>
    public LotteryTickets.IterativeMagnitudePruning LotteryTicket(int levels = 10, double pruningRate = 0.2, int epochs = 10,
        LotteryTickets.LotteryTicketReset reset = LotteryTickets.LotteryTicketReset.InitialWeights)
    {
        var options = new LotteryTickets.IterativeMagnitudePruningOptions { Levels = levels, PruningRate = pruningRate, Reset = reset };
        options.Training.Epochs = epochs;
        return LotteryTicket(options);
    }

    /// <summary>Lottery tickets by iterative magnitude pruning, configured by <paramref name="options"/> (validated when the run starts).</summary>
    public LotteryTickets.IterativeMagnitudePruning LotteryTicket(LotteryTickets.IterativeMagnitudePruningOptions options) => new(_context, options);

    /// <summary>Loads a lottery ticket saved by <see cref="LotteryTickets.LotteryTicket.Save"/>; give it to a trainer as <c>Options.Sparsity</c> to train it.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="Serialization.ModelFormatException">The file is damaged or not a lottery ticket.</exception>
    public LotteryTickets.LotteryTicket LoadLotteryTicket(string filePath) => LotteryTickets.LotteryTicket.Load(filePath, _context.Pool);

    /// <summary>The sparsity of a model's weights, per layer and in total.</summary>
    public SparsityReport GetReport(NeuralNetworkMulticlassModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.GetSparsityReport();
    }
}
