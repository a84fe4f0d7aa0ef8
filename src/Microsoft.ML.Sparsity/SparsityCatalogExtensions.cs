using Microsoft.ML.Sparsity;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML;

/// <summary>
/// Microsoft.ML.Sparsity's entry points, as extension methods on ML.NET's catalogs: the neural-network trainers on
/// <c>mlContext.MulticlassClassification.Trainers</c>, <c>mlContext.BinaryClassification.Trainers</c> and
/// <c>mlContext.Regression.Trainers</c>, Fashion-MNIST on <c>mlContext.Data</c>, and
/// <c>mlContext.Sparsity()</c> for what ML.NET has no catalog for (sparsity methods, pruning a trained model, sparsity
/// reports, lottery tickets, ONNX export, restoring a saved model's fast transformer).
/// </summary>
public static class SparsityCatalogExtensions
{
    /// <summary>
    /// A neural-network classifier trained with SGD (momentum 0.9) on the package's managed CPU engine: the given
    /// hidden layers, then a dense output layer with one unit per key value of the label.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="labelColumnName">The label column: a key (e.g. from <c>MapValueToKey</c>).</param>
    /// <param name="featureColumnName">The features column: a known-size vector of <see cref="float"/>.</param>
    /// <param name="layers">The hidden layers; null means LeNet-300-100's (<see cref="Layers.LeNet300100"/>).</param>
    /// <param name="epochs">Passes over the training data.</param>
    /// <param name="batchSize">Examples per step.</param>
    /// <param name="learningRate">SGD's learning rate.</param>
    public static NeuralNetworkMulticlassTrainer NeuralNetwork(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", IEnumerable<LayerDefinition>? layers = null,
        int epochs = 10, int batchSize = 64, float learningRate = 0.01f) =>
        catalog.NeuralNetwork(Simple(new NeuralNetworkMulticlassTrainer.Options(), labelColumnName, featureColumnName, layers, epochs, batchSize, learningRate));

    /// <summary>A neural-network classifier configured by <paramref name="options"/> (sparsity methods go in <c>Options.Sparsity</c>).</summary>
    public static NeuralNetworkMulticlassTrainer NeuralNetwork(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        NeuralNetworkMulticlassTrainer.Options options) =>
        new(MLNetInternals.EnvironmentOf(catalog), options);

    /// <summary>
    /// A neural-network binary classifier trained with SGD (momentum 0.9) on the package's managed CPU engine: the given
    /// hidden layers, then a dense output layer of one logit (binary cross-entropy). Its model adds <c>Score</c> (the
    /// logit), <c>Probability</c> (its sigmoid) and <c>PredictedLabel</c> (a <see cref="bool"/>), as ML.NET's binary trainers do.
    /// </summary>
    /// <param name="catalog">The binary-classification trainers catalog.</param>
    /// <param name="labelColumnName">The label column: a <see cref="bool"/> (true for the positive class).</param>
    /// <param name="featureColumnName">The features column: a known-size vector of <see cref="float"/>.</param>
    /// <param name="layers">The hidden layers; null means LeNet-300-100's (<see cref="Layers.LeNet300100"/>).</param>
    /// <param name="epochs">Passes over the training data.</param>
    /// <param name="batchSize">Examples per step.</param>
    /// <param name="learningRate">SGD's learning rate.</param>
    public static NeuralNetworkBinaryTrainer NeuralNetwork(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", IEnumerable<LayerDefinition>? layers = null,
        int epochs = 10, int batchSize = 64, float learningRate = 0.01f) =>
        catalog.NeuralNetwork(Simple(new NeuralNetworkBinaryTrainer.Options(), labelColumnName, featureColumnName, layers, epochs, batchSize, learningRate));

    /// <summary>A neural-network binary classifier configured by <paramref name="options"/> (sparsity methods go in <c>Options.Sparsity</c>).</summary>
    public static NeuralNetworkBinaryTrainer NeuralNetwork(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        NeuralNetworkBinaryTrainer.Options options) =>
        new(MLNetInternals.EnvironmentOf(catalog), options);

    /// <summary>
    /// A neural-network regression model trained with SGD (momentum 0.9) on the package's managed CPU engine: the given
    /// hidden layers, then a dense output layer of one unit (mean squared error). Its model adds <c>Score</c> (a
    /// <see cref="float"/>), as ML.NET's regression trainers do.
    /// </summary>
    /// <param name="catalog">The regression trainers catalog.</param>
    /// <param name="labelColumnName">The label column: a <see cref="float"/>; rows whose label is NaN are skipped.</param>
    /// <param name="featureColumnName">The features column: a known-size vector of <see cref="float"/>.</param>
    /// <param name="layers">The hidden layers; null means LeNet-300-100's (<see cref="Layers.LeNet300100"/>).</param>
    /// <param name="epochs">Passes over the training data.</param>
    /// <param name="batchSize">Examples per step.</param>
    /// <param name="learningRate">SGD's learning rate.</param>
    public static NeuralNetworkRegressionTrainer NeuralNetwork(this RegressionCatalog.RegressionTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", IEnumerable<LayerDefinition>? layers = null,
        int epochs = 10, int batchSize = 64, float learningRate = 0.01f) =>
        catalog.NeuralNetwork(Simple(new NeuralNetworkRegressionTrainer.Options(), labelColumnName, featureColumnName, layers, epochs, batchSize, learningRate));

    /// <summary>A neural-network regression model configured by <paramref name="options"/> (sparsity methods go in <c>Options.Sparsity</c>).</summary>
    public static NeuralNetworkRegressionTrainer NeuralNetwork(this RegressionCatalog.RegressionTrainers catalog,
        NeuralNetworkRegressionTrainer.Options options) =>
        new(MLNetInternals.EnvironmentOf(catalog), options);

    /// <summary><paramref name="options"/> with the simple overloads' parameters.</summary>
    private static TOptions Simple<TOptions>(TOptions options, string labelColumnName, string featureColumnName, IEnumerable<LayerDefinition>? layers,
        int epochs, int batchSize, float learningRate) where TOptions : NeuralNetworkTrainerOptions
    {
        options.LabelColumnName = labelColumnName;
        options.FeatureColumnName = featureColumnName;
        options.Layers = layers?.ToList() ?? [.. Layers.LeNet300100()];
        options.Epochs = epochs;
        options.BatchSize = batchSize;
        options.Optimizer = new SgdOptimizerOptions { LearningRate = learningRate };
        return options;
    }

    /// <summary>
    /// Converts images to normalised block-DCT channels ("Learning in the Frequency Domain", Xu et al., CVPR 2020):
    /// YCbCr (RGB images), B×B block DCT-II, channel u·B + v of each component, per-channel normalisation fitted on the
    /// training data, optionally a channel selection. Reads the images from the "Features" column and replaces it with
    /// the channels, a vector with dimensions <c>[paddedHeight/B, paddedWidth/B, kept channels]</c>; <c>Append</c> a
    /// trainer (e.g. <c>mlContext.MulticlassClassification.Trainers.NeuralNetwork</c>) to train on them.
    /// </summary>
    /// <remarks>
    /// <para>The input is a known-size vector of <see cref="float"/> holding <c>[height, width, 1 or 3]</c> images with
    /// pixels in [0, 1]: the package's <c>mlContext.Data.LoadFashionMnist</c>, or ML.NET's <c>LoadImages</c> →
    /// <c>ResizeImages</c> → <c>ExtractPixels(scaleImage: 1f / 255)</c>, planar (<c>[channels, height, width]</c>,
    /// <c>ExtractPixels</c>' default) or interleaved (<c>interleavePixelColors: true</c>); the layout is read from the
    /// column's dimensions. Other column names, a layout or image shape the dimensions do not give, byte pixels
    /// (<c>PixelRange</c> 255), the gate's training and the thread count are set in the
    /// <see cref="Microsoft.ML.Sparsity.FrequencyDomain.FrequencyDomainEstimator.Options"/> overload.</para>
    /// <para>The fitted transformer is saved by <c>mlContext.Model.Save</c> in portable form (ONNX, run by ML.NET's
    /// <c>ApplyOnnxModel</c>), restored as itself by <c>mlContext.Sparsity().LoadModel</c>, and exported in front of
    /// the network by <c>mlContext.Sparsity().ConvertToOnnx</c>.</para>
    /// </remarks>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="blockSize">The DCT block side: 8 or 4.</param>
    /// <param name="selection">Which channels to keep.</param>
    /// <param name="channelCount">For <see cref="Microsoft.ML.Sparsity.FrequencyDomain.FrequencyChannelSelection.Gate"/>: how many channels to keep; null keeps a quarter.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="blockSize"/> is not 4 or 8, or <paramref name="channelCount"/> is below 1.</exception>
    public static Microsoft.ML.Sparsity.FrequencyDomain.FrequencyDomainEstimator ConvertToFrequencyDomain(this TransformsCatalog catalog, int blockSize = 8,
        Microsoft.ML.Sparsity.FrequencyDomain.FrequencyChannelSelection selection = Microsoft.ML.Sparsity.FrequencyDomain.FrequencyChannelSelection.All, int? channelCount = null) =>
        catalog.ConvertToFrequencyDomain(new Microsoft.ML.Sparsity.FrequencyDomain.FrequencyDomainEstimator.Options { BlockSize = blockSize, Selection = selection, ChannelCount = channelCount });

    /// <summary>
    /// Converts images to normalised block-DCT channels, configured by <paramref name="options"/>: the input and output
    /// columns (<c>InputColumnName</c>, <c>OutputColumnName</c>; the same name replaces the column), the pixel layout
    /// (<c>InterleavedPixelColors</c>, <c>ImageShape</c>; by default read from the column's dimensions, as
    /// <c>ExtractPixels</c> gives them), <c>PixelRange</c>, the block size, the channel selection, the gate's training
    /// and the thread count. See the other overload.
    /// </summary>
    public static Microsoft.ML.Sparsity.FrequencyDomain.FrequencyDomainEstimator ConvertToFrequencyDomain(this TransformsCatalog catalog,
        Microsoft.ML.Sparsity.FrequencyDomain.FrequencyDomainEstimator.Options options) =>
        new(MLNetInternals.EnvironmentOf(catalog), options);

    /// <summary>
    /// Loads one split of Fashion-MNIST: 28×28 grayscale images of clothing as a <c>Features</c> column (a vector of 784
    /// values in [0, 1], row-major, with dimensions [28, 28, 1] for convolution layers) and a <c>Label</c> key column
    /// whose values are the class names (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot).
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="split">The 60,000 training or the 10,000 test images.</param>
    /// <param name="directory">
    /// A folder holding the IDX files (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>,
    /// <c>t10k-images-idx3-ubyte</c>, <c>t10k-labels-idx1-ubyte</c>, each plain or <c>.gz</c>); only that folder is used.
    /// When <see langword="null"/>, the files are looked for in the folder named by the <c>FASHION_MNIST_DIR</c> environment
    /// variable, then <c>/usr/share/datasets/fashion-mnist</c> (the Debian package <c>dataset-fashion-mnist</c>), then the
    /// per-user download cache; failing all three they are downloaded from the Fashion-MNIST project into the cache.
    /// </param>
    /// <exception cref="FileNotFoundException">The files were found nowhere and could not be downloaded; the message lists every place searched.</exception>
    /// <exception cref="InvalidDataException">A file is not a valid Fashion-MNIST IDX file.</exception>
    public static IDataView LoadFashionMnist(this DataOperationsCatalog catalog, FashionMnistSplit split, string? directory = null)
    {
        var host = new SparsityHost(MLNetInternals.EnvironmentOf(catalog), "FashionMnist");
        return new DatasetDataView(new FashionMnistLoader(host.WriteLog).Load(split, directory));
    }

    /// <summary>Microsoft.ML.Sparsity's operations that have no ML.NET catalog: sparsity methods, pruning, reports, lottery tickets, ONNX export, loading.</summary>
    public static SparsityCatalog Sparsity(this MLContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new SparsityCatalog(context);
    }
}
