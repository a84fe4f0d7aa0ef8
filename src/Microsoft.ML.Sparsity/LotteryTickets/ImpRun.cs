using System.Diagnostics;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>
/// Runs iterative magnitude pruning level by level: each level trains its controls (when asked) and then its ticket
/// with the <see cref="TrainingLoop"/>, and the trained ticket's smallest weights are pruned for the next level.
/// Checkpoints hold the whole <see cref="ImpState"/>.
/// </summary>
internal sealed class ImpRun
{
    public const string CheckpointFileName = "imp-checkpoint.zip";

    private readonly SparsityHost _context;
    private readonly IterativeMagnitudePruningOptions _options;
    private readonly Dataset _train, _validation;
    private readonly Dataset? _test;
    private readonly int _seed, _classCount, _stepsPerEpoch;
    private readonly Data.ClassLabels? _classLabels;
    private readonly long _totalSteps;
    private readonly string? _checkpointPath;
    private readonly SortedDictionary<string, string> _fingerprint;

    public ImpRun(SparsityHost context, IterativeMagnitudePruningOptions options, Dataset train, Dataset? validation, Dataset? test)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _context = context;
        _options = options;
        _seed = options.Training.Seed ?? context.NextSeed();
        _classCount = NeuralNetworkMulticlassTrainer.CountClasses(train);
        _classLabels = train.ClassLabels;
        if (validation is null)
        {
            if (options.Training.ValidationFraction <= 0)
                throw new ArgumentException("Iterative magnitude pruning needs validation data for its early-stop point: pass a validation set or set Training.ValidationFraction.", nameof(validation));
            (train, validation) = train.Split(options.Training.ValidationFraction, _seed);
        }
        foreach (var (data, name) in new[] { (validation, nameof(validation)), (test, nameof(test)) })
        {
            if (data is null) continue;
            if (data.FeatureLength != train.FeatureLength)
                throw new ArgumentException($"The {name} examples have {data.FeatureLength} features; the training examples have {train.FeatureLength}.", name);
            NeuralNetworkMulticlassTrainer.CheckLabels(data, _classCount, name);
        }
        (_train, _validation, _test) = (train, validation, test);
        _stepsPerEpoch = (train.Count + options.Training.BatchSize - 1) / options.Training.BatchSize;
        _totalSteps = (long)_stepsPerEpoch * options.Training.Epochs;
        options.ValidateRewindStep(_totalSteps);
        _fingerprint = options.Describe(_seed);
        _fingerprint["Data.Training"] = $"{train.Count} examples of shape {Shape.Format(train.FeatureShapeArray)}, {_classCount} classes";
        _fingerprint["Data.Validation"] = $"{validation.Count} examples";
        _fingerprint["Data.Test"] = test is null ? "none" : $"{test.Count} examples";
        _fingerprint["Data.LabelsSha256"] = Serialization.ZipEntries.Sha(System.Runtime.InteropServices.MemoryMarshal.AsBytes(train.Labels.AsSpan()).ToArray());
        _checkpointPath = options.CheckpointDirectory is null ? null : Path.Combine(options.CheckpointDirectory, CheckpointFileName);
        // A run killed while writing its checkpoint left a temporary file; this run removes it (not one a live writer holds).
        if (_checkpointPath is not null) Serialization.AtomicFile.RemoveStaleTemporaries(_checkpointPath);
        if (_checkpointPath is not null && File.Exists(_checkpointPath))
        {
            State = ImpCheckpoint.Read(_checkpointPath, _fingerprint, context.Pool);
            Log($"Resuming from the checkpoint '{_checkpointPath}': level {State.Level}, run {State.Phase + 1} of the level" +
                (State.Current?.Training is { } t ? $", step {t.Steps}." : "."));
        }
        else State = new ImpState { Source = Wrap(BuildNetwork(_seed), null) };
    }

    public ImpState State { get; }

    /// <summary>Test seam: called after every optimiser step with the level, the run and the step (e.g. to cancel there).</summary>
    public Action<int, LotteryTicketVariant, long>? AfterStepHook { get; set; }

    /// <summary>The runs of a level, in order: the controls first (they start from the level's masks), the ticket last.</summary>
    public LotteryTicketVariant[] Variants(int level)
    {
        if (level == 0) return [LotteryTicketVariant.Ticket];
        var variants = new List<LotteryTicketVariant>();
        if (_options.Controls.HasFlag(LotteryTicketControls.RandomReinitialization)) variants.Add(LotteryTicketVariant.RandomReinitialization);
        if (_options.Controls.HasFlag(LotteryTicketControls.RandomMask)) variants.Add(LotteryTicketVariant.RandomMask);
        variants.Add(LotteryTicketVariant.Ticket);
        return [.. variants];
    }

    public LotteryTicketResult Run(IProgress<LotteryTicketLevelResult>? progress, CancellationToken cancellation)
    {
        while (true)
        {
            var variants = Variants(State.Level);
            SequentialNetwork? ticket = null;
            while (State.Phase < variants.Length)
            {
                var variant = variants[State.Phase];
                var (network, result) = Train(variant, cancellation);
                State.Results.Add(result);
                State.Phase++;
                State.Current = null;
                State.Tracking = new RunTracking();
                progress?.Report(result);
                Log(Describe(result));
                if (variant == LotteryTicketVariant.Ticket) ticket = network;
                else WriteCheckpoint(null);
            }
            if (State.Level == _options.Levels)
            {
                var start = StartNetwork(LotteryTicketVariant.Ticket);
                var lottery = new LotteryTicket(Wrap(start, null), State.Level, WeightsRemaining(start), _options.Reset, _options.RewindStep);
                return new LotteryTicketResult(_seed, _options.Reset, _options.RewindStep, [.. State.Results], lottery, Wrap(ticket!, null));
            }
            var masks = TicketMasks.Magnitude(TicketMasks.Pruned(PrunableLayer.From(ticket!), _options), _options, State.Level + 1);
            State.Source = UsesRewind ? State.Rewind! : Wrap(ticket!, null);
            State.Masks = masks;
            State.Level++;
            State.Phase = 0;
            WriteCheckpoint(null);
        }
    }

    private bool UsesRewind => _options.Reset is LotteryTicketReset.InitialWeights or LotteryTicketReset.WeightRewinding;

    /// <summary>Trains one run (resuming <see cref="ImpState.Current"/> when set) and returns the trained network and its result.</summary>
    private (SequentialNetwork Network, LotteryTicketLevelResult Result) Train(LotteryTicketVariant variant, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var training = _options.Training;
        SequentialNetwork network;
        TrainingState? state;
        if (State.Current is { } current)
        {
            network = current.Network.Clone(_context.Pool, _seed);
            state = current.Training;
        }
        else
        {
            network = StartNetwork(variant);
            state = State.Source.Training;
            State.Tracking = new RunTracking();
        }
        var optimizer = training.Optimizer.Create(network.Parameters, _context.Pool);
        if (state is not null && !state.TryRestore(optimizer))
            throw new InvalidOperationException("The stored optimiser state does not fit the optimiser: the checkpoint does not match the options.");
        optimizer.ApplyMasks();
        var schedule = training.LearningRateSchedule;
        float learningRate = training.Optimizer.LearningRate;
        if (_options.Reset == LotteryTicketReset.FineTuning && State.Level > 0)
        {
            // Fine-tuning trains at the schedule's final rate.
            learningRate *= schedule.Factor(_totalSteps - 1, _stepsPerEpoch, _totalSteps);
            schedule = LearningRateSchedule.Constant();
        }
        var controller = new ImpRunController(this, network, optimizer, variant);
        var loop = new TrainingLoop(network, new SoftmaxCrossEntropyLoss(), optimizer, schedule, learningRate, training.BatchSize, training.Epochs,
            _seed, training.Shuffle, earlyStoppingPatience: 0, isClassifier: true, controller, training.BatchNormScaleL1);
        controller.Loop = loop;
        loop.Run(_train, null, null, null, cancellation, state?.Steps ?? 0);
        var t = State.Tracking;
        return (network, new LotteryTicketLevelResult(State.Level, variant, WeightsRemaining(network), t.BestStep, t.BestValidationLoss ?? double.NaN,
            t.BestTestAccuracy, controller.FinalValidationLoss, controller.FinalTestAccuracy, clock.Elapsed.TotalSeconds));
    }

    /// <summary>The level's starting network for a run: the source weights (re-drawn for the reinitialisation control) under the ticket's (or a random) mask.</summary>
    private SequentialNetwork StartNetwork(LotteryTicketVariant variant)
    {
        var network = State.Source.Network.Clone(_context.Pool, _seed);
        if (State.Masks is null) return network;
        if (variant == LotteryTicketVariant.RandomReinitialization)
        {
            var fresh = BuildNetwork(Seeds.Derive(_seed, State.Level, 1));
            for (int i = 0; i < fresh.StateArrays.Count; i++) fresh.StateArrays[i].CopyTo(network.StateArrays[i], 0);
        }
        var masks = variant == LotteryTicketVariant.RandomMask ? TicketMasks.Random(State.Masks, _seed, State.Level) : State.Masks;
        var layers = TicketMasks.Pruned(PrunableLayer.From(network), _options);
        for (int l = 0; l < layers.Count; l++)
        {
            layers[l].ApplyMask(masks[l]);
            layers[l].Weight.SparsityNote = variant == LotteryTicketVariant.RandomMask ? "random mask (control)" : $"lottery ticket, level {State.Level}";
        }
        return network;
    }

    private SequentialNetwork BuildNetwork(int seed) => new(
        [.. _options.Training.Layers, new DenseDefinition(_classCount) { Name = "output" }], _train.FeatureShapeArray,
        new LayerBuildContext(_context.Pool, _options.Training.WeightInitializer, seed));

    private NeuralNetworkMulticlassModel Wrap(SequentialNetwork network, TrainingState? training) =>
        new(network, _classCount, _classLabels, _options.Training.FeatureColumnName, [], training);

    /// <summary>The fraction of dense and convolution weights the masks keep.</summary>
    private static double WeightsRemaining(SequentialNetwork network)
    {
        var layers = PrunableLayer.From(network);
        long total = layers.Sum(l => (long)l.Count);
        long kept = layers.Sum(l => l.Weight.Mask is { } m ? m.LongCount(v => v != 0) : l.Count);
        return (double)kept / total;
    }

    private void WriteCheckpoint(NeuralNetworkMulticlassModel? current)
    {
        if (_checkpointPath is not null) ImpCheckpoint.Write(_checkpointPath, State, current, _fingerprint);
    }

    private void Log(string message) => _context.WriteLog(message);

    private static string Describe(LotteryTicketLevelResult r) =>
        $"Level {r.Level} {r.Variant}: {r.WeightsRemaining:P2} of weights remaining; early stop at step {r.EarlyStopIteration} " +
        $"(validation loss {r.EarlyStopValidationLoss:F4}" + (r.EarlyStopTestAccuracy is double a ? $", test accuracy {a:P2}" : "") + ")" +
        (r.FinalTestAccuracy is double f ? $"; final test accuracy {f:P2}" : "") + $"; {r.Seconds:F1} s.";

    /// <summary>The hooks of one run: captures θ_k, evaluates for early stopping, writes periodic checkpoints.</summary>
    private sealed class ImpRunController(ImpRun run, SequentialNetwork network, Optimizer optimizer, LotteryTicketVariant variant) : SparsityController
    {
        private readonly IReadOnlyList<PrunableLayer> _layers = PrunableLayer.From(network);
        private long _totalSteps;

        public TrainingLoop Loop { get; set; } = null!;
        public double FinalValidationLoss { get; private set; } = double.NaN;
        public double? FinalTestAccuracy { get; private set; }

        public override double Sparsity => SparsityReport.PrunableSparsity(_layers);

        public override void Start(int stepsPerEpoch, long totalSteps)
        {
            _totalSteps = totalSteps;
            CaptureRewind(run.State.Current?.Training?.Steps ?? run.State.Source.Training?.Steps ?? 0);
        }

        public override void AfterStep(long completedSteps)
        {
            CaptureRewind(completedSteps);
            if (completedSteps % run._options.EvaluationInterval == 0 || completedSteps == _totalSteps) Evaluate(completedSteps);
            run.AfterStepHook?.Invoke(run.State.Level, variant, completedSteps);
            // A copy goes into the model: a model puts prediction formats (snapshots of the weights) on its network's
            // layers, and the network being trained must keep evaluating its live weights.
            if (run._checkpointPath is not null && completedSteps % run._options.CheckpointInterval == 0 && completedSteps < _totalSteps)
                run.WriteCheckpoint(run.Wrap(network.Clone(run._context.Pool, run._seed), TrainingState.From(optimizer, completedSteps)));
        }

        /// <summary>Level 0 records θ_k and the optimiser state of step k for the weight resets.</summary>
        private void CaptureRewind(long step)
        {
            var state = run.State;
            if (state.Level != 0 || !run.UsesRewind || state.Rewind is not null || step != run._options.RewindStep) return;
            state.Rewind = run.Wrap(network.Clone(run._context.Pool, run._seed), TrainingState.From(optimizer, step));
        }

        private void Evaluate(long step)
        {
            var tracking = run.State.Tracking;
            double loss = Loop.Evaluate(run._validation).Loss;
            bool last = step == _totalSteps;
            bool better = tracking.BestValidationLoss is not double best || loss < best;
            // The test set is evaluated only where it is reported: at a new minimum of the validation loss and at the end.
            double? test = run._test is not null && (better || last) ? Loop.Evaluate(run._test).Accuracy : null;
            if (better)
            {
                tracking.BestValidationLoss = loss;
                tracking.BestStep = step;
                tracking.BestTestAccuracy = test;
            }
            if (!last) return;
            FinalValidationLoss = loss;
            FinalTestAccuracy = test;
        }
    }
}
