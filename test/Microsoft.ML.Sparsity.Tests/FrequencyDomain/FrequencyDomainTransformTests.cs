using System.Xml.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.FrequencyDomain;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.FrequencyDomain;

/// <summary>The fitted transform: normalisation, selection, inverse, and the typed errors of bad input.</summary>
public sealed class FrequencyDomainTransformTests
{
    private readonly MLContext _context = new(seed: 1);

    [Fact]
    public void Fitted_channels_have_mean_0_and_standard_deviation_1_on_the_training_data()
    {
        var data = RandomImages(40, [12, 10, 3], seed: 1);
        var transform = _context.Transforms.ConvertToFrequencyDomain(blockSize: 4).Fit(data.View);
        Assert.Equal([3, 3, 48], transform.OutputShape);
        var view = transform.Transform(data.View);
        Assert.Equal([3, 3, 48], ((VectorDataViewType)view.Schema["Features"].Type).Dimensions.ToArray());
        var output = Read(view);
        Assert.Equal(data.GetLabels(), output.GetLabels());
        for (int c = 0; c < 48; c++)
        {
            var values = Enumerable.Range(0, data.Count).SelectMany(i => Enumerable.Range(0, 9).Select(p => (double)output.GetFeatures(i)[p * 48 + c])).ToArray();
            double mean = values.Average(), std = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
            Assert.Equal(0, mean, 1e-4);
            Assert.Equal(1, std, 1e-3);
        }
    }

    [Fact]
    public void Inverse_of_the_full_transform_returns_the_images()
    {
        var data = RandomImages(20, [13, 9, 1], seed: 2);
        var transform = _context.Transforms.ConvertToFrequencyDomain().Fit(data.View);
        var output = Read(transform.Transform(data.View));
        for (int i = 0; i < data.Count; i++)
        {
            var back = transform.Inverse(output.GetFeatures(i));
            Assert.Equal(data.FeatureLength, back.Length);
            for (int j = 0; j < data.FeatureLength; j++)
                Assert.True(Math.Abs(data.GetFeatures(i)[j] - back[j]) <= 1e-4, $"row {i}, value {j}");
        }
    }

    [Fact]
    public void The_low_frequency_square_is_the_papers_24_channel_set()
    {
        var rgb = _context.Transforms.ConvertToFrequencyDomain(new FrequencyDomainEstimator.Options { Selection = FrequencyChannelSelection.LowFrequency })
            .Fit(RandomImages(4, [8, 16, 3], seed: 3).View);
        Assert.Equal([0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27, 64, 65, 72, 73, 128, 129, 136, 137], rgb.SelectedChannels);
        Assert.Equal([1, 2, 24], rgb.OutputShape);
        Assert.Equal(8.0 * 16 * 3 / 48, rgb.InputReduction, 1e-12);

        var gray = _context.Transforms.ConvertToFrequencyDomain(new FrequencyDomainEstimator.Options
        {
            BlockSize = 4, Selection = FrequencyChannelSelection.LowFrequency, LowFrequencySize = 3,
        }).Fit(RandomImages(4, [8, 8, 1], seed: 4).View);
        Assert.Equal([0, 1, 2, 4, 5, 6, 8, 9, 10], gray.SelectedChannels);
        Assert.Null(gray.SelectionFrequencies);
    }

    [Fact]
    public void A_selection_outputs_the_selected_channels_of_the_full_transform()
    {
        var data = RandomImages(10, [8, 8, 3], seed: 5);
        var all = Read(_context.Transforms.ConvertToFrequencyDomain(blockSize: 4).Fit(data.View).Transform(data.View));
        var square = _context.Transforms.ConvertToFrequencyDomain(new FrequencyDomainEstimator.Options { BlockSize = 4, Selection = FrequencyChannelSelection.LowFrequency })
            .Fit(data.View);
        var selected = Read(square.Transform(data.View));
        int k = square.SelectedChannels.Count;
        for (int i = 0; i < data.Count; i++)
        for (int p = 0; p < 4; p++)
        for (int j = 0; j < k; j++)
            Assert.Equal(all.GetFeatures(i)[p * 48 + square.SelectedChannels[j]], selected.GetFeatures(i)[p * k + j], 1e-5);
    }

    [Fact]
    public void Top_k_takes_the_most_frequent_channels_and_breaks_ties_by_index()
    {
        Assert.Equal([1, 2, 4], ChannelSelection.MostFrequent([0.1, 0.9, 0.5, 0.5, 0.7, 0.2], 3));
        Assert.Equal([0, 3], ChannelSelection.MostFrequent([0.5, 0.2, 0.2, 0.5], 2));
    }

    [Fact]
    public void Bad_input_throws_typed_exceptions_naming_the_value()
    {
        var e1 = Assert.Throws<ArgumentOutOfRangeException>(() => _context.Transforms.ConvertToFrequencyDomain(blockSize: 5));
        Assert.Equal("BlockSize", e1.ParamName);
        Assert.Contains("4 or 8", e1.Message);
        Assert.Equal(5, e1.ActualValue);

        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => _context.Transforms.ConvertToFrequencyDomain(selection: FrequencyChannelSelection.Gate, channelCount: 0));
        Assert.Equal("ChannelCount", e2.ParamName);
        var tooMany = _context.Transforms.ConvertToFrequencyDomain(selection: FrequencyChannelSelection.Gate, channelCount: 65);
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => tooMany.Fit(RandomImages(4, [8, 8, 1], seed: 6).View));
        Assert.Equal("ChannelCount", e3.ParamName);
        Assert.Contains("at most the number of channels, 64", e3.Message);
        Assert.Equal(65, e3.ActualValue);
        Assert.Throws<ArgumentOutOfRangeException>(() => _context.Transforms.ConvertToFrequencyDomain(
            new FrequencyDomainEstimator.Options { Selection = FrequencyChannelSelection.LowFrequency, LowFrequencySize = 9 }));

        var flat = Assert.Throws<ArgumentException>(() => _context.Transforms.ConvertToFrequencyDomain().Fit(RandomImages(4, [64], seed: 7).View));
        Assert.Equal("input", flat.ParamName);
        Assert.Contains("[64]", flat.Message);
        Assert.Throws<ArgumentException>(() => _context.Transforms.ConvertToFrequencyDomain().Fit(RandomImages(4, [8, 8, 2], seed: 8).View));
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => _context.Transforms.ConvertToFrequencyDomain(
            new FrequencyDomainEstimator.Options { InputColumnName = "Pixels" }).Fit(RandomImages(4, [8, 8, 1], seed: 8).View));
        Assert.Contains("'Pixels'", missing.Message);

        var transform = _context.Transforms.ConvertToFrequencyDomain().Fit(RandomImages(4, [8, 8, 1], seed: 9).View);
        var size = Assert.Throws<ArgumentOutOfRangeException>(() => transform.Transform(RandomImages(2, [8, 9, 1], seed: 10).View));
        Assert.Equal("inputSchema", size.ParamName);
        Assert.Contains("[8, 8, 1]", size.Message);
        Assert.Contains("[8, 9, 1]", size.Message);
        var channels = Assert.Throws<ArgumentOutOfRangeException>(() => transform.Transform(RandomImages(2, [8, 8, 3], seed: 11).View));
        Assert.Contains("[8, 8, 3]", channels.Message);
        Assert.Throws<ArgumentException>(() => transform.Inverse(new float[63]));
        Assert.Equal("transform", Assert.Throws<ArgumentException>(() => Microsoft.ML.Sparsity.Plots.FrequencyPlots.SaveHeatMap(transform, Path.Combine(Path.GetTempPath(), "never-written.svg"))).ParamName);
        // ONNX export needs the network behind the transform.
        var onnx = Assert.Throws<NotSupportedException>(() => _context.Sparsity().ConvertToOnnx(transform, new MemoryStream()));
        Assert.Contains(nameof(FrequencyDomainTransformer), onnx.Message);
    }

    [Fact]
    public void Planar_pixels_give_the_same_channels_as_interleaved_ones_and_invert_to_planar_images()
    {
        // ExtractPixels' default layout is [channels, height, width]; the engine's is [height, width, channels].
        var data = RandomImages(12, [8, 12, 3], seed: 13);
        var planarFeatures = new float[data.Features.Length];
        var layout = new ImageColumnLayout([8, 12, 3], Planar: true);
        for (int i = 0; i < data.Count; i++)
            layout.FromInterleaved(data.GetFeatures(i), planarFeatures.AsSpan(i * 288, 288));
        var planar = new DatasetDataView(new Dataset(planarFeatures, [3, 8, 12], data.Labels, classCount: 3));

        var fromInterleaved = _context.Transforms.ConvertToFrequencyDomain(blockSize: 4).Fit(data.View);
        var fromPlanar = _context.Transforms.ConvertToFrequencyDomain(blockSize: 4).Fit(planar);
        Assert.True(fromInterleaved.InterleavedPixelColors);
        Assert.False(fromPlanar.InterleavedPixelColors);
        Assert.Equal([8, 12, 3], fromPlanar.InputShape);
        var expected = Read(fromInterleaved.Transform(data.View));
        var actual = Read(fromPlanar.Transform(planar));
        for (int i = 0; i < expected.Features.Length; i++) Assert.Equal(expected.Features[i], actual.Features[i], 1e-4f);
        var back = fromPlanar.Inverse(actual.GetFeatures(5));
        for (int j = 0; j < back.Length; j++) Assert.Equal(planarFeatures[5 * 288 + j], back[j], 1e-4f);
    }

    [Fact]
    public void The_output_column_has_the_block_grid_as_dimensions_and_the_prediction_engine_maps_rows_like_the_data_view()
    {
        var data = RandomImages(30, [10, 10, 1], seed: 14);
        var estimator = _context.Transforms.ConvertToFrequencyDomain(new FrequencyDomainEstimator.Options { BlockSize = 4, OutputColumnName = "Dct" });
        var shape = estimator.GetOutputSchema(new SchemaShape([
            global::Microsoft.ML.Sparsity.Engine.MLNetInternals.Column("Features", SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, []),
            global::Microsoft.ML.Sparsity.Engine.MLNetInternals.Column("Label", SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, [])]));
        var dct = shape.Single(c => c.Name == "Dct");
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, dct.Kind);
        Assert.Equal(NumberDataViewType.Single, dct.ItemType);
        Assert.Contains(shape, c => c.Name == "Features");

        var transform = estimator.Fit(data.View);
        var view = transform.Transform(data.View);
        Assert.Equal([3, 3, 16], ((VectorDataViewType)view.Schema["Dct"].Type).Dimensions.ToArray());
        Assert.Equal([10, 10, 1], ((VectorDataViewType)view.Schema["Features"].Type).Dimensions.ToArray());   // kept: another name
        var rows = _context.Data.CreateEnumerable<Row>(view, reuseRowObject: false).ToArray();
        Assert.Equal(30, rows.Length);
        Assert.True(transform.IsRowToRowMapper);
        var engine = _context.Model.CreatePredictionEngine<Row, Row>(transform, inputSchema: data.View.Schema);
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.Equal(data.GetFeatures(i).ToArray(), rows[i].Features);
            var one = engine.Predict(new Row { Features = data.GetFeatures(i).ToArray(), Label = rows[i].Label });
            Assert.Equal(rows[i].Dct, one.Dct);
        }
    }

    private sealed class Row
    {
        [VectorType(10, 10, 1)] public float[] Features { get; set; } = [];
        [KeyType(3)] public uint Label { get; set; }
        [VectorType(3, 3, 16)] public float[] Dct { get; set; } = [];
    }

    /// <summary>Images with labels, and the same as an <see cref="IDataView"/> ("Features" with the shape as dimensions, "Label" a key).</summary>
    internal sealed class Images(Dataset data)
    {
        public IDataView View { get; } = new DatasetDataView(data);
        public int Count => data.Count;
        public int FeatureLength => data.FeatureLength;
        public float[] Features => data.Features;
        public float[] Labels => data.Labels;
        public ReadOnlySpan<float> GetFeatures(int i) => data.GetFeatures(i);
        public float[] GetLabels() => data.GetLabels();
    }

    internal static Images RandomImages(int count, int[] shape, int seed, int classes = 3)
    {
        var random = new Random(seed);
        int length = shape.Aggregate(1, (a, d) => a * d);
        var features = Enumerable.Range(0, count * length).Select(_ => (float)random.NextDouble()).ToArray();
        var labels = Enumerable.Range(0, count).Select(i => (float)(i % classes)).ToArray();
        return new Images(new Dataset(features, shape, labels, classCount: classes));
    }

    /// <summary>The "Features" column and the labels of a transformed view, as a <see cref="Dataset"/>.</summary>
    internal static Dataset Read(IDataView view, string column = "Features") => DataViewReader.Read(view, column, "Label");
}
