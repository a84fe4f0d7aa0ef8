using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.Masks;

public class MaskedTrainingTests
{
    public static TheoryData<string> Optimizers => ["sgd", "momentum", "nesterov", "adam", "adamw"];

    private static OptimizerOptions Create(string name) => name switch
    {
        "sgd" => new SgdOptimizerOptions { Momentum = 0, WeightDecay = 1e-3f },
        "momentum" => new SgdOptimizerOptions { Momentum = 0.9f, WeightDecay = 1e-3f },
        "nesterov" => new SgdOptimizerOptions { Momentum = 0.9f, Nesterov = true, WeightDecay = 1e-3f },
        "adam" => new AdamOptimizerOptions { WeightDecay = 1e-3f },
        _ => new AdamOptimizerOptions { WeightDecay = 1e-2f, DecoupledWeightDecay = true },
    };

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void PrunedWeightsAndTheirOptimizerStateStayExactlyZeroFor1000Steps(string optimizerName)
    {
        var network = SmallConv(seed: 2);
        var optimizer = Create(optimizerName).Create(network.Parameters, Pool);
        // Train 20 dense steps first so the optimiser state is non-zero everywhere, then prune.
        var random = new Random(3);
        network.EnsureCapacity(8);
        var labels = new float[8];
        var loss = new SoftmaxCrossEntropyLoss();
        void Step()
        {
            for (int i = 0; i < 8 * network.InputSize; i++) network.Input[i] = random.NextSingle();
            for (int i = 0; i < 8; i++) labels[i] = random.Next(10);
            loss.Compute(network.Forward(8, training: true), labels, 8, 10, network.OutputGradient);
            network.Backward(8);
            optimizer.Step(0.01f);
        }
        for (int s = 0; s < 20; s++) Step();
        var plan = PruneNow(network, new PruningOptions { TargetSparsity = 0.8 });
        optimizer.ApplyMasks();
        var layers = PrunableLayer.From(network);
        var masks = layers.Select(l => (float[])l.Weight.Mask!.Clone()).ToArray();
        for (int s = 0; s < 1000; s++)
        {
            Step();
            if (s % 100 != 99) continue;
            for (int l = 0; l < layers.Count; l++)
            for (int i = 0; i < masks[l].Length; i++)
                if (masks[l][i] == 0) Assert.Equal(0f, layers[l].Weight.Value[i]);
        }
        // The optimiser's state of pruned entries is zero too, and the kept weights did train.
        for (int p = 0; p < network.Parameters.Count; p++)
        {
            if (network.Parameters[p].Mask is not { } mask) continue;
            for (int slot = 0; slot < optimizer.StateSlots; slot++)
            for (int i = 0; i < mask.Length; i++)
                if (mask[i] == 0) Assert.Equal(0f, optimizer.State[p * optimizer.StateSlots + slot][i]);
        }
        Assert.Equal(plan.Layers.Count, layers.Count);
        Assert.All(layers, l => Assert.Equal(Math.Round(0.8 * l.Count), Zeros(l.Weight.Value)));
    }

    [Fact]
    public void GradualPruningInTrainingReachesTheTargetExactlyAndNeverRegrows()
    {
        var ml = new MLContext(seed: 4);
        var data = SyntheticData(1024);
        var sparsities = new List<double>();
        var events = new List<int>();
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(64), Layers.ReLU(), Layers.Dense(32), Layers.ReLU()],
            Epochs = 6,
            BatchSize = 32,
            NumberOfThreads = 1,
            Sparsity = new PruningOptions { TargetSparsity = 0.9, Schedule = PruningSchedule.Gradual(10, 130, 20) },
        });
        var model = trainer.Fit(data, null, new SynchronousProgress<TrainingProgress>(p => { sparsities.Add(p.Sparsity!.Value); events.Add(p.PruningEvents); }));
        Assert.Equal(6, sparsities.Count);
        // 32 steps an epoch; events after steps 10, 30, ..., 130: each epoch reports the events its steps completed.
        var schedule = PruningSchedule.Gradual(10, 130, 20);
        int[] expected = Enumerable.Range(0, 6).Select(e => Enumerable.Range(32 * e + 1, 32).Count(t => schedule.IsPruningStep(t))).ToArray();
        Assert.Equal([2, 1, 2, 1, 1, 0], expected);
        Assert.Equal(expected, events);
        Assert.True(sparsities.Zip(sparsities.Skip(1)).All(p => p.Second >= p.First - 1e-12), string.Join(", ", sparsities));
        var report = model.GetSparsityReport();
        Assert.All(report.Layers, l => Assert.Equal(Math.Round(0.9 * l.Count), l.Count - l.NonZeros));
        Assert.All(report.Layers, l => Assert.Equal("unstructured", l.Pattern));
        Assert.Equal(0.9, report.Sparsity, 3);
    }

    [Fact]
    public void TaylorCriterionNeedsGradientsAndPrunesTheLeastSalientWeights()
    {
        var ml = new MLContext(seed: 4);
        var data = SyntheticData(512);
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(32), Layers.ReLU()],
            Epochs = 2,
            BatchSize = 32,
            NumberOfThreads = 1,
            Sparsity = new PruningOptions { TargetSparsity = 0.5, Criterion = ImportanceCriterion.Taylor(4), Schedule = PruningSchedule.OneShot(16) },
        });
        var model = trainer.Fit(data);
        Assert.Equal(0.5, model.GetSparsityReport().Sparsity, 3);

        var atZero = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(8)],
            Epochs = 1,
            Sparsity = new PruningOptions { Criterion = ImportanceCriterion.Taylor(), Schedule = PruningSchedule.AtInitialization() },
        });
        Assert.Contains("Taylor", Assert.Throws<ArgumentException>(() => atZero.Fit(data)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PruningATrainedModelReturnsAPrunedCopyAndLeavesTheOriginal()
    {
        var ml = new MLContext(seed: 4);
        var data = SyntheticData(512);
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(32), Layers.ReLU()], epochs: 2).Fit(data);
        var pruned = ml.Sparsity().Prune(model, new PruningOptions { TargetSparsity = 0.75, Allocation = LayerAllocation.Global });
        Assert.Equal(0, model.GetSparsityReport().Sparsity);
        var report = ml.Sparsity().GetReport(pruned);
        Assert.Equal(Math.Round(0.75 * report.Count), report.Count - report.NonZeros);
        Assert.Equal(report.NonZeros, report.SparseMultiplyAdds);
        Assert.Contains("unstructured", report.ToString(), StringComparison.Ordinal);
        // Taylor on a trained model needs data.
        Assert.Throws<ArgumentNullException>(() => ml.Sparsity().Prune(model, new PruningOptions { Criterion = ImportanceCriterion.Taylor() }));
        var taylor = ml.Sparsity().Prune(model, new PruningOptions { TargetSparsity = 0.5, Criterion = ImportanceCriterion.Taylor(3) }, data);
        Assert.Equal(0.5, taylor.GetSparsityReport().Sparsity, 2);
    }

    [Fact]
    public void RandomPruningAtInitialisationKeepsTheSameMaskThroughTraining()
    {
        var ml = new MLContext(seed: 4);
        var data = SyntheticData(512);
        var options = new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(32), Layers.ReLU()],
            Epochs = 2,
            NumberOfThreads = 1,
            Sparsity = ml.Sparsity().RandomPruning(0.9, LayerAllocation.Uniform, seed: 5),
            Seed = 9,
        };
        var a = ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(data);
        var report = a.GetSparsityReport();
        Assert.All(report.Layers, l => Assert.Equal(Math.Round(0.9 * l.Count), l.Count - l.NonZeros));
    }

    /// <summary>Two informative features decide among 4 classes; the rest is noise. "Features" (16 values) and a "Label" key (4 values).</summary>
    internal static IDataView SyntheticData(int rows)
    {
        var random = new Random(12);
        var features = new float[rows * 16];
        var labels = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            for (int f = 0; f < 16; f++) features[r * 16 + f] = random.NextSingle() * 2 - 1;
            labels[r] = (features[r * 16] > 0 ? 1 : 0) + (features[r * 16 + 1] > 0 ? 2 : 0);
        }
        return new DatasetDataView(new Dataset(features, [16], labels, classCount: 4));
    }
}
