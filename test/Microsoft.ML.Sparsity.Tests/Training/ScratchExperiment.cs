using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Xunit;
using Xunit.Abstractions;

namespace Microsoft.ML.Sparsity.Tests.Training;

public sealed class ScratchExperiment(ITestOutputHelper output)
{
    [Theory]
    [InlineData("lenet", 32, 0.02f, false)]
    [InlineData("lenet", 32, 0.001f, true)]
    [InlineData("lenet", 32, 0.05f, false)]
    [InlineData("cnn", 32, 0.003f, true)]
    [InlineData("cnn", 16, 0.001f, true)]
    public void Spread(string arch, int batch, float lr, bool adam)
    {
        var accs = new List<double>();
        for (int seed = 1; seed <= 6; seed++)
        {
            using var context = new SparsityContext(seed: seed);
            bool lenet = arch == "lenet";
            var train = TrainingData.FashionTrain.Take(lenet ? 6000 : 2000);
            var test = TrainingData.FashionTest.Take(lenet ? 2000 : 1000);
            var options = new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = lenet ? Layers.LeNet300100() : TrainingData.TinyCnn(),
                Epochs = lenet ? 3 : 2,
                BatchSize = batch,
                Optimizer = adam ? new AdamOptimizerOptions { LearningRate = lr } : new SgdOptimizerOptions { LearningRate = lr },
            };
            var model = context.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(train);
            accs.Add(context.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy);
        }
        output.WriteLine($"{arch} b{batch} lr{lr} adam={adam}: min {accs.Min():F4} mean {accs.Average():F4} max {accs.Max():F4}  [{string.Join(", ", accs.Select(a => a.ToString("F3")))}]");
    }
}
