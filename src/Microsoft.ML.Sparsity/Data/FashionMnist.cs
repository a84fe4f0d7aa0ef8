using System.Globalization;
using System.Text;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>Which part of Fashion-MNIST to load.</summary>
public enum FashionMnistSplit
{
    /// <summary>The 60,000 training images.</summary>
    Train,

    /// <summary>The 10,000 test images.</summary>
    Test,
}

/// <summary>The file names and sizes of one Fashion-MNIST split.</summary>
internal sealed class FashionMnistFiles
{
    private FashionMnistFiles(string imagesName, string labelsName, int count)
    {
        ImagesName = imagesName;
        LabelsName = labelsName;
        Count = count;
    }

    /// <summary>The image file's name without the optional <c>.gz</c> suffix.</summary>
    internal string ImagesName { get; }

    /// <summary>The label file's name without the optional <c>.gz</c> suffix.</summary>
    internal string LabelsName { get; }

    /// <summary>The number of examples in the official files.</summary>
    internal int Count { get; }

    internal static FashionMnistFiles For(FashionMnistSplit split) => split switch
    {
        FashionMnistSplit.Train => new("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
        FashionMnistSplit.Test => new("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Must be Train or Test."),
    };

    /// <summary>Finds the split's image and label files in <paramref name="directory"/> (plain preferred over <c>.gz</c>).</summary>
    internal (string? Images, string? Labels) FindIn(string directory) =>
        (FindFile(directory, ImagesName), FindFile(directory, LabelsName));

    private static string? FindFile(string directory, string name)
    {
        string plain = Path.Combine(directory, name);
        if (File.Exists(plain)) return plain;
        string gzipped = plain + ".gz";
        return File.Exists(gzipped) ? gzipped : null;
    }
}

/// <summary>Turns a pair of Fashion-MNIST IDX files into a <see cref="Dataset"/>.</summary>
internal static class FashionMnistReader
{
    internal const int ImageSize = 28;

    internal static readonly string[] ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private static readonly ClassLabels Labels = new(Microsoft.ML.Data.TextDataViewType.Instance, ClassNames);

    // Byte → [0, 1] float, exact for 0 and 255.
    private static readonly float[] Scale = Enumerable.Range(0, 256).Select(b => b / 255f).ToArray();

    /// <summary>Reads and checks the files; <paramref name="expectedCount"/> (when given) is the required example count.</summary>
    internal static Dataset Read(string imagesPath, string labelsPath, int? expectedCount = null)
    {
        IdxArray images = IdxFile.Read(imagesPath, "image data");
        IdxArray labels = IdxFile.Read(labelsPath, "label data");
        if (images.Dimensions is not [_, ImageSize, ImageSize])
            throw new InvalidDataException(
                $"'{imagesPath}': expected images of dimensions [count, 28, 28], found [{string.Join(", ", images.Dimensions)}].");
        if (labels.Dimensions.Length != 1)
            throw new InvalidDataException(
                $"'{labelsPath}': expected labels of dimensions [count], found [{string.Join(", ", labels.Dimensions)}].");
        if (images.Count != labels.Count)
            throw new InvalidDataException(
                $"The image file '{imagesPath}' has {images.Count} images but the label file '{labelsPath}' has {labels.Count} labels.");
        if (expectedCount is int expected && images.Count != expected)
            throw new InvalidDataException(
                $"'{imagesPath}': expected {expected} images, found {images.Count}.");
        if (images.Count == 0)
            throw new InvalidDataException($"'{imagesPath}' contains no images.");

        var features = new float[images.Data.Length];
        byte[] pixels = images.Data;
        float[] scale = Scale;
        for (int i = 0; i < pixels.Length; i++)
            features[i] = scale[pixels[i]];

        var labelValues = new float[labels.Count];
        for (int i = 0; i < labelValues.Length; i++)
        {
            byte label = labels.Data[i];
            if (label >= ClassNames.Length)
                throw new InvalidDataException(
                    $"'{labelsPath}', label {i}: found {label}; Fashion-MNIST labels are 0 to {ClassNames.Length - 1}.");
            labelValues[i] = label;
        }
        return new Dataset(features, [ImageSize, ImageSize, 1], labelValues, Labels, ClassNames.Length, validate: false);
    }
}

/// <summary>Finds (and, as a last resort, downloads) Fashion-MNIST, then reads it.</summary>
internal sealed class FashionMnistLoader
{
    internal const string EnvironmentVariable = "FASHION_MNIST_DIR";
    internal const string DebianDirectory = "/usr/share/datasets/fashion-mnist";
    internal static readonly Uri DownloadBase = new("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/");

    private readonly Action<string> _log;

    internal FashionMnistLoader(Action<string> log)
    {
        _log = log;
    }

    /// <summary>The per-user folder downloads go to.</summary>
    internal static string CacheDirectory => Path.Combine(
        Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify),
        "Microsoft.ML.Sparsity", "fashion-mnist");

    /// <summary>Downloads <c>uri</c> to the file path given; replaceable in tests.</summary>
    internal Action<Uri, string> Download { get; init; } = HttpDownload;

    /// <summary>The folders searched, in order, when no directory is given, each with a description.</summary>
    internal IReadOnlyList<(string? Directory, string Description)> SearchLocations { get; init; } = DefaultSearchLocations();

    /// <summary>The folder downloaded files go to.</summary>
    internal string DownloadDirectory { get; init; } = CacheDirectory;

    internal Dataset Load(FashionMnistSplit split, string? directory)
    {
        var files = FashionMnistFiles.For(split);
        return directory is not null ? LoadFromExplicitDirectory(files, split, directory) : Search(files, split);
    }

    private Dataset LoadFromExplicitDirectory(FashionMnistFiles files, FashionMnistSplit split, string directory)
    {
        var (images, labels) = Directory.Exists(directory) ? files.FindIn(directory) : (null, null);
        if (images is null || labels is null)
        {
            string problem = Directory.Exists(directory) ? $"missing {Missing(files, images, labels)}"
                : File.Exists(directory) ? "it is a file, not a directory (pass the folder that holds the IDX files)"
                : "the directory does not exist";
            throw new FileNotFoundException(
                $"Fashion-MNIST ({split} split) was not found in the directory '{directory}' that was passed: {problem}. " +
                $"Put {files.ImagesName}(.gz) and {files.LabelsName}(.gz) there, or omit the directory to search the " +
                $"{EnvironmentVariable} environment variable, {DebianDirectory} (sudo apt-get install dataset-fashion-mnist) " +
                "and the download cache.",
                Path.Combine(directory, images is null ? files.ImagesName : files.LabelsName));
        }
        return Read(images, labels, $"the directory '{directory}'");
    }

    private Dataset Search(FashionMnistFiles files, FashionMnistSplit split)
    {
        var searched = new StringBuilder();
        foreach (var (dir, description) in SearchLocations)
        {
            if (dir is null)
            {
                searched.AppendLine(CultureInfo.InvariantCulture, $"  - {description}: not set");
                continue;
            }
            var (images, labels) = Directory.Exists(dir) ? files.FindIn(dir) : (null, null);
            if (images is not null && labels is not null)
                return Read(images, labels, $"{description} '{dir}'");
            string problem = Directory.Exists(dir) ? $"missing {Missing(files, images, labels)}" : "does not exist";
            searched.AppendLine(CultureInfo.InvariantCulture, $"  - {description} '{dir}': {problem}");
        }

        try
        {
            var (images, labels) = DownloadSplit(files);
            return Read(images, labels, $"a download from {DownloadBase} into '{DownloadDirectory}'");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException or UnauthorizedAccessException)
        {
            throw new FileNotFoundException(
                $"Fashion-MNIST ({split} split) was not found. Looked for {files.ImagesName}(.gz) and {files.LabelsName}(.gz) in:" +
                Environment.NewLine + searched +
                $"  - a download from {DownloadBase} into '{DownloadDirectory}': failed ({e.Message})" + Environment.NewLine +
                $"To fix it, {HowToFix}",
                files.ImagesName + ".gz", e);
        }
    }

    private const string HowToFix =
        "install the Debian package (sudo apt-get install dataset-fashion-mnist), " +
        $"set the {EnvironmentVariable} environment variable to a folder holding the files, " +
        "or pass that folder as the directory argument of LoadFashionMnist.";

    private static string Missing(FashionMnistFiles files, string? images, string? labels) =>
        string.Join(" and ", new[] { images is null ? files.ImagesName + "(.gz)" : null, labels is null ? files.LabelsName + "(.gz)" : null }
            .Where(n => n is not null));

    private Dataset Read(string images, string labels, string origin)
    {
        var data = FashionMnistReader.Read(images, labels);
        _log($"Loaded {data.Count} Fashion-MNIST examples from {origin} ({images}, {labels}).");
        return data;
    }

    private (string Images, string Labels) DownloadSplit(FashionMnistFiles files)
    {
        Directory.CreateDirectory(DownloadDirectory);
        string images = Path.Combine(DownloadDirectory, files.ImagesName + ".gz");
        string labels = Path.Combine(DownloadDirectory, files.LabelsName + ".gz");
        // A download killed midway left a temporary file; remove those nobody is writing (see AtomicFile).
        Serialization.AtomicFile.RemoveStaleTemporaries(images);
        Serialization.AtomicFile.RemoveStaleTemporaries(labels);
        string tempImages = DownloadToTemp(images);
        string? tempLabels = null;
        try
        {
            tempLabels = DownloadToTemp(labels);
            // Verify the pair parses with the official counts before anything replaces the cache.
            FashionMnistReader.Read(tempImages, tempLabels, files.Count);
            File.Move(tempImages, images, overwrite: true);
            File.Move(tempLabels, labels, overwrite: true);
        }
        catch (InvalidDataException e)
        {
            throw new IOException($"The downloaded files did not parse as Fashion-MNIST: {e.Message}", e);
        }
        finally
        {
            TryDelete(tempImages);
            if (tempLabels is not null) TryDelete(tempLabels);
        }
        _log($"Downloaded Fashion-MNIST {files.ImagesName} and {files.LabelsName} from {DownloadBase} into '{DownloadDirectory}'.");
        return (images, labels);
    }

    private string DownloadToTemp(string path)
    {
        string temp = Serialization.AtomicFile.TemporaryPath(path);
        var uri = new Uri(DownloadBase, Path.GetFileName(path));
        _log($"Downloading {uri} ...");
        try
        {
            Download(uri, temp);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        return temp;
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path)) File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static IReadOnlyList<(string? Directory, string Description)> DefaultSearchLocations()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return
        [
            (string.IsNullOrWhiteSpace(fromEnvironment) ? null : fromEnvironment, $"the {EnvironmentVariable} environment variable"),
            (DebianDirectory, "the folder of the Debian package dataset-fashion-mnist"),
            (CacheDirectory, "the download cache"),
        ];
    }

    private static void HttpDownload(Uri uri, string path)
    {
        using var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        using var response = client.Send(new HttpRequestMessage(HttpMethod.Get, uri));
        response.EnsureSuccessStatusCode();
        using var body = response.Content.ReadAsStream();
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        body.CopyTo(file);
    }
}
