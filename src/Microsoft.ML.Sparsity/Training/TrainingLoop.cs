using System.Diagnostics;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// Mini-batch training of a <see cref="SequentialNetwork"/>: seeded shuffling, forward, loss, backward, optimiser
/// step, scheduled learning rate, validation and early stopping. After warm-up a step allocates nothing.
/// </summary>
internal sealed class TrainingLoop
{
    private readonly SequentialNetwork _network;
    private readonly Loss _loss;
    private readonly Optimizer _optimizer;
    private readonly LearningRateSchedule _schedule;
    private readonly float _baseLearningRate;
    private readonly int _batchSize, _epochs, _seed, _patience;
    private readonly bool _shuffle, _isClassifier;
    private readonly Masks.SparsityController? _sparsity;
    private readonly BatchNormScalePenalty? _penalty;
    private float[] _batchLabels = [];

    public TrainingLoop(SequentialNetwork network, Loss loss, Optimizer optimizer, LearningRateSchedule schedule, float baseLearningRate,
        int batchSize, int epochs, int seed, bool shuffle, int earlyStoppingPatience, bool isClassifier, Masks.SparsityController? sparsity = null,
        float batchNormScaleL1 = 0)
    {
        _sparsity = sparsity;
        _penalty = BatchNormScalePenalty.For(network, batchNormScaleL1);
        (_network, _loss, _optimizer, _schedule, _baseLearningRate) = (network, loss, optimizer, schedule, baseLearningRate);
        (_batchSize, _epochs, _seed, _shuffle, _patience, _isClassifier) = (batchSize, epochs, seed, shuffle, earlyStoppingPatience, isClassifier);
    }

    /// <summary>Optimiser steps taken: the position of the learning-rate schedule.</summary>
    public long Step { get; private set; }

    public List<TrainingProgress> History { get; } = [];

    /// <param name="train">The training data.</param>
    /// <param name="validation">Evaluated at the end of every epoch, for reports and early stopping.</param>
    /// <param name="progress">Receives a report at the end of every epoch.</param>
    /// <param name="log">Receives log lines.</param>
    /// <param name="cancellation">Checked before every step.</param>
    /// <param name="startStep">
    /// The step to start from (0 = the beginning): the schedule position, the epoch and the batch within its data order
    /// all resume there, so a run started at step k with the weights and optimiser state of step k continues exactly.
    /// </param>
    public void Run(Dataset train, Dataset? validation, IProgress<TrainingProgress>? progress, Action<string>? log, CancellationToken cancellation,
        long startStep = 0)
    {
        int n = train.Count;
        int stepsPerEpoch = (n + _batchSize - 1) / _batchSize;
        long totalSteps = (long)stepsPerEpoch * _epochs;
        if (startStep < 0 || startStep > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(startStep), startStep, $"The run has {totalSteps} steps.");
        Step = startStep;
        int firstEpoch = (int)(startStep / stepsPerEpoch);
        int capacity = Math.Min(_batchSize, n);
        _network.EnsureCapacity(capacity);
        if (_batchLabels.Length < capacity) _batchLabels = new float[capacity];
        var order = new int[n];
        double bestLoss = double.PositiveInfinity;
        int epochsSinceBest = 0;
        float[][]? best = validation is not null && _patience > 0 ? _network.StateArrays.Select(a => (float[])a.Clone()).ToArray() : null;
        _sparsity?.Start(stepsPerEpoch, totalSteps);
        var clock = Stopwatch.StartNew();
        float learningRate = _baseLearningRate;
        for (int epoch = firstEpoch; epoch < _epochs; epoch++)
        {
            EpochOrder(order, epoch);
            double lossSum = 0;
            long epochStart = Stopwatch.GetTimestamp();
            int first = epoch == firstEpoch ? (int)(startStep - (long)firstEpoch * stepsPerEpoch) * _batchSize : 0;
            for (int start = first; start < n; start += _batchSize)
            {
                cancellation.ThrowIfCancellationRequested();
                int batch = Math.Min(_batchSize, n - start);
                Gather(train, order, start, batch);
                _sparsity?.BeforeForward(Step);
                int passes = _sparsity?.Passes ?? 1;
                for (int pass = 0; pass < passes; pass++)
                {
                    _sparsity?.BeforePass(Step, pass);
                    var output = _network.Forward(batch, training: true);
                    lossSum += (_loss.Compute(output, _batchLabels, batch, _network.OutputSize, _network.OutputGradient) + _network.AuxiliaryLoss
                        + (_penalty?.Loss() ?? 0)) * batch / passes;
                    _network.Backward(batch);
                    _penalty?.AddGradient();
                    _sparsity?.AfterPass(Step, pass);
                }
                _sparsity?.AfterBackward(Step);
                learningRate = _baseLearningRate * _schedule.Factor(Step, stepsPerEpoch, totalSteps);
                _optimizer.Step(learningRate);
                Step++;
                _sparsity?.AfterStep(Step);
            }
            double seconds = Stopwatch.GetElapsedTime(epochStart).TotalSeconds;
            double trainLoss = lossSum / (n - first);
            if (!double.IsFinite(trainLoss))
                throw new InvalidOperationException(
                    $"Training diverged in epoch {epoch + 1}: the loss is {trainLoss}. Lower the learning rate or check the data's scale.");
            var masks = _sparsity?.EndEpoch() ?? default;
            _sparsity?.BeforeEvaluation();
            (double Loss, double Accuracy)? val = validation is null ? null : Evaluate(validation);
            var report = new TrainingProgress(epoch + 1, _epochs, Step, trainLoss, val?.Loss, _isClassifier ? val?.Accuracy : null,
                (n - first) / seconds, learningRate, clock.Elapsed, _sparsity?.Sparsity, masks.PruningEvents, masks.MaskChanges);
            History.Add(report);
            progress?.Report(report);
            log?.Invoke(report.ToString());
            // Weights from before the last mask change are not candidates: restoring them would undo pruning.
            if (best is null || val is null || (_sparsity is not null && !_sparsity.MasksFinal(Step))) continue;
            if (val.Value.Loss < bestLoss)
            {
                bestLoss = val.Value.Loss;
                epochsSinceBest = 0;
                for (int i = 0; i < best.Length; i++) _network.StateArrays[i].AsSpan().CopyTo(best[i]);
            }
            else if (++epochsSinceBest >= _patience)
            {
                log?.Invoke($"Early stopping after epoch {epoch + 1}: validation loss has not improved for {_patience} epochs; restoring the best weights.");
                break;
            }
        }
        if (best is not null && double.IsFinite(bestLoss))
            for (int i = 0; i < best.Length; i++) best[i].AsSpan().CopyTo(_network.StateArrays[i]);
        _sparsity?.Finish();
    }

    /// <summary>The data order of an epoch depends only on the seed and the epoch number.</summary>
    private void EpochOrder(int[] order, int epoch)
    {
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (!_shuffle) return;
        var random = new Random(Seeds.Derive(_seed, epoch));
        random.Shuffle(order);
    }

    private void Gather(Dataset data, int[] order, int start, int batch)
    {
        int length = data.FeatureLength;
        var input = _network.Input;
        for (int i = 0; i < batch; i++)
        {
            int row = order[start + i];
            Array.Copy(data.Features, (long)row * length, input, (long)i * length, length);
            _batchLabels[i] = data.Labels[row];
        }
    }

    /// <summary>Mean loss and (for classifiers, binary ones on one logit included) accuracy in inference mode.</summary>
    public (double Loss, double Accuracy) Evaluate(Dataset data)
    {
        int capacity = _network.Capacity;
        if (_batchLabels.Length < capacity) _batchLabels = new float[capacity];
        double loss = 0;
        long correct = 0;
        int outputs = _network.OutputSize;
        var order = new int[data.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        for (int start = 0; start < data.Count; start += capacity)
        {
            int batch = Math.Min(capacity, data.Count - start);
            Gather(data, order, start, batch);
            var output = _network.Forward(batch, training: false);
            loss += _loss.Compute(output, _batchLabels, batch, outputs, _network.OutputGradient) * batch;
            if (!_isClassifier) continue;
            for (int b = 0; b < batch; b++)
            {
                // One output is a binary classifier's logit: class 1 when it is positive.
                int predicted = outputs == 1 ? (output[b] > 0 ? 1 : 0) : ArgMax(output.AsSpan(b * outputs, outputs));
                if (predicted == (int)_batchLabels[b]) correct++;
            }
        }
        return (loss / data.Count, (double)correct / data.Count);
    }

    internal static int ArgMax(ReadOnlySpan<float> values) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(values);
}
