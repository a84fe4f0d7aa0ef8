// Physical channel removal on a trained Fashion-MNIST CNN (docs/channel-pruning.md): trains the small CNN, prunes half
// of the output channels of each hidden layer once by L1 norm (no fine-tuning), with and without the pruned channels'
// biases, compacts the pruned model, and prints the test accuracy of both, their largest score difference and the
// compaction report.
// Usage: dotnet run -c Release --project samples/ChannelPruning -- [--epochs 2] [--seed 1] [--sparsity 0.5] [--data DIR]
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;

int epochs = 2, seed = 1;
double sparsity = 0.5;
string? data = null;
for (int i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--epochs": epochs = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--seed": seed = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--sparsity": sparsity = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--data": data = args[i + 1]; break;
        default: throw new ArgumentException($"Unknown option '{args[i]}'; expected --epochs, --seed, --sparsity or --data.");
    }
}

var ml = new MLContext(seed: seed);
IDataView train = ml.Data.LoadFashionMnist(FashionMnistSplit.Train, data);
IDataView test = ml.Data.LoadFashionMnist(FashionMnistSplit.Test, data);
var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
{
    Layers = Layers.SmallCnn(),
    Epochs = epochs,
    BatchSize = 64,
    Seed = seed,
    Optimizer = new AdamOptimizerOptions { LearningRate = 1e-3f },
}).Fit(train);
Console.WriteLine($"Small CNN, {epochs} epochs, Adam 1e-3, batch 64, seed {seed}: test accuracy {Accuracy(model):F4}");

foreach (bool pruneBiases in new[] { false, true })
{
    var pruned = ml.Sparsity().Prune(model, new PruningOptions
    {
        Pattern = SparsityPattern.OutputChannels,
        TargetSparsity = sparsity,
        PruneBiases = pruneBiases,
        ExcludedLayers = ["output"],
    });
    var compact = ml.Sparsity().Compact(pruned);
    float[] before = Scores(pruned), after = Scores(compact);
    double largest = before.Zip(after, (a, b) => Math.Abs(a - b)).Max();
    Console.WriteLine();
    Console.WriteLine($"{sparsity * 100:F0}% of the hidden channels pruned by L1, PruneBiases = {pruneBiases}: test accuracy pruned {Accuracy(pruned):F4}, " +
                      $"compact {Accuracy(compact):F4}; largest |score difference| {largest:E2} over {before.Length:N0} scores");
    Console.WriteLine(ml.Sparsity().GetCompactionReport(pruned));
}

double Accuracy(ITransformer transformer) => ml.MulticlassClassification.Evaluate(transformer.Transform(test)).MicroAccuracy;

float[] Scores(ITransformer transformer) =>
    [.. ml.Data.CreateEnumerable<ScoreRow>(transformer.Transform(test), reuseRowObject: false).SelectMany(r => r.Score)];

internal sealed class ScoreRow
{
    [VectorType(10)]
    public float[] Score { get; set; } = [];
}
