using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Api;

public class ConfidentModelTests
{
    [Fact]
    public void ProbabilitiesStayFiniteWhenLogitsAreFarBeyondExpsRange()
    {
        using var context = new SparsityContext(seed: 1, threads: 1);
        var random = new Random(2);
        var features = Enumerable.Range(0, 64 * 8).Select(_ => random.NextSingle()).ToArray();
        var labels = Enumerable.Range(0, 64).Select(i => (float)(i % 3)).ToArray();
        var data = new Dataset(features, [8], labels);
        var model = context.MulticlassClassification.Trainers.NeuralNetwork([Layers.Dense(4), Layers.ReLU()], epochs: 1).Fit(data);
        // Make the logits enormous (hundreds to thousands): exp(z) alone would overflow.
        foreach (var p in model.Network.Parameters.Where(p => p.Name.StartsWith("output", StringComparison.Ordinal)))
            for (int i = 0; i < p.Length; i++) p.Value[i] *= 1e4f;
        var scored = model.Transform(data);
        var single = new float[3];
        for (int r = 0; r < data.Count; r++)
        {
            var scores = scored.GetScores(r).ToArray();
            Assert.All(scores, s => Assert.True(float.IsFinite(s)));
            Assert.Equal(1.0, scores.Sum(), 4);
            Assert.Equal(scored.GetPredictedLabel(r), model.Predict(data.GetFeatures(r), single));
        }
        Assert.True(double.IsFinite(context.MulticlassClassification.Evaluate(scored).LogLoss));
    }
}
