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
        using var context = new SparsityContext(seed: 1);
        var log = new List<string>();
        context.Log += (_, e) => log.Add(e.Message);

        Dataset data = context.Data.LoadFashionMnist(split, dir.Path);

        Assert.Equal(30, data.Count);
        Assert.Equal([28, 28, 1], data.FeatureShape);
        Assert.Equal(ExpectedClassNames, data.ClassNames);
        for (int i = 0; i < 30; i++)
        {
            Assert.Equal(i % 10, data.GetLabel(i));
            float expected = (i * 10 % 256) / 255f;
            Assert.All(data.GetFeatures(i).ToArray(), v => Assert.Equal(expected, v));
        }
        Assert.Contains(log, m => m.Contains(dir.Path));
    }

    [Fact]
    public void Pixel_255_scales_to_exactly_one()
    {
        using var dir = new TempFolder();
        Idx.Write(dir.File("train-images-idx3-ubyte"), [1, 28, 28], Enumerable.Repeat((byte)255, 784).ToArray());
        Idx.Write(dir.File("train-labels-idx1-ubyte"), [1], [9]);
        using var context = new SparsityContext(seed: 1);
        Dataset data = context.Data.LoadFashionMnist(FashionMnistSplit.Train, dir.Path);
        Assert.All(data.GetFeatures(0).ToArray(), v => Assert.Equal(1f, v));
        Assert.Equal(9f, data.GetLabel(0));
    }

    [Fact]
    public void Explicit_empty_directory_gives_a_helpful_message()
    {
        using var dir = new TempFolder();
        using var context = new SparsityContext(seed: 1);
        var e = Assert.Throws<FileNotFoundException>(() => context.Data.LoadFashionMnist(FashionMnistSplit.Train, dir.Path));
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
        using var context = new SparsityContext(seed: 1);
        var e = Assert.Throws<FileNotFoundException>(() => context.Data.LoadFashionMnist(FashionMnistSplit.Test, missing));
        Assert.Contains(missing, e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void Inconsistent_image_and_label_counts_name_both_files()
    {
        using var dir = new TempFolder();
        Idx.Write(dir.File("t10k-images-idx3-ubyte"), [3, 28, 28], new byte[3 * 784]);
        Idx.Write(dir.File("t10k-labels-idx1-ubyte"), [2], [0, 1]);
        using var context = new SparsityContext(seed: 1);
        var e = Assert.Throws<InvalidDataException>(() => context.Data.LoadFashionMnist(FashionMnistSplit.Test, dir.Path));
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
        using var context = new SparsityContext(seed: 1);
        var e = Assert.Throws<InvalidDataException>(() => context.Data.LoadFashionMnist(FashionMnistSplit.Test, dir.Path));
        Assert.Contains("[1, 27, 28]", e.Message);

        Idx.Write(dir.File("t10k-images-idx3-ubyte"), [2, 28, 28], new byte[2 * 784]);
        Idx.Write(dir.File("t10k-labels-idx1-ubyte"), [2], [3, 10]);
        e = Assert.Throws<InvalidDataException>(() => context.Data.LoadFashionMnist(FashionMnistSplit.Test, dir.Path));
        Assert.Contains("label 1", e.Message);
        Assert.Contains("found 10", e.Message);
    }

    [Fact]
    public void Search_uses_the_first_location_holding_the_files()
    {
        using var empty = new TempFolder();
        using var full = new TempFolder();
        Idx.WriteFashionPair(full.Path, "t10k", count: 5, gzip: true);
        using var context = new SparsityContext(seed: 1);
        var loader = new FashionMnistLoader(context)
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
        using var context = new SparsityContext(seed: 1);
        var loader = new FashionMnistLoader(context)
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
        using var context = new SparsityContext(seed: 1);
        var requested = new List<Uri>();
        var loader = new FashionMnistLoader(context)
        {
            SearchLocations = [(empty.Path, "an empty folder")],
            DownloadDirectory = cache.Path,
            Download = (uri, path) =>
            {
                requested.Add(uri);
                File.Copy(Path.Combine(source.Path, uri.Segments[^1]), path);
            },
        };

        Dataset data = loader.Load(FashionMnistSplit.Test, null);

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
        using var context = new SparsityContext(seed: 1);
        var loader = new FashionMnistLoader(context)
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
        using var context = new SparsityContext(seed: 1);
        Dataset data = context.Data.LoadFashionMnist(FashionMnistSplit.Train, FashionMnistLoader.DebianDirectory);

        Assert.Equal(60_000, data.Count);
        Assert.Equal([28, 28, 1], data.FeatureShape);
        Assert.Equal(ExpectedClassNames, data.ClassNames);
        var perClass = data.GetLabels().GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(Enumerable.Range(0, 10).Select(c => (float)c), perClass.Keys.Order());
        Assert.All(perClass.Values, n => Assert.Equal(6000, n));
        AssertPixelRange(data);
    }

    [DebianFashionMnistFact]
    public void Loads_the_real_test_set_by_searching()
    {
        using var context = new SparsityContext(seed: 1);
        var log = new List<string>();
        context.Log += (_, e) => log.Add(e.Message);
        // No directory: FASHION_MNIST_DIR (if a CI sets it) or the Debian folder is found before any download.
        Dataset data = context.Data.LoadFashionMnist(FashionMnistSplit.Test);

        Assert.Equal(10_000, data.Count);
        Assert.Equal([28, 28, 1], data.FeatureShape);
        Assert.All(data.GetLabels(), l => Assert.InRange(l, 0, 9));
        AssertPixelRange(data);
        Assert.Single(log);
    }

    private static void AssertPixelRange(Dataset data)
    {
        float min = float.MaxValue, max = float.MinValue;
        for (int i = 0; i < data.Count; i++)
            foreach (float v in data.GetFeatures(i))
            {
                min = Math.Min(min, v);
                max = Math.Max(max, v);
            }
        Assert.Equal(0f, min);
        Assert.Equal(1f, max);
    }
}
