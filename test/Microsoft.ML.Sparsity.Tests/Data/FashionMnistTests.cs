using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Data;

/// <summary>A fact that runs only when the Debian package dataset-fashion-mnist is installed (CI installs it).</summary>
public sealed class DebianFashionMnistFactAttribute : FactAttribute
{
    public DebianFashionMnistFactAttribute()
    {
        if (!Directory.Exists(FashionMnistLoader.DebianDirectory))
            Skip = $"{FashionMnistLoader.DebianDirectory} is absent: apt-get install dataset-fashion-mnist to run this test.";
    }
}

public sealed class FashionMnistTests
{
    private static readonly string[] ExpectedClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    [Theory]
    [InlineData(FashionMnistSplit.Train, "train", false)]
    [InlineData(FashionMnistSplit.Test, "t10k", true)]
    public void Loads_from_an_explicit_directory(FashionMnistSplit split, string prefix, bool gzip)
    {
        using var dir = new TempFolder();
        Idx.WriteFashionPair(dir.Path, prefix, count: 30, gzip);
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => log.Add(e.Message);

        IDataView data = ml.Data.LoadFashionMnist(split, dir.Path);

        AssertSchema(data);
        Assert.Equal(30, data.GetRowCount());
        var (features, labels) = ReadRows(data);
        Assert.Equal(30, labels.Length);
        for (int i = 0; i < 30; i++)
        {
            Assert.Equal((uint)(i % 10 + 1), labels[i]);
            float expected = (i * 10 % 256) / 255f;
            Assert.Equal(784, features[i].Length);
            Assert.All(features[i], v => Assert.Equal(expected, v));
        }
        Assert.Contains(log, m => m.Contains(dir.Path));
    }

    [Fact]
    public void Pixel_255_scales_to_exactly_one()
    {
        using var dir = new TempFolder();
        Idx.Write(dir.File("train-images-idx3-ubyte"), [1, 28, 28], Enumerable.Repeat((byte)255, 784).ToArray());
        Idx.Write(dir.File("train-labels-idx1-ubyte"), [1], [9]);
        var ml = new MLContext(seed: 1);
        var (features, labels) = ReadRows(ml.Data.LoadFashionMnist(FashionMnistSplit.Train, dir.Path));
        Assert.All(features[0], v => Assert.Equal(1f, v));
        Assert.Equal(10u, labels[0]); // class 9, "Ankle boot": key 10
    }

    [Fact]
    public void Explicit_empty_directory_gives_a_helpful_message()
    {
        using var dir = new TempFolder();
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<FileNotFoundException>(() => ml.Data.LoadFashionMnist(FashionMnistSplit.Train, dir.Path));
        Assert.Contains(dir.Path, e.Message);
        Assert.Contains("train-images-idx3-ubyte", e.Message);
        Assert.Contains("train-labels-idx1-ubyte", e.Message);
        Assert.Contains("apt-get install dataset-fashion-mnist", e.Message);
        Assert.Contains("FASHION_MNIST_DIR", e.Message);
    }

    [Fact]
    public void Explicit_directory_that_does_not_exist_is_reported()
    {
        using var dir = new TempFolder();
        string missing = dir.File("not-here");
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<FileNotFoundException>(() => ml.Data.LoadFashionMnist(FashionMnistSplit.Test, missing));
        Assert.Contains(missing, e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void A_file_given_as_the_directory_is_named_as_such()
    {
        using var dir = new TempFolder();
        string file = dir.WriteText("train-images-idx3-ubyte", "not a folder");
        var e = Assert.Throws<FileNotFoundException>(() => new MLContext(seed: 1).Data.LoadFashionMnist(FashionMnistSplit.Train, file));
        Assert.Contains($"'{file}'", e.Message);
        Assert.Contains("it is a file, not a directory", e.Message);
    }

    [Fact]
    public void Inconsistent_image_and_label_counts_name_both_files()
    {
        using var dir = new TempFolder();
        Idx.Write(dir.File("t10k-images-idx3-ubyte"), [3, 28, 28], new byte[3 * 784]);
        Idx.Write(dir.File("t10k-labels-idx1-ubyte"), [2], [0, 1]);
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<InvalidDataException>(() => ml.Data.LoadFashionMnist(FashionMnistSplit.Test, dir.Path));
        Assert.Contains(dir.File("t10k-images-idx3-ubyte"), e.Message);
        Assert.Contains(dir.File("t10k-labels-idx1-ubyte"), e.Message);
        Assert.Contains("3 images", e.Message);
        Assert.Contains("2 labels", e.Message);
    }

    [Fact]
    public void Wrong_image_size_and_out_of_range_labels_are_rejected()
    {
        using var dir = new TempFolder();
        Idx.Write(dir.File("t10k-images-idx3-ubyte"), [1, 27, 28], new byte[27 * 28]);
        Idx.Write(dir.File("t10k-labels-idx1-ubyte"), [1], [0]);
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<InvalidDataException>(() => ml.Data.LoadFashionMnist(FashionMnistSplit.Test, dir.Path));
        Assert.Contains("[1, 27, 28]", e.Message);

        Idx.Write(dir.File("t10k-images-idx3-ubyte"), [2, 28, 28], new byte[2 * 784]);
        Idx.Write(dir.File("t10k-labels-idx1-ubyte"), [2], [3, 10]);
        e = Assert.Throws<InvalidDataException>(() => ml.Data.LoadFashionMnist(FashionMnistSplit.Test, dir.Path));
        Assert.Contains("label 1", e.Message);
        Assert.Contains("found 10", e.Message);
    }

    [Fact]
    public void Search_uses_the_first_location_holding_the_files()
    {
        using var empty = new TempFolder();
        using var full = new TempFolder();
        Idx.WriteFashionPair(full.Path, "t10k", count: 5, gzip: true);
        var loader = new FashionMnistLoader(_ => { })
        {
            SearchLocations = [(null, "an unset variable"), (empty.Path, "first"), (full.Path, "second")],
            Download = (_, _) => throw new InvalidOperationException("must not download"),
        };
        Assert.Equal(5, loader.Load(FashionMnistSplit.Test, null).Count);
    }

    [Fact]
    public void Failed_download_lists_every_place_searched_and_how_to_fix_it()
    {
        using var empty = new TempFolder();
        using var cache = new TempFolder();
        var loader = new FashionMnistLoader(_ => { })
        {
            SearchLocations = [(null, "the FASHION_MNIST_DIR environment variable"), (empty.Path, "the Debian folder"), (cache.Path, "the download cache")],
            DownloadDirectory = cache.Path,
            Download = (_, _) => throw new HttpRequestException("no route to host"),
        };

        var e = Assert.Throws<FileNotFoundException>(() => loader.Load(FashionMnistSplit.Train, null));

        Assert.Contains("FASHION_MNIST_DIR environment variable: not set", e.Message);
        Assert.Contains(empty.Path, e.Message);
        Assert.Contains(cache.Path, e.Message);
        Assert.Contains(FashionMnistLoader.DownloadBase.ToString(), e.Message);
        Assert.Contains("no route to host", e.Message);
        Assert.Contains("apt-get install dataset-fashion-mnist", e.Message);
        Assert.Contains("directory argument", e.Message);
        Assert.IsType<HttpRequestException>(e.InnerException);
        Assert.Empty(Directory.GetFiles(cache.Path));
    }

    [Fact]
    public void Download_is_verified_then_moved_into_the_cache()
    {
        using var empty = new TempFolder();
        using var source = new TempFolder();
        using var cache = new TempFolder();
        Idx.WriteFashionPair(source.Path, "t10k", count: 10_000, gzip: true);
        var requested = new List<Uri>();
        var loader = new FashionMnistLoader(_ => { })
        {
            SearchLocations = [(empty.Path, "an empty folder")],
            DownloadDirectory = cache.Path,
            Download = (uri, path) =>
            {
                requested.Add(uri);
                File.Copy(Path.Combine(source.Path, uri.Segments[^1]), path);
            },
        };

        // What a download killed midway leaves behind: removed by the next download.
        string stale = Path.Combine(cache.Path, $".t10k-images-idx3-ubyte.gz.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(stale, [0x1f, 0x8b]);

        var data = loader.Load(FashionMnistSplit.Test, null);

        Assert.False(File.Exists(stale));
        Assert.Equal(10_000, data.Count);
        Assert.Equal(
            ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz"],
            requested.Select(u => u.ToString()));
        Assert.Equal(
            ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"],
            Directory.GetFiles(cache.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Download_with_the_wrong_counts_leaves_the_cache_untouched()
    {
        using var empty = new TempFolder();
        using var source = new TempFolder();
        using var cache = new TempFolder();
        Idx.WriteFashionPair(source.Path, "t10k", count: 7, gzip: true);
        var loader = new FashionMnistLoader(_ => { })
        {
            SearchLocations = [(empty.Path, "an empty folder")],
            DownloadDirectory = cache.Path,
            Download = (uri, path) => File.Copy(Path.Combine(source.Path, uri.Segments[^1]), path),
        };

        var e = Assert.Throws<FileNotFoundException>(() => loader.Load(FashionMnistSplit.Test, null));

        Assert.Contains("expected 10000 images, found 7", e.Message);
        Assert.Empty(Directory.GetFiles(cache.Path));
    }

    [DebianFashionMnistFact]
    public void Loads_the_real_training_set_from_the_Debian_package()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFashionMnist(FashionMnistSplit.Train, FashionMnistLoader.DebianDirectory);

        AssertSchema(data);
        var (features, labels) = ReadRows(data);
        Assert.Equal(60_000, labels.Length);
        var perClass = labels.GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(Enumerable.Range(1, 10).Select(c => (uint)c), perClass.Keys.Order());
        Assert.All(perClass.Values, n => Assert.Equal(6000, n));
        AssertPixelRange(features);
    }

    [DebianFashionMnistFact]
    public void Loads_the_real_test_set_by_searching()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => log.Add(e.Message);
        // No directory: FASHION_MNIST_DIR (if a CI sets it) or the Debian folder is found before any download.
        IDataView data = ml.Data.LoadFashionMnist(FashionMnistSplit.Test);

        AssertSchema(data);
        var (features, labels) = ReadRows(data);
        Assert.Equal(10_000, labels.Length);
        Assert.All(labels, l => Assert.InRange(l, 1u, 10u));
        AssertPixelRange(features);
        // One message from the loader (ML.NET's log also carries its channels' own messages).
        Assert.Single(log, m => m.Contains("Fashion-MNIST", StringComparison.Ordinal));
    }

    /// <summary>Features: a vector of 784 floats with dimensions [28, 28, 1]; Label: a key of 10 values whose key values are the class names.</summary>
    private static void AssertSchema(IDataView data)
    {
        Assert.Equal(["Features", "Label"], data.Schema.Select(c => c.Name));
        var features = Assert.IsType<VectorDataViewType>(data.Schema["Features"].Type);
        Assert.Equal(NumberDataViewType.Single, features.ItemType);
        Assert.Equal(784, features.Size);
        Assert.Equal([28, 28, 1], features.Dimensions.ToArray());
        var label = Assert.IsType<KeyDataViewType>(data.Schema["Label"].Type);
        Assert.Equal(typeof(uint), label.RawType);
        Assert.Equal(10ul, label.Count);
        var keyValuesType = Assert.IsType<VectorDataViewType>(data.Schema["Label"].Annotations.Schema[AnnotationNames.KeyValues].Type);
        Assert.Equal(TextDataViewType.Instance, keyValuesType.ItemType);
        VBuffer<ReadOnlyMemory<char>> names = default;
        data.Schema["Label"].GetKeyValues(ref names);
        Assert.Equal(ExpectedClassNames, names.DenseValues().Select(n => n.ToString()));
    }

    /// <summary>Every row's features and label key, read with one cursor.</summary>
    private static (float[][] Features, uint[] Labels) ReadRows(IDataView data)
    {
        var features = new List<float[]>();
        var labels = new List<uint>();
        using var cursor = data.GetRowCursor(data.Schema);
        var getFeatures = cursor.GetGetter<VBuffer<float>>(data.Schema["Features"]);
        var getLabel = cursor.GetGetter<uint>(data.Schema["Label"]);
        VBuffer<float> buffer = default;
        uint label = 0;
        while (cursor.MoveNext())
        {
            getFeatures(ref buffer);
            features.Add(buffer.DenseValues().ToArray());
            getLabel(ref label);
            labels.Add(label);
        }
        return ([.. features], [.. labels]);
    }

    private static void AssertPixelRange(float[][] features)
    {
        float min = float.MaxValue, max = float.MinValue;
        foreach (float[] row in features)
            foreach (float v in row)
            {
                min = Math.Min(min, v);
                max = Math.Max(max, v);
            }
        Assert.Equal(0f, min);
        Assert.Equal(1f, max);
    }
}
