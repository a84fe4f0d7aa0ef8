using Microsoft.ML.Data;
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

/// <summary>
/// Shared test data: Fashion-MNIST loaded once per test run, and small synthetic problems. The examples are held in the
/// engine's <see cref="Dataset"/> (so tests can take subsets and read labels); <see cref="AsDataView"/> gives them to the
/// public API as the <see cref="IDataView"/> a user would have ("Features" vector, "Label" key).
/// </summary>
internal static class TrainingData
{
    private static readonly Lazy<Dataset> s_train = new(() => Load(FashionMnistSplit.Train));
    private static readonly Lazy<Dataset> s_test = new(() => Load(FashionMnistSplit.Test));

    public static Dataset FashionTrain => s_train.Value;
    public static Dataset FashionTest => s_test.Value;

    private static Dataset Load(FashionMnistSplit split) =>
        DataViewReader.Read(new MLContext(seed: 0).Data.LoadFashionMnist(split, FashionMnistFactAttribute.Directory), "Features", "Label");

    /// <summary>The examples as an <see cref="IDataView"/>: "Features" (a vector with the feature shape as dimensions) and a "Label" key column.</summary>
    public static IDataView AsDataView(this Dataset data) => new DatasetDataView(data);

    /// <summary>Text class names as key values.</summary>
    public static ClassLabels Names(params string[] names) => new(TextDataViewType.Instance, names);

    /// <summary>
    /// <paramref name="classes"/> Gaussian blobs in <paramref name="features"/> dimensions: learnable but not trivially
    /// separable (σ = 1, centres about 2 apart). The label key has <paramref name="classes"/> values.
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
        return new Dataset(x, [features], y, classNames is null ? null : Names(classNames), classNames?.Length ?? classes);
    }

    /// <summary>Blobs reshaped to a tiny channels-last image.</summary>
    public static Dataset ImageBlobs(int count, int seed = 1) => Blobs(count, features: 6 * 6 * 2, classes: 3, seed).Reshape(6, 6, 2);

    public static LayerDefinition[] TinyCnn() => [Layers.Conv2d(8, 3, padding: 1), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Flatten()];

    /// <summary>The "Score" column of a scored data view, row after row.</summary>
    public static float[][] Scores(IDataView scored)
    {
        var column = scored.Schema["Score"];
        var rows = new List<float[]>();
        using var cursor = scored.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            rows.Add(value.DenseValues().ToArray());
        }
        return [.. rows];
    }

    /// <summary>The "PredictedLabel" key column of a scored data view as class indices (key − 1).</summary>
    public static int[] PredictedLabels(IDataView scored)
    {
        var column = scored.Schema["PredictedLabel"];
        var rows = new List<int>();
        using var cursor = scored.GetRowCursor([column]);
        var getter = cursor.GetGetter<uint>(column);
        uint value = 0;
        while (cursor.MoveNext())
        {
            getter(ref value);
            rows.Add((int)value - 1);
        }
        return [.. rows];
    }
}
