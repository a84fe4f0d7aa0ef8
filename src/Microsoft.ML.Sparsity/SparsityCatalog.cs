using Microsoft.ML.Runtime;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Serialization;

namespace Microsoft.ML.Sparsity;

/// <summary>
/// What Microsoft.ML.Sparsity adds where ML.NET has no catalog: <c>mlContext.Sparsity()</c>. The sparsity methods
/// returned here go into a trainer's <c>Options.Sparsity</c>; the operations work on trained models (prune, compact, sparsity
/// report, lottery-ticket runs, ONNX export, restoring a saved model's fast transformer).
/// </summary>
public sealed class SparsityCatalog
{
    private readonly MLContext _context;
    private readonly SparsityHost _host;

    internal SparsityCatalog(MLContext context)
    {
        _context = context;
        _host = new SparsityHost(context, nameof(SparsityCatalog));
    }

    /// <summary>
    /// Gradual magnitude pruning (Zhu &amp; Gupta, "To prune, or not to prune", 2017) of every dense and convolution
    /// weight, each layer to <paramref name="targetSparsity"/>, on the cubic schedule from 10% to 60% of training.
    /// </summary>
    public PruningOptions GradualMagnitudePruning(double targetSparsity = 0.9) =>
        Validated(new PruningOptions { TargetSparsity = targetSparsity, Schedule = PruningSchedule.GradualOverTraining() });

    /// <summary>
    /// Random pruning at initialisation, then training with the mask fixed (Liu et al., "The Unreasonable
    /// Effectiveness of Random Pruning", 2022).
    /// </summary>
    /// <param name="targetSparsity">The fraction of weights removed.</param>
    /// <param name="allocation">Per-layer densities; default <see cref="Masks.LayerAllocation.ErdosRenyiKernel"/>, the paper's best.</param>
    /// <param name="seed">The seed of the random mask; null uses the training seed.</param>
    public PruningOptions RandomPruning(double targetSparsity = 0.9, Masks.LayerAllocation? allocation = null, int? seed = null) =>
        Validated(RandomPruningOptions(targetSparsity, allocation, seed));

    /// <summary><see cref="RandomPruning"/>'s options; grow-and-prune starts from the same mask through it.</summary>
    internal static PruningOptions RandomPruningOptions(double targetSparsity, Masks.LayerAllocation? allocation, int? seed) =>
        new()
        {
            TargetSparsity = targetSparsity,
            Criterion = Masks.ImportanceCriterion.Random(seed),
            Allocation = allocation ?? Masks.LayerAllocation.ErdosRenyiKernel,
            Schedule = PruningSchedule.AtInitialization(),
        };

    /// <summary>Arguments are checked where they are given, so a mistake points at this call rather than at a later Fit.</summary>
    private static PruningOptions Validated(PruningOptions options)
    {
        options.Validate();
        return options;
    }

    /// <summary>
    /// N:M sparsity trained from scratch with SR-STE (Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural
    /// Networks From Scratch", 2021); <paramref name="decay"/> = 0 gives plain STE.
    /// </summary>
    public NMSparsity.SrSteOptions NMFromScratch(int n = 2, int m = 4, float decay = 2e-4f)
    {
        var options = new NMSparsity.SrSteOptions { N = n, M = m, Decay = decay };
        options.Validate();
        return options;
    }

    /// <summary>
    /// Prunes a trained model once, to <see cref="PruningOptions.TargetSparsity"/>, with the options' pattern, criterion
    /// and allocation (the schedule is not used). Returns a pruned copy; <paramref name="model"/> is unchanged. Read the
    /// result's <see cref="NeuralNetworkModel.GetSparsityReport"/> for what was removed.
    /// </summary>
    /// <param name="model">The trained model.</param>
    /// <param name="options">What to prune and how.</param>
    /// <param name="data">Training data for criteria that need gradients (Taylor; the first batches are used), with the
    /// columns the model was trained on (its features and label columns).</param>
    public NeuralNetworkMulticlassModel Prune(NeuralNetworkMulticlassModel model, PruningOptions options, IDataView? data = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        var network = model.Network.CloneAtActiveLevel(_host.Pool);
        if (options.PermuteChannels && options.Pattern is Masks.SparsityPattern.NMPattern nm)
            foreach (var result in NMSparsity.ChannelPermutation.PermuteAll(network, nm.N, nm.M))
                _host.WriteLog(
                    $"Permuted the input channels of '{result.Layer}' (with '{result.Producer}'): N:M keeps {result.KeptAfter / result.Total:P2} of |w| instead of {result.KeptBefore / result.Total:P2}.");
        var plan = new PruningPlan(options, network, _host.NextSeed());
        float[][]? taylor = null;
        if (options.Criterion.GradientBatches > 0)
        {
            if (data is null) throw new ArgumentNullException(nameof(data), "The Taylor criterion needs training data to compute gradients.");
            var examples = DataViewReader.Read(data, model.FeatureColumnName, model.LabelColumnName, [.. model.InputShape]);
            taylor = TaylorScores.Accumulate(network, plan.Layers, examples, options.Criterion.GradientBatches);
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
        options.Validate();
        return LotteryTicket(options);
    }

    /// <summary>Lottery tickets by iterative magnitude pruning, configured by <paramref name="options"/> (validated when the run starts).</summary>
    public LotteryTickets.IterativeMagnitudePruning LotteryTicket(LotteryTickets.IterativeMagnitudePruningOptions options) => new(_context, options);

    /// <summary>Loads a lottery ticket saved by <see cref="LotteryTickets.LotteryTicket.Save"/>; give it to a trainer as <c>Options.Sparsity</c> to train it.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist, or a directory is there.</exception>
    /// <exception cref="ModelFormatException">The file is empty, truncated, damaged, edited or not a lottery ticket; <see cref="ModelFormatException.FilePath"/> and <see cref="ModelFormatException.Entry"/> say where.</exception>
    public LotteryTickets.LotteryTicket LoadLotteryTicket(string filePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        return LotteryTickets.LotteryTicket.Load(filePath, _host.Pool);
    }

    /// <summary>The sparsity of a model's weights, per layer and in total.</summary>
    public Masks.SparsityReport GetReport(NeuralNetworkModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.GetSparsityReport();
    }

    /// <summary>
    /// Loads a model saved with ML.NET's <c>mlContext.Model.Save</c> and gives back the fast transformers: every model
    /// of this package in it (saved in portable form, with its own file riding along) is restored with its weights,
    /// masks, prediction formats and optimiser state, and the ML.NET transformers around it are ML.NET's.
    /// </summary>
    /// <param name="filePath">The zip <c>mlContext.Model.Save</c> wrote.</param>
    /// <param name="inputSchema">The schema of the data the model takes, as ML.NET's <c>Load</c> gives it.</param>
    /// <exception cref="FileNotFoundException">The file does not exist, or a directory is there.</exception>
    /// <exception cref="ModelFormatException">The file is empty, truncated, not a model ML.NET can load, or a model's riding-along file is damaged or of a newer format; the message names the file and the zip entry.</exception>
    public ITransformer LoadModel(string filePath, out DataViewSchema inputSchema)
    {
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        return PortableModel.Load(_context, filePath, _host.Pool, out inputSchema);
    }

    /// <summary>
    /// Exports a trained model to ONNX (opset 13) for ONNX Runtime, e.g. ML.NET's <c>ApplyOnnxModel</c>. The graph takes
    /// <c>features</c> (float32 [batch, feature count], the flat feature vector). A multiclass network gives
    /// <c>probabilities</c> (float32 [batch, classes]) and <c>predicted_label</c> (int64 [batch], the class index: key
    /// value − 1); a binary classifier gives <c>score</c> (float32 [batch, 1], the logit), <c>probability</c> (float32
    /// [batch, 1]) and <c>predicted_label</c> (int64 [batch], 1 for true); a regression model gives <c>score</c> (float32
    /// [batch, 1]). The file is written atomically. (ML.NET's own <c>mlContext.Model.ConvertToOnnx</c> cannot export this package's
    /// transformers: ML.NET keeps its ONNX interface internal.)
    /// </summary>
    /// <remarks>A frequency-domain transform in front of the network is exported too: <c>features</c> then holds the
    /// images, flattened in the transform's input column layout (interleaved or planar), as the transform takes them.</remarks>
    /// <exception cref="NotSupportedException">The model has a layer or transform ONNX export does not support (named in the message); no file is written.</exception>
    public void ConvertToOnnx(ITransformer model, string filePath)
    {
        var (network, frequencyDomain) = OnnxModelOf(model);
        AtomicFile.Write(filePath, stream => Export(network, frequencyDomain, stream));
    }

    /// <summary>Exports a trained model to ONNX, written to <paramref name="stream"/>; see <see cref="ConvertToOnnx(ITransformer, string)"/>.</summary>
    public void ConvertToOnnx(ITransformer model, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (network, frequencyDomain) = OnnxModelOf(model);
        Export(network, frequencyDomain, stream);
    }

    private static void Export(NeuralNetworkModel network, FrequencyDomain.FrequencyDomainTransformer? frequencyDomain, Stream stream) =>
        Microsoft.ML.Sparsity.Export.OnnxExporter.Export(network.LevelNetwork, (network as NeuralNetworkMulticlassModel)?.ClassNames, stream, ModelFile.PackageVersion, frequencyDomain,
            network switch
            {
                NeuralNetworkBinaryModel => Microsoft.ML.Sparsity.Export.OnnxHead.Sigmoid,
                NeuralNetworkRegressionModel => Microsoft.ML.Sparsity.Export.OnnxHead.Identity,
                _ => Microsoft.ML.Sparsity.Export.OnnxHead.Softmax,
            });

    /// <summary>The network, and the frequency-domain transform in front of it if there is one.</summary>
    private static (NeuralNetworkModel Network, FrequencyDomain.FrequencyDomainTransformer? FrequencyDomain) OnnxModelOf(ITransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        ITransformer[] transformers = model is IEnumerable<ITransformer> chain ? [.. chain] : [model];
        return transformers switch
        {
            [NeuralNetworkModel network] => (network, null),
            [FrequencyDomain.FrequencyDomainTransformer frequencyDomain, NeuralNetworkModel network] => (network, frequencyDomain),
            _ => throw new NotSupportedException(
                "ONNX export takes one neural-network model, optionally behind a frequency-domain transform; this pipeline has " +
                $"{string.Join(", ", transformers.Select(t => t.GetType().Name))}."),
        };
    }

    /// <summary>
    /// Cyclic scheduled grow-and-prune, C-GaP (Ma, Qin, Sun et al., "Effective Model Sparsification by Scheduled
    /// Grow-and-Prune Methods", 2022): from the static-random control's mask, grow one partition of layers dense at a
    /// time for <paramref name="stepEpochs"/> epochs, prune it back by magnitude, and fine-tune with the mask fixed after
    /// the last round. Give it to a trainer as <c>Options.Sparsity</c>; see <see cref="GrowAndPrune.GapOptions"/> for every option.
    /// </summary>
    /// <param name="targetSparsity">The fraction of weights removed.</param>
    /// <param name="allocation">Per-layer sparsities; default <see cref="Masks.LayerAllocation.ErdosRenyiKernel"/>, as <see cref="RandomPruning"/>.</param>
    /// <param name="partitions">κ; null: min(4, pruned layers).</param>
    /// <param name="stepEpochs">T, the epochs of one step; null: the longest that fits the rounds in 75% of the epochs.</param>
    /// <param name="rounds">Rounds of κ steps; null: as many as fit in 75% of the epochs with T set, else one.</param>
    public GrowAndPrune.GapOptions GrowAndPrune(double targetSparsity = 0.9, Masks.LayerAllocation? allocation = null, int? partitions = null,
        int? stepEpochs = null, int? rounds = null)
    {
        var options = new GrowAndPrune.GapOptions
        {
            TargetSparsity = targetSparsity,
            Allocation = allocation ?? Masks.LayerAllocation.ErdosRenyiKernel,
            PartitionCount = partitions,
            StepEpochs = stepEpochs,
            Rounds = rounds,
        };
        options.Validate();
        return options;
    }

    /// <summary>
    /// Parallel scheduled grow-and-prune, P-GaP (Ma, Qin, Sun et al., 2022): an estimator whose <c>Fit</c> trains κ
    /// copies per round, copy i with partition i dense, merges their pruned partitions, and fine-tunes the merged sparse
    /// model. The options are validated when the run starts.
    /// </summary>
    public GrowAndPrune.ParallelGap ParallelGrowAndPrune(GrowAndPrune.ParallelGapOptions options) => new(_context, options);

    /// <summary>
    /// SET (Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse connectivity inspired
    /// by network science", 2018): sparse from the start; after every epoch each layer moves 30% of its active weights,
    /// dropping those closest to zero and growing as many at random. See <see cref="GrowAndPrune.SetOptions"/>.
    /// </summary>
    /// <param name="targetSparsity">The fraction of weights that are zero throughout.</param>
    /// <param name="allocation">Per-layer densities; default <see cref="Masks.LayerAllocation.ErdosRenyi"/>, the paper's.</param>
    /// <param name="seed">Seeds the initial mask (the one <see cref="RandomPruning"/> draws with the same seed) and the regrowth; null uses the training seed.</param>
    public GrowAndPrune.SetOptions Set(double targetSparsity = 0.9, Masks.LayerAllocation? allocation = null, int? seed = null)
    {
        var options = new GrowAndPrune.SetOptions { TargetSparsity = targetSparsity, Seed = seed };
        if (allocation is not null) options.Allocation = allocation;
        options.Validate();
        return options;
    }

    /// <summary>
    /// RigL (Evci et al., "Rigging the Lottery: Making All Tickets Winners", 2020): sparse from the start; every 100
    /// steps until 75% of training each layer drops a cosine-decaying fraction (from 30%) of its smallest weights and
    /// grows as many where the dense gradient is largest. See <see cref="GrowAndPrune.RigLOptions"/>.
    /// </summary>
    /// <param name="targetSparsity">The fraction of weights that are zero throughout.</param>
    /// <param name="allocation">Per-layer densities; default <see cref="Masks.LayerAllocation.ErdosRenyiKernel"/>, the paper's.</param>
    /// <param name="seed">Seeds the initial mask (the one <see cref="RandomPruning"/> draws with the same seed); null uses the training seed.</param>
    public GrowAndPrune.RigLOptions RigL(double targetSparsity = 0.9, Masks.LayerAllocation? allocation = null, int? seed = null)
    {
        var options = new GrowAndPrune.RigLOptions { TargetSparsity = targetSparsity, Seed = seed };
        if (allocation is not null) options.Allocation = allocation;
        options.Validate();
        return options;
    }

    /// <summary>
    /// Nested sparsity: one network trained to serve several sparsity levels, each level's weights a subset of the next
    /// denser level's, every level pruned gradually by magnitude and trained together (the densest, the sparsest and one
    /// other level each step). The trained model predicts at any of them (<see cref="NeuralNetworkModel.AtSparsityLevel"/>).
    /// See <see cref="NestedSparsity.NestedSparsityOptions"/>.
    /// </summary>
    /// <param name="levels">The sparsity levels, strictly increasing, each in [0, 1); default 0.5, 0.8, 0.9, 0.95, 0.98.</param>
    /// <param name="allocation">How each level's sparsity is shared among layers; default <see cref="Masks.LayerAllocation.Uniform"/>.</param>
    /// <param name="nmGroupSize">0 (default): unstructured levels; M: N:M levels, level s keeping (1 − s)·M of every group of M inputs (levels 0.5 and 0.75 with M = 4 are 2:4 and 1:4).</param>
    public NestedSparsity.NestedSparsityOptions NestedSparsity(IEnumerable<double>? levels = null, Masks.LayerAllocation? allocation = null, int nmGroupSize = 0)
    {
        var options = new NestedSparsity.NestedSparsityOptions { NMGroupSize = nmGroupSize };
        if (levels is not null) options.Levels = levels.ToList();
        if (allocation is not null) options.Allocation = allocation;
        options.Validate();
        return options;
    }

    /// <summary>
    /// A sweep over sparsity methods, sparsities, patterns and training settings that finds the Pareto front of validation
    /// accuracy against single-prediction latency and file size, with random search or successive halving, journaled and
    /// resumable. See <see cref="Sweeps.SparsitySweep"/>.
    /// </summary>
    /// <param name="options">The search space, tuner, budget and journal folder; null takes the defaults (16 trials on LeNet-300-100, successive halving).</param>
    /// <exception cref="ArgumentException">An option is out of range or the search space is empty; the message names it.</exception>
    public Sweeps.SparsitySweep CreateSweep(Sweeps.SparsitySweepOptions? options = null) => new(_context, options ?? new Sweeps.SparsitySweepOptions(), _host.Pool);

    /// <summary>
    /// A prediction engine for a model trained at nested sparsity levels (or a pipeline ending in one): the level chosen
    /// per call, per engine (<see cref="Inference.SparsityLevelEngineOptions.Level"/>) or automatically for a latency
    /// budget (<see cref="Inference.SparsityLevelEngineOptions.LatencyBudget"/>), rerouting to sparser levels under load.
    /// </summary>
    /// <exception cref="ArgumentException">The model has no sparsity levels.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The options' level is not one of the model's, or a count or budget is not positive.</exception>
    public Inference.SparsityLevelPredictionEngine<TSrc, TDst> CreatePredictionEngine<TSrc, TDst>(ITransformer model, Inference.SparsityLevelEngineOptions? options = null)
        where TSrc : class where TDst : class, new() => new(_context, model, options ?? new Inference.SparsityLevelEngineOptions());

    /// <summary>
    /// Rewrites a channel-pruned model as a smaller dense one of the same kind: the output channels whose weights are
    /// all masked (<see cref="Masks.SparsityPattern.OutputChannels"/>) leave their dense or convolution layer, and the
    /// layers after it lose the matching batch-norm entries and input slices (through activations, pooling and the
    /// flatten into a dense layer). A removed channel's constant output (its bias through batch norm and activation) is
    /// added to the next layer's bias, so predictions equal the pruned model's within float rounding. A pruned channel
    /// whose non-zero constant feeds a padded convolution is kept (its effect there depends on the position), as are the
    /// network's outputs; <see cref="GetCompactionReport"/> lists them. A model with nested sparsity levels is compacted
    /// at the level it predicts at (<see cref="NeuralNetworkModel.AtSparsityLevel"/>), and the result has that level
    /// alone. Returns a new model without optimiser state; <paramref name="model"/> is unchanged. To keep the pruned
    /// model and only predict through its compact form, use <see cref="NeuralNetworkModel.WithCompactPrediction"/>.
    /// </summary>
    /// <param name="model">A trained model with pruned output channels.</param>
    /// <exception cref="ArgumentException">No layer but the output layer has a pruned channel; no pruned channel can be
    /// removed exactly; or a pruned layer is followed by a layer compaction cannot follow (the message names it).</exception>
    public TModel Compact<TModel>(TModel model) where TModel : NeuralNetworkModel
    {
        ArgumentNullException.ThrowIfNull(model);
        var plan = ChannelPruning.CompactPlan.For(model.LevelNetwork);
        return (TModel)model.WithCompactNetwork(ChannelPruning.CompactNetwork.Build(plan, _host.Pool));
    }

    /// <summary>What <see cref="Compact"/> does to <paramref name="model"/>: every layer's output shape, parameters and multiply-adds before and after, and the pruned channels kept.</summary>
    /// <exception cref="ArgumentException">As <see cref="Compact"/>.</exception>
    public ChannelPruning.CompactionReport GetCompactionReport(NeuralNetworkModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var plan = ChannelPruning.CompactPlan.For(model.LevelNetwork);
        var compact = ChannelPruning.CompactNetwork.Build(plan, Engine.WorkerPool.Inline);
        return new ChannelPruning.CompactionReport(model.Layers, compact.Layers.Select(l => new LayerSummary(l)).ToArray(), plan.KeptPruned);
    }

    /// <summary>
    /// CHEX (Hou et al., "CHEX: CHannel EXploration for CNN Model Compression", 2022): trains a channel-sparse network
    /// from scratch, pruning channels by column subset selection and regrowing others while it trains, until the
    /// explored layers keep a fraction 1 − S of their channels (or lose a fraction of their multiply-adds). See
    /// <see cref="ChannelPruning.ChexOptions"/>.
    /// </summary>
    /// <param name="channelSparsity">S, the fraction of the explored layers' channels removed at the end; ignored when <paramref name="flopsReduction"/> is given.</param>
    /// <param name="flopsReduction">The fraction of the multiply-adds to remove instead; null uses <paramref name="channelSparsity"/>.</param>
    /// <param name="allocation">How pruned channels are shared among layers; default batch-norm scale (the paper's), which needs a batch norm after every explored layer.</param>
    public ChannelPruning.ChexOptions ChannelExploration(double channelSparsity = 0.5, double? flopsReduction = null,
        ChannelPruning.ChannelAllocation allocation = ChannelPruning.ChannelAllocation.BatchNormScale)
    {
        var options = new ChannelPruning.ChexOptions { ChannelSparsity = channelSparsity, FlopsReduction = flopsReduction, Allocation = allocation };
        options.Validate();
        return options;
    }
}
