namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// The engine's in-memory table of examples: a feature tensor per example (all of one shape) in one contiguous array,
/// a class index per example, and, once a model has scored it, the score vector and predicted label per example.
/// Users' data comes in as an <see cref="IDataView"/> (<see cref="DataViewReader"/> copies it here in one pass).
/// </summary>
/// <remarks>
/// Image features use the channels-last layout <c>[height, width, channels]</c>; a grayscale image is
/// <c>[height, width, 1]</c>. Labels are class indices (0 … classCount−1) for classification and real values for regression.
/// </remarks>
internal sealed class Dataset
{
    private readonly int[] _featureShape;

    internal Dataset(float[] features, int[] featureShape, float[] labels, ClassLabels? classLabels = null, int classCount = 0,
        float[]? scores = null, int scoreLength = 0, int[]? predictedLabels = null, bool validate = true)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(featureShape);
        ArgumentNullException.ThrowIfNull(labels);
        if (featureShape.Length == 0 || featureShape.Any(d => d <= 0))
            throw new ArgumentException($"Every feature dimension must be positive; got [{string.Join(", ", featureShape)}].", nameof(featureShape));
        FeatureLength = checked(featureShape.Aggregate(1, (a, d) => a * d));
        if (labels.Length == 0)
            throw new ArgumentException("The dataset is empty: at least one example is required.", nameof(labels));
        if ((long)labels.Length * FeatureLength != features.Length)
            throw new ArgumentException(
                $"Expected {labels.Length} examples × {FeatureLength} features = {(long)labels.Length * FeatureLength} values, got {features.Length}.", nameof(features));
        if (validate)
        {
            ValidateFinite(features, FeatureLength);
            for (int i = 0; i < labels.Length; i++)
                if (!float.IsFinite(labels[i]))
                    throw new InvalidDataException($"Row {i}: the label is {labels[i]}; labels must be finite numbers.");
        }
        Features = features;
        _featureShape = (int[])featureShape.Clone();
        Labels = labels;
        ClassLabels = classLabels;
        ClassCount = classCount;
        Scores = scores;
        ScoreLength = scoreLength;
        PredictedLabels = predictedLabels;
    }

    /// <summary>The number of examples.</summary>
    public int Count => Labels.Length;

    /// <summary>The shape of one example's features, e.g. <c>[784]</c> or <c>[28, 28, 1]</c>.</summary>
    public IReadOnlyList<int> FeatureShape => _featureShape;

    /// <summary>The number of feature values per example (the product of <see cref="FeatureShape"/>).</summary>
    public int FeatureLength { get; }

    /// <summary>The label's key values (what the classes are called), if the data had them.</summary>
    public ClassLabels? ClassLabels { get; }

    /// <summary>The number of classes the label's key type declares; 0 when unknown (then the largest label + 1).</summary>
    public int ClassCount { get; }

    /// <summary>The rows the reader skipped because their label was missing.</summary>
    public int SkippedRows { get; init; }

    /// <summary>True when a model has scored this dataset (<see cref="GetScores"/> and <see cref="GetPredictedLabel"/> are available).</summary>
    public bool IsScored => Scores is not null;

    /// <summary>The number of score values per example: the class count for classifiers, 1 for regression and binary classification.</summary>
    public int ScoreLength { get; }

    internal float[] Features { get; }
    internal float[] Labels { get; }
    internal float[]? Scores { get; }
    internal int[]? PredictedLabels { get; }
    internal int[] FeatureShapeArray => _featureShape;

    /// <summary>The features of example <paramref name="row"/>.</summary>
    public ReadOnlySpan<float> GetFeatures(int row) => Features.AsSpan(CheckRow(row) * FeatureLength, FeatureLength);

    /// <summary>The label of example <paramref name="row"/>.</summary>
    public float GetLabel(int row) => Labels[CheckRow(row)];

    /// <summary>The scores a model gave example <paramref name="row"/> (class probabilities for classifiers).</summary>
    public ReadOnlySpan<float> GetScores(int row) =>
        Scores is null ? throw new InvalidOperationException("This dataset has not been scored; call a model's Transform first.")
                       : Scores.AsSpan(CheckRow(row) * ScoreLength, ScoreLength);

    /// <summary>The label a classifier predicted for example <paramref name="row"/>.</summary>
    public int GetPredictedLabel(int row) =>
        PredictedLabels is null ? throw new InvalidOperationException("This dataset has no predicted labels; call a classifier's Transform first.")
                                : PredictedLabels[CheckRow(row)];

    /// <summary>All labels, in row order.</summary>
    public float[] GetLabels() => (float[])Labels.Clone();

    /// <summary>Returns the examples at <paramref name="rows"/> in that order (unscored).</summary>
    public Dataset Select(IReadOnlyList<int> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("At least one row must be selected.", nameof(rows));
        var features = new float[(long)rows.Count * FeatureLength];
        var labels = new float[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            int r = CheckRow(rows[i]);
            Array.Copy(Features, (long)r * FeatureLength, features, (long)i * FeatureLength, FeatureLength);
            labels[i] = Labels[r];
        }
        return new Dataset(features, _featureShape, labels, ClassLabels, ClassCount, validate: false);
    }

    /// <summary>Returns the first <paramref name="count"/> examples (unscored).</summary>
    public Dataset Take(int count)
    {
        if (count <= 0 || count > Count)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Must be between 1 and the row count {Count}.");
        return Select(Enumerable.Range(0, count).ToArray());
    }

    /// <summary>Returns a copy whose features have a new shape with the same number of values, e.g. <c>[784]</c> → <c>[28, 28, 1]</c>.</summary>
    public Dataset Reshape(params int[] featureShape)
    {
        ArgumentNullException.ThrowIfNull(featureShape);
        long length = featureShape.Aggregate(1L, (a, d) => a * d);
        if (length != FeatureLength || featureShape.Any(d => d <= 0))
            throw new ArgumentException(
                $"The new shape [{string.Join(", ", featureShape)}] must have {FeatureLength} values, as [{string.Join(", ", _featureShape)}] does.", nameof(featureShape));
        return new Dataset(Features, featureShape, Labels, ClassLabels, ClassCount, Scores, ScoreLength, PredictedLabels, validate: false);
    }

    /// <summary>
    /// Shuffles the examples (seeded), then splits them into a training part and a held-out part of about
    /// <paramref name="heldOutFraction"/> of them.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction leaves one of the parts empty.</exception>
    internal (Dataset Train, Dataset HeldOut) Split(double heldOutFraction, int seed)
    {
        int heldOut = (int)Math.Round(Count * heldOutFraction, MidpointRounding.AwayFromZero);
        if (heldOut == 0 || heldOut == Count)
            throw new ArgumentOutOfRangeException(nameof(heldOutFraction), heldOutFraction,
                $"Holding out this fraction of {Count} examples leaves {(heldOut == 0 ? "the held-out part" : "the training part")} empty.");
        var order = Enumerable.Range(0, Count).ToArray();
        var random = new Random(seed);
        for (int i = Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return (Select(order[heldOut..]), Select(order[..heldOut]));
    }

    internal Dataset WithScores(float[] scores, int scoreLength, int[]? predictedLabels) =>
        new(Features, _featureShape, Labels, ClassLabels, ClassCount, scores, scoreLength, predictedLabels, validate: false);

    private int CheckRow(int row) =>
        (uint)row < (uint)Count ? row : throw new ArgumentOutOfRangeException(nameof(row), row, $"The dataset has {Count} rows.");

    private static void ValidateFinite(float[] features, int featureLength)
    {
        int bad = NonFinite.First(features);
        if (bad >= 0)
            throw new InvalidDataException(
                $"Row {bad / featureLength}, feature {bad % featureLength}: the value is {features[bad]}; features must be finite (no NaN or infinity).");
    }
}
