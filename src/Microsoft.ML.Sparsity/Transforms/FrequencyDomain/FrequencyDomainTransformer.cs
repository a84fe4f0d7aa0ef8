using Microsoft.ML.Data;
using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Transforms;

/// <summary>
/// A fitted frequency-domain transform ("Learning in the Frequency Domain", Xu et al., CVPR 2020): maps images
/// <c>[height, width, 1 or 3]</c> to their block-DCT channels <c>[paddedHeight/B, paddedWidth/B, selected channels]</c>,
/// each channel normalised by the mean and standard deviation fitted on the training data. Create it with
/// <see cref="FrequencyDomainEstimator.Fit(IDataView)"/> (<c>context.Transforms.ConvertToFrequencyDomain(...)</c>).
/// </summary>
/// <remarks>
/// Channel numbering: full channel <c>k·B² + u·B + v</c> is DCT coefficient (u, v) (u vertical, v horizontal frequency)
/// of component k (Y, then Cb, then Cr; grayscale has Y only). The output holds the <see cref="SelectedChannels"/> in
/// increasing order. The transform is saved with the model (<c>context.Model.Save</c>) and exported to ONNX in front of
/// the network (<c>context.Model.ConvertToOnnx</c>) as a stride-B convolution with the fixed DCT basis as kernels.
/// </remarks>
public sealed class FrequencyDomainTransformer : ITransformer
{
    private const int ExamplesPerTask = 64;
    private readonly ImageDct _dct;
    private readonly int[] _channels, _inputShape, _outputShape;
    private readonly float[] _mean, _std, _invStd;
    private readonly double[]? _frequencies;
    private readonly WorkerPool _pool;

    internal FrequencyDomainTransformer(ImageDct dct, int[] channels, float[] mean, float[] std, double[]? frequencies, WorkerPool pool)
    {
        _dct = dct;
        _channels = channels;
        (_mean, _std) = (mean, std);
        _invStd = std.Select(s => 1f / s).ToArray();
        _frequencies = frequencies;
        _pool = pool;
        _inputShape = [dct.Height, dct.Width, dct.Components];
        _outputShape = [dct.BlockRows, dct.BlockColumns, channels.Length];
    }

    /// <summary>The DCT block side B (4 or 8).</summary>
    public int BlockSize => _dct.B;

    /// <summary>The image shape the transform was fitted on, <c>[height, width, channels]</c>.</summary>
    public IReadOnlyList<int> InputShape => _inputShape;

    /// <summary>The shape of the transformed features, <c>[paddedHeight/B, paddedWidth/B, SelectedChannels.Count]</c>.</summary>
    public IReadOnlyList<int> OutputShape => _outputShape;

    /// <summary>The number of channels before selection: components · B².</summary>
    public int ChannelCount => _dct.Channels;

    /// <summary>The full channel indices (<c>k·B² + u·B + v</c>) the transform outputs, in increasing order.</summary>
    public IReadOnlyList<int> SelectedChannels => _channels;

    /// <summary>The per-channel means subtracted, one per selected channel.</summary>
    public IReadOnlyList<float> Means => _mean;

    /// <summary>The per-channel standard deviations divided by, one per selected channel.</summary>
    public IReadOnlyList<float> StandardDeviations => _std;

    /// <summary>
    /// When the channels were selected by the learned gate: for every full channel, the fraction of training examples
    /// for which the gate switched it on; otherwise null.
    /// </summary>
    public IReadOnlyList<double>? SelectionFrequencies => _frequencies;

    /// <summary>Input values per example divided by output values per example (e.g. 784 / 256 = 3.06).</summary>
    public double InputReduction => (double)_dct.ImageLength / (_outputShape[0] * _outputShape[1] * _outputShape[2]);

    internal ImageDct Dct => _dct;
    internal int[] Channels => _channels;
    internal float[] Mean => _mean;
    internal float[] Std => _std;
    internal double[]? Frequencies => _frequencies;
    internal int OutputLength => _outputShape[0] * _outputShape[1] * _outputShape[2];

    /// <summary>Transforms every image of <paramref name="input"/>; labels and class names are kept.</summary>
    /// <exception cref="ArgumentException">The images' shape is not <see cref="InputShape"/>.</exception>
    public IDataView Transform(IDataView input) => throw new NotSupportedException("TODO(ML.NET move)");

    /// <summary>TODO(ML.NET move).</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => throw new NotSupportedException("TODO(ML.NET move)");

    /// <summary>TODO(ML.NET move).</summary>
    public bool IsRowToRowMapper => false;

    /// <summary>TODO(ML.NET move).</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException("TODO(ML.NET move)");

    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException("TODO(ML.NET move)");

    internal Dataset Transform(Dataset input)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckShape(input.FeatureShapeArray, _inputShape, "images", nameof(input));
        int inLength = _dct.ImageLength, outLength = OutputLength, positions = _dct.BlockRows * _dct.BlockColumns, all = _dct.Channels;
        var features = input.Features;
        var output = new float[(long)input.Count * outLength];
        bool identity = _channels.Length == all;
        ForEachChunk(input.Count, (start, count) =>
        {
            var scratch = _dct.CreateScratch();
            var full = identity ? [] : new float[_dct.CoefficientLength];
            for (int i = start; i < start + count; i++)
            {
                var destination = output.AsSpan(i * outLength, outLength);
                var image = features.AsSpan(i * inLength, inLength);
                if (identity)
                {
                    _dct.Forward(image, destination, scratch);
                    for (int p = 0; p < positions; p++)
                    {
                        var row = destination.Slice(p * all, all);
                        TensorPrimitives.Subtract(row, _mean, row);
                        TensorPrimitives.Multiply(row, _invStd, row);
                    }
                    continue;
                }
                _dct.Forward(image, full, scratch);
                for (int p = 0; p < positions; p++)
                for (int j = 0; j < _channels.Length; j++)
                    destination[p * _channels.Length + j] = (full[p * all + _channels[j]] - _mean[j]) * _invStd[j];
            }
        });
        return new Dataset(output, _outputShape, input.Labels, input.ClassLabels, input.ClassCount, validate: false);
    }

    /// <summary>
    /// The inverse transform: images of <see cref="InputShape"/> from transformed features (normalisation undone, the
    /// block DCT inverted, the colour conversion undone, the padding cropped). Channels the transform does not keep are
    /// taken as 0, so with a selection the result is the image those channels describe (a low-pass version for the
    /// low-frequency square); with every channel kept it returns the original images up to rounding.
    /// </summary>
    /// <exception cref="ArgumentException">The features' shape is not <see cref="OutputShape"/>.</exception>
    internal Dataset Inverse(Dataset transformed)
    {
        ArgumentNullException.ThrowIfNull(transformed);
        CheckShape(transformed.FeatureShapeArray, _outputShape, "transformed features", nameof(transformed));
        int inLength = OutputLength, outLength = _dct.ImageLength, positions = _dct.BlockRows * _dct.BlockColumns, all = _dct.Channels;
        var features = transformed.Features;
        var output = new float[(long)transformed.Count * outLength];
        ForEachChunk(transformed.Count, (start, count) =>
        {
            var scratch = _dct.CreateScratch();
            var full = new float[_dct.CoefficientLength];
            for (int i = start; i < start + count; i++)
            {
                var source = features.AsSpan(i * inLength, inLength);
                for (int p = 0; p < positions; p++)
                for (int j = 0; j < _channels.Length; j++)
                    full[p * all + _channels[j]] = source[p * _channels.Length + j] * _std[j] + _mean[j];
                _dct.Inverse(full, output.AsSpan(i * outLength, outLength), scratch);
            }
        });
        return new Dataset(output, _inputShape, transformed.Labels, transformed.ClassLabels, transformed.ClassCount, validate: false);
    }

    /// <summary>
    /// Writes the heat map of <see cref="SelectionFrequencies"/> as an SVG file (atomically): one B×B grid per component,
    /// cell (u, v) shaded by how often the gate kept that channel, selected channels outlined.
    /// </summary>
    /// <exception cref="InvalidOperationException">The channels were not selected by the gate (no frequencies).</exception>
    public void SaveHeatMap(string filePath)
    {
        if (_frequencies is null)
            throw new InvalidOperationException("This transform's channels were not selected by the gate, so it has no selection frequencies to draw.");
        string svg = FrequencyHeatMap.ToSvg(_frequencies, _channels, _dct.B, _dct.Components);
        Serialization.AtomicFile.Write(filePath, stream =>
        {
            using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
            writer.Write(svg);
        });
    }

    /// <summary>All channels of every image, unnormalised: [count, CoefficientLength].</summary>
    internal static float[] AllCoefficients(ImageDct dct, float[] images, int count, WorkerPool pool)
    {
        int inLength = dct.ImageLength, outLength = dct.CoefficientLength;
        var output = new float[(long)count * outLength];
        ForEachChunk(pool, count, (start, n) =>
        {
            var scratch = dct.CreateScratch();
            for (int i = start; i < start + n; i++)
                dct.Forward(images.AsSpan(i * inLength, inLength), output.AsSpan(i * outLength, outLength), scratch);
        });
        return output;
    }

    private void ForEachChunk(int count, Action<int, int> body) => ForEachChunk(_pool, count, body);

    /// <summary>Runs <paramref name="body"/>(start, count) over chunks of examples in parallel (each example is independent).</summary>
    private static void ForEachChunk(WorkerPool pool, int count, Action<int, int> body)
    {
        int chunks = (count + ExamplesPerTask - 1) / ExamplesPerTask;
        pool.For(chunks, c => body(c * ExamplesPerTask, Math.Min(ExamplesPerTask, count - c * ExamplesPerTask)));
    }

    private static void CheckShape(int[] actual, int[] expected, string what, string argument)
    {
        if (!actual.SequenceEqual(expected))
            throw new ArgumentException(
                $"The frequency-domain transform was fitted on {what} of shape {Shape.Format(expected)}; the data has shape {Shape.Format(actual)}.", argument);
    }
}
