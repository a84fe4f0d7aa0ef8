using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.FrequencyDomain;

/// <summary>Which block-DCT channels the frequency-domain transform outputs.</summary>
public enum FrequencyChannelSelection
{
    /// <summary>Every channel: components · B².</summary>
    All,

    /// <summary>
    /// The low-frequency upper-left square of each component: <see cref="FrequencyDomainEstimator.Options.LowFrequencySize"/>²
    /// of Y and half that side (rounded up) squared of Cb and Cr, as in the paper's 24-channel set (Y 4×4, Cb 2×2, Cr 2×2).
    /// </summary>
    LowFrequency,

    /// <summary>
    /// The <see cref="FrequencyDomainEstimator.Options.ChannelCount"/> channels the learned gate switched on most often
    /// while trained jointly with a small network on the training data (the paper's static selection from its heat map).
    /// </summary>
    Gate,
}

/// <summary>
/// Fits the frequency-domain transform of "Learning in the Frequency Domain" (Xu et al., CVPR 2020): block DCT of
/// YCbCr images, per-channel normalisation with statistics of the training data, and optionally a channel selection
/// (the low-frequency square, or the channels a learned gate keeps most often). Create it with
/// <c>mlContext.Transforms.ConvertToFrequencyDomain(...)</c> and <c>Append</c> a trainer to it. It reads the pixel
/// vectors ML.NET's <c>LoadImages</c> → <c>ResizeImages</c> → <c>ExtractPixels</c> produce (planar or interleaved),
/// as well as any known-size vector of <see cref="float"/> whose dimensions (or <see cref="Options.ImageShape"/>) give
/// the image shape.
/// </summary>
public sealed class FrequencyDomainEstimator : IEstimator<FrequencyDomainTransformer>
{
    /// <summary>
    /// Options of the frequency-domain transform ("Learning in the Frequency Domain", Xu et al., CVPR 2020); every field
    /// has a documented default.
    /// </summary>
    public sealed class Options
    {
        /// <summary>The column of images: a known-size vector of <see cref="float"/>. Default "Features".</summary>
        public string InputColumnName = FrequencyDomainTransformer.DefaultColumnName;

        /// <summary>
        /// The column the transform writes, a known-size vector of <see cref="float"/> with dimensions
        /// <c>[paddedHeight/B, paddedWidth/B, channels]</c>; when it equals <see cref="InputColumnName"/> it replaces the
        /// images (hides them), as ML.NET's transforms do. Default "Features".
        /// </summary>
        public string OutputColumnName = FrequencyDomainTransformer.DefaultColumnName;

        /// <summary>For <see cref="FrequencyChannelSelection.Gate"/>: the label column, a key (e.g. from <c>MapValueToKey</c>). Default "Label".</summary>
        public string LabelColumnName = "Label";

        /// <summary>
        /// The image shape <c>[height, width, channels]</c> (channels 1 for grayscale, 3 for RGB). Default null: from the
        /// input vector's dimensions (<c>[height, width, channels]</c>, <c>[channels, height, width]</c> as
        /// <c>ExtractPixels</c> gives by default, or <c>[height, width]</c> for grayscale).
        /// </summary>
        public int[]? ImageShape;

        /// <summary>
        /// Whether the input vectors hold the pixels interleaved, <c>[height, width, channels]</c> (true, as
        /// <c>ExtractPixels(interleavePixelColors: true)</c> and the package's Fashion-MNIST give them), or planar,
        /// <c>[channels, height, width]</c> (false, <c>ExtractPixels</c>' default). Default null: from the vector's
        /// dimensions (planar when they are <c>[1 or 3, height, width]</c> and the last is not 1 or 3; interleaved otherwise).
        /// </summary>
        public bool? InterleavedPixelColors;

        /// <summary>The DCT block side B: 8 (the paper's, JPEG's) or 4. Default 8.</summary>
        public int BlockSize = 8;

        /// <summary>
        /// The value of a white pixel in the data: 1 for pixels scaled to [0, 1] (what the package's loaders produce), 255
        /// for byte values (what <c>ExtractPixels</c> gives without <c>scaleImage</c>). Pixels are rescaled to [0, 255] before the JFIF colour conversion and the level shift. Default 1.
        /// </summary>
        public float PixelRange = 1f;

        /// <summary>Which channels the transform outputs. Default <see cref="FrequencyChannelSelection.All"/>.</summary>
        public FrequencyChannelSelection Selection = FrequencyChannelSelection.All;

        /// <summary>
        /// For <see cref="FrequencyChannelSelection.LowFrequency"/>: the side of Y's upper-left square, 1 … B; Cb and Cr
        /// keep half that side, rounded up. Default null: B/2 (Y 4×4 and Cb, Cr 2×2 for B = 8).
        /// </summary>
        public int? LowFrequencySize;

        /// <summary>
        /// For <see cref="FrequencyChannelSelection.Gate"/>: the number of channels kept, 1 … components·B².
        /// Default null: a quarter of the channels (16 of 64 for grayscale with B = 8).
        /// </summary>
        public int? ChannelCount;

        /// <summary>For the gate: λ, the weight of mean(gate) (the fraction of channels on) in the loss. Default 0.5.</summary>
        public float GatePenalty = 0.5f;

        /// <summary>For the gate: the Gumbel-softmax temperature τ. Default 1 (the paper's).</summary>
        public float GateTemperature = 1f;

        /// <summary>For the gate: the epochs of joint training of the gate and <see cref="GateLayers"/>. Default 3.</summary>
        public int GateEpochs = 3;

        /// <summary>
        /// For the gate: the hidden layers trained behind the gate (an output layer is added). Default: LeNet-300-100's
        /// hidden layers (<see cref="Layers.LeNet300100"/>).
        /// </summary>
        public IList<LayerDefinition> GateLayers = Layers.LeNet300100();

        /// <summary>For the gate: the optimiser of the joint training (cosine learning-rate decay, batch 64). Default: SGD, learning rate 0.05, momentum 0.9.</summary>
        public OptimizerOptions GateOptimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f };

        /// <summary>The seed of the gate's training (initialisation, shuffling, Gumbel noise); null draws one from the context. Default null.</summary>
        public int? Seed;

        /// <summary>
        /// The engine's thread count for fitting (the statistics, the gate's training) and for the transformer's
        /// <c>Transform</c>; null (default) uses every processor. Results do not depend on it.
        /// </summary>
        public int? NumberOfThreads;
    }

    private readonly Engine.SparsityHost _context;
    private readonly Options _options;

    internal FrequencyDomainEstimator(Microsoft.ML.Runtime.IHostEnvironment environment, Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _context = new Engine.SparsityHost(environment, nameof(FrequencyDomainEstimator), options.NumberOfThreads);
        _options = options;
        if (options.BlockSize is not (4 or 8))
            throw new ArgumentOutOfRangeException(nameof(Options.BlockSize), options.BlockSize, "BlockSize must be 4 or 8.");
        if (!(options.PixelRange > 0 && float.IsFinite(options.PixelRange)))
            throw new ArgumentOutOfRangeException(nameof(Options.PixelRange), options.PixelRange, "PixelRange must be a positive number (1 for [0, 1] pixels, 255 for bytes).");
        if (!Enum.IsDefined(options.Selection))
            throw new ArgumentOutOfRangeException(nameof(Options.Selection), options.Selection, "Unknown channel selection.");
        if (options.LowFrequencySize is int side && (side < 1 || side > options.BlockSize))
            throw new ArgumentOutOfRangeException(nameof(Options.LowFrequencySize), side, $"LowFrequencySize must be between 1 and the block size {options.BlockSize}.");
        if (options.ChannelCount is int k && k < 1)
            throw new ArgumentOutOfRangeException(nameof(Options.ChannelCount), k, "ChannelCount must be at least 1.");
        if (!(options.GatePenalty >= 0 && float.IsFinite(options.GatePenalty)))
            throw new ArgumentOutOfRangeException(nameof(Options.GatePenalty), options.GatePenalty, "GatePenalty must be a finite number ≥ 0.");
        if (!(options.GateTemperature > 0 && float.IsFinite(options.GateTemperature)))
            throw new ArgumentOutOfRangeException(nameof(Options.GateTemperature), options.GateTemperature, "GateTemperature must be positive.");
        if (options.GateEpochs < 1)
            throw new ArgumentOutOfRangeException(nameof(Options.GateEpochs), options.GateEpochs, "GateEpochs must be at least 1.");
        if (options.GateLayers is null) throw new ArgumentNullException(nameof(Options.GateLayers), "GateLayers must list the layers behind the gate (it may be empty).");
        if (options.GateOptimizer is null) throw new ArgumentNullException(nameof(Options.GateOptimizer), "GateOptimizer must be set.");
        if (string.IsNullOrEmpty(options.InputColumnName)) throw new ArgumentException("InputColumnName must name the column of images.", nameof(Options.InputColumnName));
        if (string.IsNullOrEmpty(options.OutputColumnName)) throw new ArgumentException("OutputColumnName must name the column to write.", nameof(Options.OutputColumnName));
        if (options.Selection == FrequencyChannelSelection.Gate && string.IsNullOrEmpty(options.LabelColumnName))
            throw new ArgumentException("LabelColumnName must name the label column: the gate is trained on labels.", nameof(Options.LabelColumnName));
        if (options.ImageShape is { } shape && (shape.Length != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] is not (1 or 3)))
            throw new ArgumentOutOfRangeException(nameof(Options.ImageShape), Engine.Shape.Format(shape), "ImageShape must be [height, width, 1 or 3].");
    }

    /// <summary>
    /// Reads the training images, computes their block-DCT channels, fits each channel's mean and standard deviation on
    /// them and, for <see cref="FrequencyChannelSelection.Gate"/>, trains the gate with a small network on the labels
    /// (<see cref="Options.LabelColumnName"/>; rows with a missing label are skipped) to pick the channels.
    /// </summary>
    /// <param name="input">Training images in <see cref="Options.InputColumnName"/>: <c>[height, width, 1]</c> (grayscale) or <c>[height, width, 3]</c> (RGB), interleaved or planar.</param>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type, or <see cref="Options.ChannelCount"/> exceeds the channel count.</exception>
    /// <exception cref="ArgumentException">The input column does not hold images with 1 or 3 channels.</exception>
    /// <exception cref="InvalidDataException">A pixel is NaN or infinite (the message names the row), or the data has no rows.</exception>
    public FrequencyDomainTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var column = DataViewReader.FeatureColumn(input.Schema, _options.InputColumnName);
        var layout = ImageColumnLayout.Of((VectorDataViewType)column.Type, column.Name, _options.ImageShape, _options.InterleavedPixelColors, nameof(input));
        var data = DataViewReader.Read(input, column.Name, _options.Selection == FrequencyChannelSelection.Gate ? _options.LabelColumnName : null);
        var images = data.Features;
        if (layout.Planar)
        {
            images = new float[images.Length];
            int length = data.FeatureLength;
            for (int i = 0; i < data.Count; i++)
                layout.ToInterleaved(data.Features.AsSpan(i * length, length), images.AsSpan(i * length, length));
        }
        return Fit(new Dataset(images, layout.Shape, data.Labels, data.ClassLabels, data.ClassCount, validate: false), layout.Planar);
    }

    /// <summary>
    /// The input schema with the output column (a known-size vector of <see cref="float"/>) added or replacing the
    /// column of that name, after checking the input column (and, for the gate, the label column).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return Models.SchemaShapes.AddVectorColumn(inputSchema, _options.InputColumnName, _options.OutputColumnName,
            _options.Selection == FrequencyChannelSelection.Gate ? _options.LabelColumnName : null);
    }

    /// <summary>Fits on interleaved images <c>[height, width, 1 or 3]</c>; the transformer reads its input column planar when <paramref name="planar"/>.</summary>
    private FrequencyDomainTransformer Fit(Dataset input, bool planar)
    {
        var shape = input.FeatureShapeArray;
        var dct = new ImageDct(shape, _options.BlockSize, _options.PixelRange);
        int all = dct.Channels;
        if (_options.Selection == FrequencyChannelSelection.Gate && _options.ChannelCount > all)
            throw new ArgumentOutOfRangeException(nameof(Options.ChannelCount), _options.ChannelCount,
                $"ChannelCount must be at most the number of channels, {all} ({dct.Components} component(s) × {dct.B}²).");
        var coefficients = FrequencyDomainTransformer.AllCoefficients(dct, input.Features, input.Count, _context.Pool);
        var (mean, std) = ChannelStatistics.Fit(coefficients, all);
        int[] channels = Enumerable.Range(0, all).ToArray();
        double[]? frequencies = null;
        switch (_options.Selection)
        {
            case FrequencyChannelSelection.LowFrequency:
                channels = ChannelSelection.LowFrequencySquare(dct.B, dct.Components, _options.LowFrequencySize ?? dct.B / 2);
                break;
            case FrequencyChannelSelection.Gate:
                ChannelStatistics.Normalize(coefficients, all, mean, std);
                frequencies = TrainGate(dct, new Dataset(coefficients, [dct.BlockRows, dct.BlockColumns, all], input.Labels, input.ClassLabels, input.ClassCount, validate: false));
                channels = ChannelSelection.MostFrequent(frequencies, _options.ChannelCount ?? (all + 3) / 4);
                break;
        }
        _context.WriteLog(
            $"Block DCT {dct.B}×{dct.B} on {Engine.Shape.Format(shape)} images (padded to {dct.PaddedHeight}×{dct.PaddedWidth}): keeping {channels.Length} of {all} channels, " +
            $"{channels.Length * dct.BlockRows * dct.BlockColumns} values per example.");
        return new FrequencyDomainTransformer(dct, channels, [.. channels.Select(c => mean[c])], [.. channels.Select(c => std[c])], frequencies, _context.Pool,
            _options.InputColumnName, _options.OutputColumnName, planar);
    }

    /// <summary>Trains the gate jointly with <see cref="Options.GateLayers"/>; returns how often each channel was on.</summary>
    private double[] TrainGate(ImageDct dct, Dataset normalized)
    {
        var trainer = new NeuralNetworkMulticlassTrainer(_context.Environment, new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [new ChannelGateDefinition(_options.GatePenalty, _options.GateTemperature), .. _options.GateLayers],
            Epochs = _options.GateEpochs,
            BatchSize = 64,
            Optimizer = _options.GateOptimizer,
            LearningRateSchedule = LearningRateSchedule.Cosine(),
            Seed = _options.Seed,
            NumberOfThreads = _context.Threads,
        });
        var model = trainer.FitExamples(normalized);
        var gate = (ChannelGateLayer)model.Network.Layers[0];
        var frequencies = gate.OnFrequencies();
        _context.WriteLog(
            $"Gate trained for {_options.GateEpochs} epochs (λ = {_options.GatePenalty}): on average {frequencies.Sum():F1} of {dct.Channels} channels on.");
        return frequencies;
    }
}

/// <summary>Per-channel mean and standard deviation over every example and block position, in a fixed order.</summary>
internal static class ChannelStatistics
{
    public static (float[] Mean, float[] Std) Fit(float[] coefficients, int channels)
    {
        var sum = new double[channels];
        var squares = new double[channels];
        long rows = coefficients.Length / channels;
        for (long r = 0; r < rows; r++)
        for (int c = 0; c < channels; c++)
        {
            double v = coefficients[r * channels + c];
            sum[c] += v;
            squares[c] += v * v;
        }
        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double m = sum[c] / rows, variance = Math.Max(0, squares[c] / rows - m * m);
            mean[c] = (float)m;
            // A constant channel is only centred.
            std[c] = variance > 1e-12 ? (float)Math.Sqrt(variance) : 1f;
        }
        return (mean, std);
    }

    public static void Normalize(float[] coefficients, int channels, float[] mean, float[] std)
    {
        var inverse = std.Select(s => 1f / s).ToArray();
        for (long r = 0; r < coefficients.Length / channels; r++)
        {
            var row = coefficients.AsSpan((int)(r * channels), channels);
            System.Numerics.Tensors.TensorPrimitives.Subtract(row, mean, row);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, inverse, row);
        }
    }
}

/// <summary>Static channel selections, as full channel indices in increasing order.</summary>
internal static class ChannelSelection
{
    /// <summary>Y's upper-left <paramref name="side"/>² coefficients, and ⌈side/2⌉² of Cb and of Cr.</summary>
    public static int[] LowFrequencySquare(int b, int components, int side)
    {
        var channels = new List<int>();
        for (int k = 0; k < components; k++)
        {
            int s = k == 0 ? side : (side + 1) / 2;
            for (int u = 0; u < s; u++)
            for (int v = 0; v < s; v++)
                channels.Add(k * b * b + u * b + v);
        }
        return [.. channels];
    }

    /// <summary>The <paramref name="count"/> channels with the highest frequencies (ties: the lower index first).</summary>
    public static int[] MostFrequent(IReadOnlyList<double> frequencies, int count) =>
        [.. Enumerable.Range(0, frequencies.Count).OrderByDescending(c => frequencies[c]).ThenBy(c => c).Take(count).Order()];
}
