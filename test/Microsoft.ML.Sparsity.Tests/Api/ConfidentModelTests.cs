using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Tests.Inference;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Api;

public class ConfidentModelTests
{
    [Fact]
    public void ProbabilitiesStayFiniteWhenLogitsAreFarBeyondExpsRange()
    {
        var ml = new MLContext(seed: 1);
        var random = new Random(2);
        var features = Enumerable.Range(0, 64 * 8).Select(_ => random.NextSingle()).ToArray();
        var labels = Enumerable.Range(0, 64).Select(i => (float)(i % 3)).ToArray();
        var data = new Dataset(features, [8], labels);
        IDataView view = ScoredRows.View(data, classCount: 3);
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(
            new NeuralNetworkMulticlassTrainer.Options { Layers = [Layers.Dense(4), Layers.ReLU()], Epochs = 1, NumberOfThreads = 1 }).Fit(view);
        // Make the logits enormous (hundreds to thousands): exp(z) alone would overflow.
        foreach (var p in model.Network.Parameters.Where(p => p.Name.StartsWith("output", StringComparison.Ordinal)))
            for (int i = 0; i < p.Length; i++) p.Value[i] *= 1e4f;
        IDataView scored = model.Transform(view);
        var (scores, predicted) = ScoredRows.Read(scored);
        var single = new float[3];
        for (int r = 0; r < data.Count; r++)
        {
            var row = scores.AsSpan(r * 3, 3).ToArray();
            Assert.All(row, s => Assert.True(float.IsFinite(s)));
            Assert.Equal(1.0, row.Sum(), 4);
            Assert.Equal(predicted[r], (uint)model.Predict(data.GetFeatures(r), single) + 1);
        }
        Assert.True(double.IsFinite(ml.MulticlassClassification.Evaluate(scored).LogLoss));
    }
}
