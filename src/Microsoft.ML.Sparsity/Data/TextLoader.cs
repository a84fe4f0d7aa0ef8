using System.Globalization;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// Reads a numeric delimited text file (CSV): one example per line, one column the label, every other column a feature.
/// Numbers are parsed with the invariant culture; blank lines are skipped; quoting is not supported.
/// </summary>
internal static class TextLoader
{
    internal static Dataset Load(string path, int labelColumnIndex, char separatorChar, bool hasHeader, int[]? featureShape)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (labelColumnIndex < 0)
            throw new ArgumentOutOfRangeException(nameof(labelColumnIndex), labelColumnIndex, "Must be a 0-based column index.");
        if (!File.Exists(path))
            throw new FileNotFoundException($"The text file '{path}' does not exist.", path);

        var features = new List<float>();
        var labels = new List<float>();
        string[]? header = null;
        int columnCount = -1;
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (hasHeader && header is null)
            {
                header = line.Split(separatorChar);
                columnCount = header.Length;
                CheckLabelColumn(path, lineNumber, labelColumnIndex, columnCount);
                continue;
            }
            if (columnCount < 0)
            {
                columnCount = CountColumns(line, separatorChar);
                CheckLabelColumn(path, lineNumber, labelColumnIndex, columnCount);
            }
            ParseRow(path, lineNumber, line, separatorChar, columnCount, labelColumnIndex, header, features, labels);
        }

        if (labels.Count == 0)
            throw new InvalidDataException(hasHeader && header is not null
                ? $"The text file '{path}' has a header but no data rows."
                : $"The text file '{path}' is empty: it has no data rows.");

        int featureCount = columnCount - 1;
        int[] shape = featureShape ?? [featureCount];
        if (shape.Length == 0 || shape.Any(d => d <= 0) || shape.Aggregate(1L, (a, d) => a * d) != featureCount)
            throw new ArgumentException(
                $"The feature shape [{string.Join(", ", shape)}] must have {featureCount} values, the number of feature columns in '{path}'.",
                nameof(featureShape));
        return new Dataset(features.ToArray(), shape, labels.ToArray(), validate: false);
    }

    private static void CheckLabelColumn(string path, int lineNumber, int labelColumnIndex, int columnCount)
    {
        if (columnCount < 2)
            throw new InvalidDataException(
                $"'{path}', line {lineNumber}: found {columnCount} column; at least 2 (a label and a feature) are required.");
        if (labelColumnIndex >= columnCount)
            throw new ArgumentOutOfRangeException(nameof(labelColumnIndex), labelColumnIndex,
                $"'{path}' has {columnCount} columns (0 to {columnCount - 1}), so there is no label column {labelColumnIndex}.");
    }

    private static int CountColumns(string line, char separator)
    {
        int count = 1;
        foreach (char c in line)
            if (c == separator) count++;
        return count;
    }

    private static void ParseRow(string path, int lineNumber, string line, char separator, int columnCount, int labelColumnIndex,
        string[]? header, List<float> features, List<float> labels)
    {
        int found = CountColumns(line, separator);
        if (found != columnCount)
            throw new InvalidDataException(
                $"'{path}', line {lineNumber}: expected {columnCount} columns, found {found}.");

        ReadOnlySpan<char> rest = line;
        for (int column = 0; column < columnCount; column++)
        {
            int end = rest.IndexOf(separator);
            ReadOnlySpan<char> cell = (end < 0 ? rest : rest[..end]).Trim();
            rest = end < 0 ? ReadOnlySpan<char>.Empty : rest[(end + 1)..];

            if (!float.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out float value) || !float.IsFinite(value))
            {
                string name = header is not null ? $" (\"{header[column].Trim()}\")" : "";
                string problem = cell.IsEmpty ? "the cell is empty" : $"'{cell}' is not a finite number";
                throw new InvalidDataException(
                    $"'{path}', line {lineNumber}, column {column}{name} (0-based): {problem}.");
            }
            if (column == labelColumnIndex) labels.Add(value);
            else features.Add(value);
        }
    }
}
