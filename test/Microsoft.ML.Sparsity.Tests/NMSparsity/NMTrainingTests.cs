using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.NMSparsity;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.NMSparsity;

public class NMTrainingTests
{
    private static readonly float[] Labels = [0, 2, 1, 2];

    [Theory]
    [InlineData(2e-4f)]
    [InlineData(0f)]
    [InlineData(0.5f)]
    public void SrSteGradientIsTheGradientAtTheSparseWeightsPlusTheDecayOnPrunedEntries(float decay)
    {
        var network = Build([8], 5, Layers.Dense(3, useBias: false));
        var reference = Build([8], 5, Layers.Dense(3, useBias: false));
        var w = network.Parameters[0];
        var dense = (float[])w.Value.Clone();
        var optimizer = new SgdOptimizerOptions().Create(network.Parameters, Pool);
        var controller = new SrSteOptions { N = 2, M = 4, Decay = decay }.CreateController(network, optimizer, 1, null);
        controller.Start(10, 100);
        var input = Enumerable.Range(0, 4 * 8).Select(i => MathF.Sin(i * 0.7f)).ToArray();

        controller.BeforeForward(0);
        // The forward weights are W ⊙ E: 2 of every 4, the largest magnitudes.
        var mask = new float[dense.Length];
        for (int g = 0; g < dense.Length / 4; g++)
        {
            var top = Enumerable.Range(0, 4).OrderByDescending(i => Math.Abs(dense[g * 4 + i])).Take(2).ToArray();
            foreach (int i in top) mask[g * 4 + i] = 1;
        }
        Assert.Equal(dense.Select((v, i) => v * mask[i]), w.Value);
        var expected = Gradient(reference, dense.Select((v, i) => v * mask[i]).ToArray(), input);
        Step(network, input);
        controller.AfterBackward(0);

        Assert.Equal(dense, w.Value);   // the optimiser updates the dense weights
        for (int i = 0; i < dense.Length; i++)
        {
            if (mask[i] == 1) Assert.Equal(expected[i], w.Gradient[i]);
            else Assert.Equal(expected[i] + decay * dense[i], w.Gradient[i], 1e-7f);
        }
    }

    [Fact]
    public void MasksAreNMAtEveryStepAndTheTrainedModelIsNMWithTheMaskFixed()
    {
        var ml = new MLContext(seed: 2);
        var data = Masks.MaskedTrainingTests.SyntheticData(512);
        var sads = new List<long?>();
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(32), Layers.ReLU(), Layers.Dense(16), Layers.ReLU()],
            Epochs = 4,
            BatchSize = 32,
            NumberOfThreads = 2,
            Sparsity = new SrSteOptions { N = 1, M = 4, ExcludedLayers = { "-1" } },
        }).Fit(data, null, new SynchronousProgress<TrainingProgress>(p => sads.Add(p.MaskChanges)));
        Assert.Null(sads[0]);
        Assert.All(sads.Skip(1), s => Assert.True(s is >= 0));
        var report = model.GetSparsityReport();
        Assert.Equal(0.75, report.Layers[0].Sparsity, 6);
        Assert.Equal(0.75, report.Layers[1].Sparsity, 6);
        Assert.Equal("dense: excluded", report.Layers[2].Pattern);
        Assert.Equal("1:4 (SR-STE (λ = 0.0002))", report.Layers[0].Pattern);
        foreach (var layer in PrunableLayer.From(model.Network).Take(2))
        {
            for (int g = 0; g < layer.Count / 4; g++)
                Assert.Equal(1, layer.Weight.Value.AsSpan(g * 4, 4).ToArray().Count(v => v != 0));
            Assert.NotNull(layer.Weight.Mask);
        }
    }

    [Fact]
    public void StepwiseScheduleGoesDenseThenHalvesNThenFixesTheMask()
    {
        var o = new StepwiseNMOptions { N = 1, M = 8, DenseEpochs = 1, FineTuneEpochs = 1 };
        Assert.Equal([4, 2, 1], o.Stages());
        // 10 epochs of 10 steps: dense 0–9, three stages over steps 10–89, fixed 90–99.
        Assert.Equal((null, false), o.PatternAt(9, 10, 100));
        Assert.Equal((4, false), o.PatternAt(10, 10, 100));
        Assert.Equal((4, false), o.PatternAt(36, 10, 100));
        Assert.Equal((2, false), o.PatternAt(37, 10, 100));
        Assert.Equal((1, false), o.PatternAt(89, 10, 100));
        Assert.Equal((1, true), o.PatternAt(90, 10, 100));
    }

    [Fact]
    public void MaskDecayFollowsItsFormulas()
    {
        var linear = new MaskDecayNMOptions { Shape = MaskDecayShape.Linear, Rate = 0.01 };
        var exponential = new MaskDecayNMOptions { Shape = MaskDecayShape.Exponential, Rate = 0.01 };
        foreach (long t in new long[] { 0, 1, 50, 99, 100, 250 })
        {
            Assert.Equal((float)Math.Max(0, 1 - 0.01 * t), linear.PrunedScaleAt(t));
            Assert.Equal((float)Math.Exp(-0.01 * t), exponential.PrunedScaleAt(t));
        }
    }

    [Fact]
    public void MaskDecayForwardKeepsPrunedWeightsScaledByBeta()
    {
        var network = Build([8], 5, Layers.Dense(2, useBias: false));
        var dense = (float[])network.Parameters[0].Value.Clone();
        var optimizer = new SgdOptimizerOptions().Create(network.Parameters, Pool);
        var controller = new MaskDecayNMOptions { N = 1, M = 4, Shape = MaskDecayShape.Linear, Rate = 0.1 }.CreateController(network, optimizer, 1, null);
        controller.Start(10, 100);
        controller.BeforeForward(3);   // β = 0.7
        var projected = network.Parameters[0].Value;
        for (int g = 0; g < 4; g++)
        {
            int keep = Enumerable.Range(0, 4).MaxBy(i => Math.Abs(dense[g * 4 + i]));
            for (int i = 0; i < 4; i++)
                Assert.Equal(i == keep ? dense[g * 4 + i] : dense[g * 4 + i] * 0.7f, projected[g * 4 + i], 1e-6f);
        }
    }

    [Theory]
    [InlineData(4, 4)]
    [InlineData(0, 4)]
    public void BadNOrMIsRejected(int n, int m)
    {
        var network = Build([8], 5, Layers.Dense(2));
        var optimizer = new SgdOptimizerOptions().Create(network.Parameters, Pool);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SrSteOptions { N = n, M = m }.CreateController(network, optimizer, 1, null));
    }

    [Fact]
    public void AGroupSizeThatDoesNotDivideTheInputsLeavesTheLayerDenseOnlyWhenAsked()
    {
        var network = Build([784], 5, Layers.Dense(300), Layers.ReLU(), Layers.Dense(10));
        var optimizer = new SgdOptimizerOptions().Create(network.Parameters, Pool);
        // By default dense1 (300 inputs) is 2:8 with a ragged last group of 4 keeping 1 per row.
        var ragged = new SrSteOptions { N = 2, M = 8 }.CreateController(network, optimizer, 1, null);
        ragged.Start(1, 10);
        ragged.Finish();
        Assert.Equal(10 * (37 * 2 + 1), PrunableLayer.From(network)[1].Weight.Value.Count(w => w != 0));
        // With the fallback the layer stays dense.
        network = Build([784], 5, Layers.Dense(300), Layers.ReLU(), Layers.Dense(10));
        optimizer = new SgdOptimizerOptions().Create(network.Parameters, Pool);
        var lenient = new SrSteOptions { N = 2, M = 8, LeaveMisfitLayersDense = true }.CreateController(network, optimizer, 1, null);
        lenient.Start(1, 10);
        lenient.Finish();
        Assert.StartsWith("dense: 2:8 sparsity needs", PrunableLayer.From(network)[1].Weight.SparsityNote, StringComparison.Ordinal);
        Assert.Equal(3000, PrunableLayer.From(network)[1].Weight.Value.Count(w => w != 0));
    }

    [Fact]
    public void SrSteOnLeNetAtOneOfEightKeepsTheRaggedCountsAtEveryStep()
    {
        // LeNet-300-100's layers with 300 and 100 inputs: 37 and 12 full groups of 8 keeping 1, then a ragged group of
        // 4 keeping ⌈1·4/8⌉ = 1. The 784-input layer has whole groups only.
        var network = LeNet(3);
        var layers = PrunableLayer.From(network);
        var optimizer = new SgdOptimizerOptions().Create(network.Parameters, Pool);
        var controller = new SrSteOptions { N = 1, M = 8 }.CreateController(network, optimizer, 1, null);
        controller.Start(4, 8);
        var random = new Random(4);
        float[] labels = [3, 1, 4, 1];
        long kept = layers.Sum(l => l.Count / l.InChannels * (l.InChannels / 8 + (l.InChannels % 8 > 0 ? 1 : 0)));
        for (long step = 0; step < 8; step++)
        {
            controller.BeforeForward(step);
            foreach (var layer in layers)
            {
                int c = layer.InChannels, r = c % 8;
                var w = layer.Weight.Value;
                for (int start = 0; start < w.Length; start += c)
                {
                    for (int g = 0; g + 8 <= c; g += 8)
                        Assert.Equal(1, w.AsSpan(start + g, 8).ToArray().Count(v => v != 0));
                    if (r > 0) Assert.Equal(1, w.AsSpan(start + c - r, r).ToArray().Count(v => v != 0));
                }
            }
            Assert.Equal(1 - (double)kept / layers.Sum(l => l.Count), controller.Sparsity, 12);
            network.EnsureCapacity(4);
            for (int i = 0; i < 4 * 784; i++) network.Input[i] = (float)random.NextDouble();
            var output = network.Forward(4, training: true);
            new SoftmaxCrossEntropyLoss().Compute(output, labels, 4, 10, network.OutputGradient);
            network.Backward(4);
            controller.AfterBackward(step);
            optimizer.Step(0.5f);
        }
        controller.Finish();
        Assert.Equal(kept, layers.Sum(l => (long)l.Weight.Value.Count(v => v != 0)));
    }

    private static float[] Gradient(SequentialNetwork network, float[] weights, float[] input)
    {
        weights.CopyTo(network.Parameters[0].Value, 0);
        Step(network, input);
        return (float[])network.Parameters[0].Gradient.Clone();
    }

    private static void Step(SequentialNetwork network, float[] input)
    {
        network.EnsureCapacity(4);
        input.CopyTo(network.Input, 0);
        var output = network.Forward(4, training: true);
        new SoftmaxCrossEntropyLoss().Compute(output, Labels, 4, 3, network.OutputGradient);
        network.Backward(4);
    }
}
