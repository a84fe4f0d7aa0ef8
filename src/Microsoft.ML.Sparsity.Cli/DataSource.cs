using System.Globalization;
using CsvHelper;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>Training and test data, with a "Features" float vector and a "Label" key column; <see cref="Images"/> says how image files became features, when they did.</summary>
internal sealed record TrainingData(IDataView Train, IDataView Test, string Description, ImageSpec? Images = null);

/// <summary>What the data options of a command say: the data, the CSV test data and label column, and how images are read.</summary>
internal sealed record DataOptions(string Data, string? TestData, string LabelColumn, ImageSpec Image);

/// <summary>
/// What <c>--data</c> names: <c>fashion-mnist</c> (the package's loader: the Debian package, FASHION_MNIST_DIR or a
/// download), a folder of IDX files named as MNIST's and Fashion-MNIST's are (train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-…, plain or .gz), a folder of images in one subfolder per class, or a CSV file with a header row, a label
/// column and numeric feature columns.
/// </summary>
internal static class DataSource
{
    public const string FashionMnist = "fashion-mnist";
    public const string Help = "fashion-mnist, a folder of IDX files (train-/t10k-images-idx3-ubyte and -labels-idx1-ubyte), a folder of images in one subfolder per class, or a CSV file (header row; a label column; the other columns numeric)";

    /// <summary>Training and test data; CSV files and image folders without <see cref="DataOptions.TestData"/> hold out a seeded 20% as the test set.</summary>
    public static TrainingData ForTraining(MLContext ml, DataOptions options, int seed)
    {
        if (IsIdx(options.Data, out string? folder))
        {
            if (options.TestData is not null) throw new ArgumentException($"--test-data applies to CSV files and image folders; '{options.Data}' has its own test split.", "--test-data");
            return new TrainingData(ml.Data.LoadFashionMnist(FashionMnistSplit.Train, folder), ml.Data.LoadFashionMnist(FashionMnistSplit.Test, folder),
                folder is null ? "Fashion-MNIST" : $"IDX files in '{folder}'");
        }
        var train = Labelled.Read(ml, options.Data, options);
        var test = options.TestData is null ? null : Labelled.Read(ml, options.TestData, options);
        if (test is not null && test.FeatureCount != train.FeatureCount)
            throw new InvalidDataException($"'{options.TestData}' has {test.FeatureCount} features per example, '{options.Data}' has {train.FeatureCount}.");
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train.View);
        if (test is not null)
        {
            if (test.Labels.Except(train.Labels).FirstOrDefault() is { } unknown)
                throw new InvalidDataException($"'{options.TestData}' has the label '{unknown}', which the training data '{options.Data}' does not have.");
            return new TrainingData(keys.Transform(train.View), keys.Transform(test.View), $"'{options.Data}' and '{options.TestData}'", train.Images);
        }
        var split = ml.Data.TrainTestSplit(keys.Transform(train.View), testFraction: 0.2, seed: seed);
        return new TrainingData(split.TrainSet, split.TestSet, $"'{options.Data}' (80% training, 20% test, seed {seed})", train.Images);
    }

    /// <summary>
    /// Data to score a model on: the test split of Fashion-MNIST or an IDX folder, or every row of a CSV file or image
    /// of an image folder, whose labels are mapped to the model's classes (<paramref name="classNames"/>, in the model's order).
    /// </summary>
    public static IDataView ForEvaluation(MLContext ml, DataOptions options, IReadOnlyList<string>? classNames)
    {
        if (IsIdx(options.Data, out string? folder)) return ml.Data.LoadFashionMnist(FashionMnistSplit.Test, folder);
        var rows = Labelled.Read(ml, options.Data, options);
        if (classNames is null) throw new ArgumentException("The model does not record its class names, so the data's labels cannot be matched to its classes.", "--model");
        if (rows.Labels.Except(classNames).FirstOrDefault() is { } unknown)
            throw new InvalidDataException($"'{options.Data}' has the label '{unknown}', which is not one of the model's classes [{string.Join(", ", classNames)}].");
        var keyData = ml.Data.LoadFromEnumerable(classNames.Select(n => new KeyRow { Label = n }));
        return ml.Transforms.Conversion.MapValueToKey("Label", keyData: keyData).Fit(rows.View).Transform(rows.View);
    }

    /// <summary>True for Fashion-MNIST by name (<paramref name="folder"/> null) or a folder of IDX files.</summary>
    public static bool IsIdx(string data, out string? folder)
    {
        folder = null;
        if (string.Equals(data, FashionMnist, StringComparison.OrdinalIgnoreCase)) return true;
        if (Directory.Exists(data) && Directory.EnumerateFiles(data, "*-idx?-ubyte*").Any()) { folder = data; return true; }
        if (File.Exists(data) || Directory.Exists(data)) return false;
        throw new FileNotFoundException($"--data '{data}': no such file or folder (use {Help}).", data);
    }

    private sealed class KeyRow
    {
        public string Label { get; set; } = "";
    }
}

/// <summary>A CSV file's or an image folder's examples: a "Features" vector and a text "Label" (and how images were read).</summary>
internal sealed record Labelled(IDataView View, IReadOnlyCollection<string> Labels, int FeatureCount, ImageSpec? Images = null)
{
    public static Labelled Read(MLContext ml, string path, DataOptions options)
    {
        if (Directory.Exists(path)) return ImageFolder.Read(ml, path, options.Image);
        var rows = CsvRows.Read(path, options.LabelColumn);
        return new Labelled(rows.ToDataView(ml), [.. rows.Labels], rows.FeatureCount);
    }
}

/// <summary>How image files become features: resized to <see cref="Height"/>×<see cref="Width"/>, grey (one channel) or colour (RGB), in [0, 1], interleaved ([H, W, C], as the convolution layers read them).</summary>
internal sealed record ImageSpec(int Height, int Width, bool Color)
{
    public int FeatureCount => Height * Width * (Color ? 3 : 1);

    /// <summary>"28x28" (height × width).</summary>
    public static ImageSpec Parse(string size, bool color)
    {
        var parts = size.Split('x', 'X', '×');
        if (parts is [var h, var w] && int.TryParse(h, NumberStyles.None, CultureInfo.InvariantCulture, out int height) && int.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out int width)
            && height is > 0 and <= 4096 && width is > 0 and <= 4096)
            return new ImageSpec(height, width, color);
        throw new ArgumentException($"--image-size '{size}' is not HEIGHTxWIDTH (e.g. 28x28).", "--image-size");
    }

    /// <summary>The ML.NET image transforms from an "ImagePath" column to "Features".</summary>
    public IEstimator<ITransformer> Pixels(MLContext ml)
    {
        IEstimator<ITransformer> images = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ResizeImages("Image", Width, Height));
        if (!Color) images = images.Append(ml.Transforms.ConvertToGrayscale("Image"));
        return images
            .Append(ml.Transforms.ExtractPixels("Features", "Image", Color ? Microsoft.ML.Transforms.Image.ImagePixelExtractingEstimator.ColorBits.Rgb : Microsoft.ML.Transforms.Image.ImagePixelExtractingEstimator.ColorBits.Red,
                interleavePixelColors: true, scaleImage: 1f / 255))
            .Append(ml.Transforms.DropColumns("Image", "ImagePath"));
    }
}

/// <summary>A folder of images, one subfolder per class (the subfolder's name is the label): PNG, JPEG or BMP files.</summary>
internal static class ImageFolder
{
    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp"];

    public static Labelled Read(MLContext ml, string folder, ImageSpec spec)
    {
        var rows = Directory.GetDirectories(folder).Order(StringComparer.Ordinal)
            .SelectMany(d => Files(d).Select(f => new ImageRow { ImagePath = Path.GetFullPath(f), Label = Path.GetFileName(d) }))
            .ToList();
        if (rows.Count == 0)
            throw new InvalidDataException($"'{folder}' is neither a folder of IDX files nor of images: no PNG, JPEG or BMP files in class subfolders ({folder}/CLASS/image.png).");
        var view = ml.Data.LoadFromEnumerable(rows);
        return new Labelled(spec.Pixels(ml).Fit(view).Transform(view), [.. rows.Select(r => r.Label).Distinct()], spec.FeatureCount, spec);
    }

    /// <summary>A class folder's image files, by name: the order the examples and predictions take.</summary>
    public static IEnumerable<string> Files(string classFolder) =>
        Directory.GetFiles(classFolder).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal);

    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}

/// <summary>A CSV file's rows: the label text and the feature values of each.</summary>
internal sealed class CsvRows
{
    private readonly List<Row> _rows;

    private CsvRows(List<Row> rows, int featureCount) => (_rows, FeatureCount) = (rows, featureCount);

    public int FeatureCount { get; }

    public IEnumerable<string> Labels => _rows.Select(r => r.Label).Distinct();

    /// <summary>Reads the whole file; a cell that is not a finite number names its line and column.</summary>
    public static CsvRows Read(string path, string labelColumn)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"The CSV file '{path}' does not exist.", path);
        try
        {
            using var csv = CsvReader.FromFile(path, new CsvReaderOptions { HasHeader = true, TrackLineNumbers = true });
            string[] header = [.. csv.Headers];
            if (header.Length == 0) throw new InvalidDataException($"'{path}' is empty: a CSV file needs a header row.");
            int label = Array.IndexOf(header, labelColumn);
            if (label < 0)
                throw new InvalidDataException($"'{path}' has no column '{labelColumn}' (its header: {string.Join(", ", header.Take(8))}{(header.Length > 8 ? ", …" : "")}); name the label column with --label-column.");
            var rows = new List<Row>();
            while (csv.Read())
            {
                long line = csv.LineNumber;
                if (csv.FieldCount != header.Length)
                    throw new InvalidDataException($"'{path}', line {line}: {csv.FieldCount} columns where the header has {header.Length}.");
                var features = new float[header.Length - 1];
                for (int i = 0, f = 0; i < header.Length; i++)
                {
                    if (i == label) continue;
                    string text = csv.GetString(i);
                    if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float value) || !float.IsFinite(value))
                        throw new InvalidDataException($"'{path}', line {line}, column '{header[i]}' ({i + 1}): '{text}' is not a finite number.");
                    features[f++] = value;
                }
                string labelText = csv.GetString(label);
                if (labelText.Length == 0) throw new InvalidDataException($"'{path}', line {line}, column '{labelColumn}': the label is empty.");
                rows.Add(new Row { Features = features, Label = labelText });
            }
            if (rows.Count == 0) throw new InvalidDataException($"'{path}' has a header but no data rows.");
            return new CsvRows(rows, header.Length - 1);
        }
        catch (CsvFormatException e)
        {
            throw new InvalidDataException($"'{path}' is not valid CSV: {e.Message}", e);
        }
    }

    public IDataView ToDataView(MLContext ml)
    {
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, FeatureCount);
        return ml.Data.LoadFromEnumerable(_rows, schema);
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }
}
