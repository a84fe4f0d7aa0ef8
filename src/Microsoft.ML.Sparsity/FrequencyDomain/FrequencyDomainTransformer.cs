using Microsoft.ML.Data;
using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.FrequencyDomain;

/// <summary>
/// A fitted frequency-domain transform ("Learning in the Frequency Domain", Xu et al., CVPR 2020): maps the images of
/// the input column (<c>[height, width, 1 or 3]</c>, interleaved or planar as ML.NET's <c>ExtractPixels</c> gives them)
/// to their block-DCT channels, a known-size vector with dimensions <c>[paddedHeight/B, paddedWidth/B, selected channels]</c>
/// (so a convolution layer behind it sees the block grid), each channel normalised by the mean and standard deviation
/// fitted on the training data. Create it with <see cref="FrequencyDomainEstimator.Fit(IDataView)"/>
/// (<c>mlContext.Transforms.ConvertToFrequencyDomain(...)</c>).
/// </summary>
/// <remarks>
/// Channel numbering: full channel <c>k·B² + u·B + v</c> is DCT coefficient (u, v) (u vertical, v horizontal frequency)
/// of component k (Y, then Cb, then Cr; grayscale has Y only). The output holds the <see cref="SelectedChannels"/> in
/// increasing order. <see cref="Transform"/> is lazy: cursors compute blocks of rows at once on the engine's threads;
/// ML.NET's prediction engine maps one row at a time. The transform is exported to ONNX in front of the network
/// (<c>mlContext.Sparsity().ConvertToOnnx</c>) as a stride-B convolution with the fixed DCT basis as kernels.
/// </remarks>
public sealed class FrequencyDomainTransformer : ITransformer
{
    private const int ExamplesPerTask = 64;
    private readonly ImageDct _dct;
    private readonly ImageColumnLayout _layout;
    private readonly int[] _channels, _inputShape, _outputShape;
    private readonly float[] _mean, _std, _invStd;
    private readonly double[]? _frequencies;
    private readonly WorkerPool _pool;

    internal FrequencyDomainTransformer(ImageDct dct, int[] channels, float[] mean, float[] std, double[]? frequencies, WorkerPool pool,
        string inputColumnName = DefaultColumnName, string outputColumnName = DefaultColumnName, bool planar = false)
    {
        _dct = dct;
        _channels = channels;
        (_mean, _std) = (mean, std);
        _invStd = std.Select(s => 1f / s).ToArray();
        _frequencies = frequencies;
        _pool = pool;
        _inputShape = [dct.Height, dct.Width, dct.Components];
        _outputShape = [dct.BlockRows, dct.BlockColumns, channels.Length];
        _layout = new ImageColumnLayout(_inputShape, planar);
        (InputColumnName, OutputColumnName) = (inputColumnName, outputColumnName);
    }

    internal const string DefaultColumnName = "Features";

    /// <summary>The column of images the transform reads.</summary>
    public string InputColumnName { get; }

    /// <summary>The column the transform writes (it hides an input column of the same name).</summary>
    public string OutputColumnName { get; }

    /// <summary>
    /// Whether the input vectors are interleaved, <c>[height, width, channels]</c> (true), or planar,
    /// <c>[channels, height, width]</c> (false, ML.NET's <c>ExtractPixels</c> default).
    /// </summary>
    public bool InterleavedPixelColors => !_layout.Planar;

    /// <summary>The DCT block side B (4 or 8).</summary>
    public int BlockSize => _dct.B;

    /// <summary>The image shape the transform was fitted on, <c>[height, width, channels]</c> (whatever the input vector's layout).</summary>
    public IReadOnlyList<int> InputShape => _inputShape;

    /// <summary>The shape of the transformed features, <c>[paddedHeight/B, paddedWidth/B, SelectedChannels.Count]</c>: the output vector's dimensions.</summary>
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
    internal bool Planar => _layout.Planar;
    internal int[] Channels => _channels;
    internal float[] Mean => _mean;
    internal float[] Std => _std;
    internal double[]? Frequencies => _frequencies;
    internal int OutputLength => _outputShape[0] * _outputShape[1] * _outputShape[2];

    /// <summary>
    /// Adds the output column (the normalised block-DCT channels) to <paramref name="input"/>, lazily as ML.NET's
    /// transformers do; the other columns pass through.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing, not a vector of Single, or not of <see cref="InputShape"/>.</exception>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new BlockMappedDataView(new Mapping(this), input, GetOutputSchema(input.Schema));
    }

    /// <summary>The input columns with the output column added (hiding an input column of the same name).</summary>
    /// <exception cref="ArgumentOutOfRangeException">See <see cref="Transform"/>.</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInput(inputSchema);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, _outputShape));
        return builder.ToSchema();
    }

    /// <summary>True: ML.NET's prediction engine maps one row at a time through <see cref="GetRowToRowMapper"/>.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>A mapper that transforms one row at a time (what ML.NET's <c>PredictionEngine</c> uses).</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new BlockRowMapper(new Mapping(this), inputSchema, GetOutputSchema(inputSchema));
    }

    /// <summary>
    /// Saves the portable form (ONNX, for ML.NET's OnnxTransformer, then <c>CopyColumns</c> to the output column) with
    /// this transform's own file riding along: <c>mlContext.Model.Load</c> gives the portable chain,
    /// <c>mlContext.Sparsity().LoadModel</c> this transformer.
    /// </summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => Serialization.PortableFrequencyDomain.Save(this, ctx);

    /// <summary>The input column of <paramref name="schema"/>, checked to hold images of <see cref="InputShape"/> in the fitted layout.</summary>
    internal DataViewSchema.Column CheckInput(DataViewSchema schema, string argument = "inputSchema")
    {
        var column = schema.GetColumnOrNull(InputColumnName) ?? throw new ArgumentOutOfRangeException(
            argument, InputColumnName, $"The frequency-domain transform's input column '{InputColumnName}' was not found in the data.");
        var expected = _layout.ColumnDimensions;
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType n, IsKnownSize: true } type || n != NumberDataViewType.Single
            || type.Size != _dct.ImageLength || (type.Dimensions.Length > 1 && !type.Dimensions.SequenceEqual(expected)))
            throw new ArgumentOutOfRangeException(argument, InputColumnName,
                $"The frequency-domain transform was fitted on images of shape {Shape.Format(_inputShape)} (column '{InputColumnName}' a vector of Single " +
                $"with dimensions {Shape.Format(expected)}); the column is {column.Type}" +
                $"{(column.Type is VectorDataViewType v ? $" with dimensions {Shape.Format([.. v.Dimensions])}" : "")}.");
        return column;
    }

    /// <summary>Transforms one image (in the input column's layout) into <paramref name="destination"/> (<see cref="OutputLength"/> values).</summary>
    private void TransformRow(ReadOnlySpan<float> image, Span<float> destination, RowScratch scratch)
    {
        if (_layout.Planar)
        {
            _layout.ToInterleaved(image, scratch.Image);
            image = scratch.Image;
        }
        int positions = _dct.BlockRows * _dct.BlockColumns, all = _dct.Channels;
        if (_channels.Length == all)
        {
            _dct.Forward(image, destination, scratch.Dct);
            for (int p = 0; p < positions; p++)
            {
                var row = destination.Slice(p * all, all);
                TensorPrimitives.Subtract(row, _mean, row);
                TensorPrimitives.Multiply(row, _invStd, row);
            }
            return;
        }
        var full = scratch.Full;
        _dct.Forward(image, full, scratch.Dct);
        for (int p = 0; p < positions; p++)
        for (int j = 0; j < _channels.Length; j++)
            destination[p * _channels.Length + j] = (full[p * all + _channels[j]] - _mean[j]) * _invStd[j];
    }

    /// <summary>Transforms <paramref name="count"/> images of <paramref name="images"/> into <paramref name="output"/>, chunks of rows in parallel.</summary>
    private void TransformRows(float[] images, int count, float[] output)
    {
        int inLength = _dct.ImageLength, outLength = OutputLength;
        ForEachChunk(_pool, count, (start, n) =>
        {
            var scratch = new RowScratch(this);
            for (int i = start; i < start + n; i++)
                TransformRow(images.AsSpan(i * inLength, inLength), output.AsSpan(i * outLength, outLength), scratch);
        });
    }

    /// <summary>
    /// The inverse transform of one example: the image (in the input column's layout, <see cref="InputShape"/>'s values)
    /// that transformed features describe: normalisation undone, the block DCT inverted, the colour conversion undone,
    /// the padding cropped. Channels the transform does not keep are taken as 0, so with a selection the result is the
    /// image those channels describe (a low-pass version for the low-frequency square); with every channel kept it
    /// returns the original image up to rounding.
    /// </summary>
    /// <param name="features">One row of the output column: <see cref="OutputShape"/>'s values.</param>
    /// <exception cref="ArgumentException"><paramref name="features"/> does not have <see cref="OutputShape"/>'s number of values.</exception>
    public float[] Inverse(ReadOnlySpan<float> features)
    {
        if (features.Length != OutputLength)
            throw new ArgumentException(
                $"The frequency-domain transform outputs {OutputLength} values per example (shape {Shape.Format(_outputShape)}); {features.Length} were given.", nameof(features));
        int positions = _dct.BlockRows * _dct.BlockColumns, all = _dct.Channels;
        var full = new float[_dct.CoefficientLength];
        for (int p = 0; p < positions; p++)
        for (int j = 0; j < _channels.Length; j++)
            full[p * all + _channels[j]] = features[p * _channels.Length + j] * _std[j] + _mean[j];
        var image = new float[_dct.ImageLength];
        _dct.Inverse(full, image, _dct.CreateScratch());
        if (!_layout.Planar) return image;
        var planar = new float[image.Length];
        _layout.FromInterleaved(image, planar);
        return planar;
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

    /// <summary>Runs <paramref name="body"/>(start, count) over chunks of examples in parallel (each example is independent).</summary>
    private static void ForEachChunk(WorkerPool pool, int count, Action<int, int> body)
    {
        int chunks = (count + ExamplesPerTask - 1) / ExamplesPerTask;
        pool.For(chunks, c => body(c * ExamplesPerTask, Math.Min(ExamplesPerTask, count - c * ExamplesPerTask)), typeof(FrequencyDomainTransformer));
    }

    /// <summary>One thread's buffers for <see cref="TransformRow"/>.</summary>
    private sealed class RowScratch(FrequencyDomainTransformer transform)
    {
        public readonly float[] Dct = transform._dct.CreateScratch();
        public readonly float[] Full = transform._channels.Length == transform._dct.Channels ? [] : new float[transform._dct.CoefficientLength];
        public readonly float[] Image = transform._layout.Planar ? new float[transform._dct.ImageLength] : [];
    }

    /// <summary>The transform as a block mapping: adds the output column, a block of rows at once on the engine's threads.</summary>
    private sealed class Mapping(FrequencyDomainTransformer transform) : IBlockMapping
    {
        /// <summary>Rows transformed at once: whole chunks for every engine thread, within about 4 MB of output for a 32×32 image.</summary>
        public int BlockRows => 1024;

        public int InputLength => transform._dct.ImageLength;

        public DataViewSchema.Column InputColumn(DataViewSchema schema) => transform.CheckInput(schema);

        public MappedBlock CreateBlock(int rows) => new Block(transform, rows);

        private sealed class Block(FrequencyDomainTransformer transform, int rows) : MappedBlock
        {
            private readonly int _length = transform.OutputLength;
            private readonly float[] _output = new float[rows * transform.OutputLength];
            private RowScratch? _scratch;

            public override void Map(float[] inputs, int count) => transform.TransformRows(inputs, count, _output);

            public override void MapRow(float[] input) => transform.TransformRow(input, _output, _scratch ??= new RowScratch(transform));

            public override ValueGetter<TValue>? GetGetter<TValue>(int output)
            {
                if (output != 0 || typeof(TValue) != typeof(VBuffer<float>)) return null;
                ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, _length);
                    _output.AsSpan(Row * _length, _length).CopyTo(editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)features;
            }
        }
    }
}
