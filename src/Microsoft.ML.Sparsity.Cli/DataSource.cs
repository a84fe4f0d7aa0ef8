using System.Globalization;
using CsvHelper;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>Training and test data, with a "Features" float vector and a "Label" key column.</summary>
internal sealed record TrainingData(IDataView Train, IDataView Test, string Description);

/// <summary>
/// What <c>--data</c> names: <c>fashion-mnist</c> (the package's loader: the Debian package, FASHION_MNIST_DIR or a
/// download), a folder of IDX files named as MNIST's and Fashion-MNIST's are (train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-…, plain or .gz), or a CSV file with a header row, a label column and numeric feature columns.
/// </summary>
internal static class DataSource
{
    public const string FashionMnist = "fashion-mnist";
    public const string Help = "fashion-mnist, a folder of IDX files (train-/t10k-images-idx3-ubyte and -labels-idx1-ubyte), or a CSV file (header row; a label column; the other columns numeric)";

    /// <summary>Training and test data; a CSV without <paramref name="testData"/> holds out a seeded 20% as the test set.</summary>
    public static TrainingData ForTraining(MLContext ml, string data, string? testData, string labelColumn, int seed)
    {
        if (IsIdx(data, out string? folder))
        {
            if (testData is not null) throw new ArgumentException($"--test-data applies to CSV data; '{data}' has its own test split.", "--test-data");
            return new TrainingData(ml.Data.LoadFashionMnist(FashionMnistSplit.Train, folder), ml.Data.LoadFashionMnist(FashionMnistSplit.Test, folder),
                folder is null ? "Fashion-MNIST" : $"IDX files in '{folder}'");
        }
        var train = CsvRows.Read(data, labelColumn);
        var test = testData is null ? null : CsvRows.Read(testData, labelColumn);
        if (test is not null && test.FeatureCount != train.FeatureCount)
            throw new InvalidDataException($"'{testData}' has {test.FeatureCount} feature columns, '{data}' has {train.FeatureCount}.");
        var trainView = train.ToDataView(ml);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(trainView);
        if (test is not null)
        {
            if (test.Labels.Except(train.Labels).FirstOrDefault() is { } unknown)
                throw new InvalidDataException($"'{testData}' has the label '{unknown}', which the training data '{data}' does not have.");
            return new TrainingData(keys.Transform(trainView), keys.Transform(test.ToDataView(ml)), $"'{data}' and '{testData}'");
        }
        var split = ml.Data.TrainTestSplit(keys.Transform(trainView), testFraction: 0.2, seed: seed);
        return new TrainingData(split.TrainSet, split.TestSet, $"'{data}' (80% training, 20% test, seed {seed})");
    }

    /// <summary>
    /// Data to score a model on: the test split of Fashion-MNIST or an IDX folder, or every row of a CSV file whose
    /// labels are mapped to the model's classes (<paramref name="classNames"/>, in the model's order).
    /// </summary>
    public static IDataView ForEvaluation(MLContext ml, string data, string labelColumn, IReadOnlyList<string>? classNames)
    {
        if (IsIdx(data, out string? folder)) return ml.Data.LoadFashionMnist(FashionMnistSplit.Test, folder);
        var rows = CsvRows.Read(data, labelColumn);
        if (classNames is null) throw new ArgumentException("The model does not record its class names, so CSV labels cannot be matched to its classes.", "--model");
        if (rows.Labels.Except(classNames).FirstOrDefault() is { } unknown)
            throw new InvalidDataException($"'{data}' has the label '{unknown}', which is not one of the model's classes [{string.Join(", ", classNames)}].");
        var keyData = ml.Data.LoadFromEnumerable(classNames.Select(n => new KeyRow { Label = n }));
        return ml.Transforms.Conversion.MapValueToKey("Label", keyData: keyData).Fit(rows.ToDataView(ml)).Transform(rows.ToDataView(ml));
    }

    private static bool IsIdx(string data, out string? folder)
    {
        folder = null;
        if (string.Equals(data, FashionMnist, StringComparison.OrdinalIgnoreCase)) return true;
        if (Directory.Exists(data)) { folder = data; return true; }
        if (File.Exists(data)) return false;
        throw new FileNotFoundException($"--data '{data}': no such file or folder (use {Help}).", data);
    }

    private sealed class KeyRow
    {
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
