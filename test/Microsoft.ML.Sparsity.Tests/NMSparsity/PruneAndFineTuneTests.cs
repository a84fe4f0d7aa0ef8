using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.NMSparsity;

public class PruneAndFineTuneTests
{
    [Fact]
    public void TwoFourPruneThenFineTuneKeepsTheMaskAndPermutationKeepsMoreMagnitude()
    {
        var ml = new MLContext(seed: 6);
        var data = Masks.MaskedTrainingTests.SyntheticData(512);
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(32), Layers.ReLU(), Layers.Dense(16), Layers.ReLU()],
            Epochs = 2,
            BatchSize = 32,
            NumberOfThreads = 2,
        });
        var dense = trainer.Fit(data);
        PruningOptions TwoFour(bool permute) => new()
        {
            Pattern = SparsityPattern.NM(2, 4),
            Schedule = PruningSchedule.AtInitialization(),
            PermuteChannels = permute,
            ExcludedLayers = { "0" },
        };
        var plain = ml.Sparsity().Prune(dense, TwoFour(permute: false));
        var permuted = ml.Sparsity().Prune(dense, TwoFour(permute: true));
        double Kept(Models.NeuralNetworkMulticlassModel m) => PrunableLayer.From(m.Network).Skip(1).Sum(l => l.Weight.Value.Sum(Math.Abs));
        Assert.True(Kept(permuted) >= Kept(plain) - 1e-4, $"{Kept(permuted)} < {Kept(plain)}");

        // Fine-tuning with the same trainer keeps the fixed 2:4 masks.
        var tuned = trainer.Fit(data, permuted);
        foreach (var layer in PrunableLayer.From(tuned.Network).Skip(1))
            for (int g = 0; g < layer.Count / 4; g++)
                Assert.True(layer.Weight.Value.AsSpan(g * 4, 4).ToArray().Count(v => v != 0) <= 2);
        Assert.Equal(permuted.GetSparsityReport().Layers.Select(l => l.Pattern), tuned.GetSparsityReport().Layers.Select(l => l.Pattern));
        Assert.Throws<ArgumentException>(() => ml.Sparsity().Prune(dense, new PruningOptions { PermuteChannels = true, Schedule = PruningSchedule.AtInitialization() }));
    }
}
