using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Training;

/// <summary>A fact that needs Fashion-MNIST from the Debian package dataset-fashion-mnist (installed in CI).</summary>
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public const string Directory = "/usr/share/datasets/fashion-mnist";

    public FashionMnistFactAttribute()
    {
        if (!System.IO.Directory.Exists(Directory))
            Skip = $"{Directory} is absent: apt-get install dataset-fashion-mnist to run this test.";
    }
}

/// <summary>Shared test data: Fashion-MNIST loaded once per test run, and small synthetic problems.</summary>
internal static class TrainingData
{
    private static readonly Lazy<Dataset> s_train = new(() => Load(FashionMnistSplit.Train));
    private static readonly Lazy<Dataset> s_test = new(() => Load(FashionMnistSplit.Test));

    public static Dataset FashionTrain => s_train.Value;
    public static Dataset FashionTest => s_test.Value;

    private static Dataset Load(FashionMnistSplit split)
    {
        using var context = new SparsityContext(seed: 0, threads: 1);
        return context.Data.LoadFashionMnist(split, FashionMnistFactAttribute.Directory);
    }

    /// <summary>
    /// <paramref name="classes"/> Gaussian blobs in <paramref name="features"/> dimensions: learnable but not trivially
    /// separable (σ = 1, centres about 2 apart).
    /// </summary>
    public static Dataset Blobs(int count, int features = 10, int classes = 3, int seed = 1, string[]? classNames = null)
    {
        var random = new Random(seed);
        var centres = new float[classes, features];
        var centreRandom = new Random(12345);
        for (int c = 0; c < classes; c++)
        for (int f = 0; f < features; f++)
            centres[c, f] = (float)(centreRandom.NextDouble() * 3 - 1.5);
        var x = new float[count * features];
        var y = new float[count];
        for (int i = 0; i < count; i++)
        {
            int label = i % classes;
            y[i] = label;
            for (int f = 0; f < features; f++)
            {
                double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
                x[i * features + f] = centres[label, f] + (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }
        }
        return new Dataset(x, [features], y, classNames);
    }

    /// <summary>Blobs reshaped to a tiny channels-last image.</summary>
    public static Dataset ImageBlobs(int count, int seed = 1) => Blobs(count, features: 6 * 6 * 2, classes: 3, seed).Reshape(6, 6, 2);

    public static LayerDefinition[] TinyCnn() => [Layers.Conv2d(8, 3, padding: 1), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Flatten()];
}
