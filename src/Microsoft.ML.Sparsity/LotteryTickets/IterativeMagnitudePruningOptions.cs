using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>What the surviving weights are reset to before each level retrains.</summary>
public enum LotteryTicketReset
{
    /// <summary>
    /// The initial weights θ₀, with a fresh optimiser, from step 0 ("The Lottery Ticket Hypothesis", Frankle &amp;
    /// Carbin, 2019). The same as <see cref="WeightRewinding"/> with <see cref="IterativeMagnitudePruningOptions.RewindStep"/> 0.
    /// </summary>
    InitialWeights,

    /// <summary>
    /// The weights θ_k of the dense run at step k = <see cref="IterativeMagnitudePruningOptions.RewindStep"/>, with the
    /// optimiser state of step k; training resumes at step k: the learning-rate schedule's position and the data
    /// order are those of step k ("Linear Mode Connectivity and the Lottery Ticket Hypothesis", Frankle et al., 2020).
    /// </summary>
    WeightRewinding,

    /// <summary>
    /// Learning-rate rewinding: keep the trained weights and retrain them with the whole learning-rate schedule from
    /// step 0, with a fresh optimiser ("Comparing Rewinding and Fine-tuning in Neural Network Pruning", Renda et al., 2020).
    /// </summary>
    LearningRateRewinding,

    /// <summary>
    /// Fine-tuning, the baseline of Renda et al. (2020): keep the trained weights and retrain them for the same number of
    /// steps at the schedule's final learning rate, with a fresh optimiser.
    /// </summary>
    FineTuning,
}

/// <summary>Which networks a level trains besides the ticket.</summary>
[Flags]
public enum LotteryTicketControls
{
    /// <summary>Only the ticket.</summary>
    None = 0,

    /// <summary>The ticket's mask with weights drawn afresh from the initialiser (Frankle &amp; Carbin, 2019, "random reinitialisation").</summary>
    RandomReinitialization = 1,

    /// <summary>A random mask with the ticket's per-layer densities on the ticket's starting weights ("random sparsity").</summary>
    RandomMask = 2,

    /// <summary>Both controls.</summary>
    All = RandomReinitialization | RandomMask,
}

/// <summary>Which network a level trained: the ticket or one of its controls.</summary>
public enum LotteryTicketVariant
{
    /// <summary>The subnetwork found by iterative magnitude pruning (at level 0, the dense network).</summary>
    Ticket,

    /// <summary>The ticket's mask with re-drawn initial weights.</summary>
    RandomReinitialization,

    /// <summary>A random mask with the ticket's per-layer densities.</summary>
    RandomMask,
}

/// <summary>
/// Options of <see cref="IterativeMagnitudePruning"/>: iterative magnitude pruning with resetting, which finds
/// lottery tickets ("The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks", Frankle &amp; Carbin,
/// ICLR 2019), with rewinding ("Linear Mode Connectivity and the Lottery Ticket Hypothesis", Frankle et al., ICML
/// 2020) and learning-rate rewinding ("Comparing Rewinding and Fine-tuning in Neural Network Pruning", Renda et al.,
/// ICLR 2020). Every field has a documented default.
/// </summary>
/// <remarks>
/// Level 0 trains the dense network. Each later level prunes a fraction <see cref="PruningRate"/> of the weights that
/// survived (the smallest |w| of the previous level's trained ticket), resets the survivors as <see cref="Reset"/> says
/// and retrains with the mask fixed. Only dense and convolution weights are pruned, never biases; biases are reset
/// with the weights. After level r a layer pruned at rate p keeps round(n·(1 − p)^r) of its n weights (rounded half
/// away from zero, computed from n so rounding never compounds); in global mode the kept total over the pruned layers
/// follows the same rule and one magnitude threshold decides where.
/// </remarks>
public sealed class IterativeMagnitudePruningOptions
{
    /// <summary>How every level trains: layers, epochs, batch size, optimiser, schedule, initialiser, validation split, seed. Its <c>Sparsity</c> and <c>EarlyStoppingPatience</c> must be unset (every level trains for the full budget). Default: LeNet-300-100 with Adam 1.2e-3, batch 60, 10 epochs, a 1/12 validation hold-out (5,000 of Fashion-MNIST's 60,000).</summary>
    public NeuralNetworkMulticlassTrainer.Options Training = new()
    {
        Layers = Layers.LeNet300100(),
        Epochs = 10,
        BatchSize = 60,
        Optimizer = new AdamOptimizerOptions { LearningRate = 1.2e-3f },
        WeightInitializer = WeightInitializer.GlorotNormal,
        ValidationFraction = 1f / 12,
    };

    /// <summary>Pruning levels after the dense level 0. Default 10.</summary>
    public int Levels = 10;

    /// <summary>The fraction p of the surviving weights pruned at each level, in (0, 1). Default 0.2 (the paper's rate for dense layers).</summary>
    public double PruningRate = 0.2;

    /// <summary>
    /// False (default): each layer is pruned on its own at <see cref="PruningRate"/>, the output layer at half the
    /// rate when <see cref="OutputLayerAtHalfRate"/> (Frankle &amp; Carbin). True: one magnitude threshold over all pruned
    /// layers (Frankle et al., 2020; Renda et al., 2020).
    /// </summary>
    public bool Global;

    /// <summary>Per-layer mode: prune the output layer at half the rate. Default true, as in the paper. Not used in global mode.</summary>
    public bool OutputLayerAtHalfRate = true;

    /// <summary>Leave the output layer dense, in either mode (open_lth does so in global mode). Default false.</summary>
    public bool ExcludeOutputLayer;

    /// <summary>What survivors are reset to before retraining. Default <see cref="LotteryTicketReset.InitialWeights"/>.</summary>
    public LotteryTicketReset Reset = LotteryTicketReset.InitialWeights;

    /// <summary>With <see cref="LotteryTicketReset.WeightRewinding"/>: the step k rewound to, in [0, training steps). Default 0.</summary>
    public long RewindStep;

    /// <summary>The controls trained at every level after 0 besides the ticket. Default <see cref="LotteryTicketControls.None"/>.</summary>
    public LotteryTicketControls Controls = LotteryTicketControls.None;

    /// <summary>Evaluate the validation loss every this many steps for early stopping (the test set too when the loss is a new minimum). Default 100, the paper's interval.</summary>
    public int EvaluationInterval = 100;

    /// <summary>
    /// A folder for the checkpoint (<c>imp-checkpoint.zip</c>), written atomically at the end of every training run and every
    /// <see cref="CheckpointInterval"/> steps; a run given a folder that holds a checkpoint resumes from it. Null (default): no checkpoints.
    /// </summary>
    public string? CheckpointDirectory;

    /// <summary>Steps between checkpoints inside a training run. Default 2000.</summary>
    public int CheckpointInterval = 2000;

    internal void Validate()
    {
        if (Training is null) throw new ArgumentNullException(nameof(Training), "IterativeMagnitudePruningOptions.Training must be set.");
        NetworkTraining.ValidateOptions(Training);
        if (Training.Sparsity is not null)
            throw new ArgumentException("Training.Sparsity must be null: iterative magnitude pruning sets the masks itself.", nameof(Training));
        if (Training.EarlyStoppingPatience != 0)
            throw new ArgumentException("Training.EarlyStoppingPatience must be 0: every level trains its full budget and reports the early-stop point.", nameof(Training));
        if (Levels < 0) throw new ArgumentOutOfRangeException(nameof(Levels), Levels, "Levels must not be negative.");
        if (!(PruningRate > 0 && PruningRate < 1))
            throw new ArgumentOutOfRangeException(nameof(PruningRate), PruningRate, "The pruning rate p is the fraction of surviving weights removed per level; it must be in (0, 1).");
        if (!Enum.IsDefined(Reset)) throw new ArgumentOutOfRangeException(nameof(Reset), Reset, "Unknown reset target.");
        if (RewindStep < 0) throw new ArgumentOutOfRangeException(nameof(RewindStep), RewindStep, "The rewind step must not be negative.");
        if (RewindStep != 0 && Reset != LotteryTicketReset.WeightRewinding)
            throw new ArgumentException($"RewindStep applies to LotteryTicketReset.WeightRewinding; Reset is {Reset}.", nameof(RewindStep));
        if ((Controls & ~LotteryTicketControls.All) != 0) throw new ArgumentOutOfRangeException(nameof(Controls), Controls, "Unknown controls.");
        if (EvaluationInterval < 1) throw new ArgumentOutOfRangeException(nameof(EvaluationInterval), EvaluationInterval, "Must be at least 1 step.");
        if (CheckpointInterval < 1) throw new ArgumentOutOfRangeException(nameof(CheckpointInterval), CheckpointInterval, "Must be at least 1 step.");
        // A dropout layer's random stream is not part of the checkpoint, so a resumed run would drop other units.
        if (CheckpointDirectory is not null && Training.Layers.OfType<DropoutDefinition>().Any())
            throw new ArgumentException("Checkpoints cannot resume networks with dropout bit-identically yet: remove the dropout layers from Training.Layers or set CheckpointDirectory to null.", nameof(Training));
        if (CheckpointDirectory is not null && !Directory.Exists(CheckpointDirectory))
            throw new DirectoryNotFoundException(File.Exists(CheckpointDirectory)
                ? $"CheckpointDirectory '{CheckpointDirectory}' is a file; it must be a folder (the checkpoint is written inside it as {ImpRun.CheckpointFileName})."
                : $"CheckpointDirectory '{CheckpointDirectory}' does not exist.");
    }

    /// <summary>The rewind step against the training length (known once the data is).</summary>
    internal void ValidateRewindStep(long totalSteps)
    {
        if (RewindStep >= totalSteps)
            throw new ArgumentOutOfRangeException(nameof(RewindStep), RewindStep,
                $"The rewind step must be before the end of training: each level trains {totalSteps} steps ({Training.Epochs} epochs).");
    }

    /// <summary>The pruning rate of pruned layer <paramref name="index"/> of <paramref name="count"/> in per-layer mode (the last is the output layer unless it is excluded).</summary>
    internal double RateOf(int index, int count) => OutputLayerAtHalfRate && !ExcludeOutputLayer && index == count - 1 ? PruningRate / 2 : PruningRate;

    /// <summary>The options as name/value pairs, for checkpoints: resuming needs every one to match.</summary>
    internal SortedDictionary<string, string> Describe(int seed)
    {
        var trainer = NetworkTraining.DescribeOptions(Training, seed, nameof(NeuralNetworkMulticlassTrainer));
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["Levels"] = Levels.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["PruningRate"] = PruningRate.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            ["Global"] = Global.ToString(),
            ["OutputLayerAtHalfRate"] = OutputLayerAtHalfRate.ToString(),
            ["ExcludeOutputLayer"] = ExcludeOutputLayer.ToString(),
            ["Reset"] = Reset.ToString(),
            ["RewindStep"] = RewindStep.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Controls"] = Controls.ToString(),
            ["EvaluationInterval"] = EvaluationInterval.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Training.Layers"] = System.Text.Json.JsonSerializer.Serialize(Training.Layers.ToList(), Serialization.ModelManifest.Json).ReplaceLineEndings(" "),
        };
        foreach (var (key, value) in trainer) result["Training." + key] = value?.ToJsonString() ?? "null";
        return result;
    }
}
