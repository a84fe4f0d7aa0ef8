using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// Fashion-MNIST as plain arrays for benchmarks that feed other libraries: the one place that reaches into the
/// package's data internals (its IDX reader and Fashion-MNIST loader), to repoint when that code changes.
/// </summary>
internal static class FashionMnistArrays
{
    /// <summary>
    /// One split's images, each its 784 pixels (28×28, row-major) scaled to [0, 1], and their labels 0–9: from the
    /// folder in <c>FASHION_MNIST_DIR</c>, else Debian's <c>dataset-fashion-mnist</c> (which <c>build/setup.sh</c> installs).
    /// </summary>
    /// <param name="test">The 10,000 test images when true, the 60,000 training images when false.</param>
    public static (float[][] Pixels, int[] Labels) Load(bool test)
    {
        Dataset data = new FashionMnistLoader(_ => { }).Load(test ? FashionMnistSplit.Test : FashionMnistSplit.Train, directory: null);
        var pixels = new float[data.Count][];
        for (int row = 0; row < pixels.Length; row++)
            pixels[row] = data.GetFeatures(row).ToArray();
        return (pixels, data.Labels.Select(label => (int)label).ToArray());
    }
}
