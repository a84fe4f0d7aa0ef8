namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// Loading, splitting and shuffling data, in the role of ML.NET's <c>DataOperationsCatalog</c>; reach it through
/// <see cref="SparsityContext.Data"/>. Every method returns an in-memory <see cref="Dataset"/>.
/// </summary>
public sealed class DataOperationsCatalog
{
    private readonly SparsityContext _context;

    internal DataOperationsCatalog(SparsityContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
    }

    /// <summary>
    /// Loads one split of Fashion-MNIST: 28×28 grayscale images of clothing, features of shape <c>[28, 28, 1]</c>
    /// scaled to [0, 1], labels 0–9 with <see cref="Dataset.ClassNames"/> T-shirt/top, Trouser, Pullover, Dress, Coat,
    /// Sandal, Shirt, Sneaker, Bag, Ankle boot.
    /// </summary>
    /// <param name="split">The 60,000 training or the 10,000 test images.</param>
    /// <param name="directory">
    /// A folder holding the IDX files (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>,
    /// <c>t10k-images-idx3-ubyte</c>, <c>t10k-labels-idx1-ubyte</c>, each plain or <c>.gz</c>); only that folder is used.
    /// When <see langword="null"/>, the files are looked for in the folder named by the <c>FASHION_MNIST_DIR</c> environment
    /// variable, then <c>/usr/share/datasets/fashion-mnist</c> (the Debian package <c>dataset-fashion-mnist</c>), then the
    /// per-user download cache; failing all three they are downloaded from the Fashion-MNIST project into the cache.
    /// </param>
    /// <returns>The examples, in file order.</returns>
    /// <exception cref="FileNotFoundException">The files were found nowhere and could not be downloaded; the message lists every place searched.</exception>
    /// <exception cref="InvalidDataException">A file is not a valid Fashion-MNIST IDX file.</exception>
    public Dataset LoadFashionMnist(FashionMnistSplit split, string? directory = null) =>
        new FashionMnistLoader(_context).Load(split, directory);

    /// <summary>
    /// Loads a numeric delimited text file (CSV): one example per line, the column at <paramref name="labelColumnIndex"/>
    /// the label and every other column, in order, a feature. Numbers use the invariant culture ('.' decimal point).
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="labelColumnIndex">The 0-based index of the label column.</param>
    /// <param name="separatorChar">The column separator.</param>
    /// <param name="hasHeader">Whether the first line holds column names rather than data.</param>
    /// <param name="featureShape">The shape of each example's features, e.g. <c>[28, 28, 1]</c>; by default a vector of
    /// the feature columns.</param>
    /// <returns>The examples, in file order.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file has no data, a row with the wrong number of columns, or a cell
    /// that is not a finite number; the message names the line and column.</exception>
    public Dataset LoadFromTextFile(string path, int labelColumnIndex = 0, char separatorChar = ',', bool hasHeader = false,
        int[]? featureShape = null) =>
        TextLoader.Load(path, labelColumnIndex, separatorChar, hasHeader, featureShape);

    /// <summary>
    /// Builds a dataset from objects, reading each one's features and label from public fields or properties.
    /// </summary>
    /// <typeparam name="TRow">The row type.</typeparam>
    /// <param name="rows">The examples.</param>
    /// <param name="featureColumnName">The feature member: a <c>float[]</c> or <c>double[]</c> (the same length in every row),
    /// or a single <c>float</c> or <c>double</c>.</param>
    /// <param name="labelColumnName">The label member: <c>float</c>, <c>double</c>, an integer type, or <c>bool</c> (true is 1).</param>
    /// <param name="featureShape">The shape of each example's features; by default a vector.</param>
    /// <returns>The examples, in enumeration order.</returns>
    /// <exception cref="ArgumentException">A member is missing or of an unsupported type, or there are no rows.</exception>
    /// <exception cref="InvalidDataException">A row or its features is null, or its feature length differs from the first row's.</exception>
    public Dataset LoadFromEnumerable<TRow>(IEnumerable<TRow> rows, string featureColumnName = "Features",
        string labelColumnName = "Label", int[]? featureShape = null)
        where TRow : class =>
        EnumerableLoader.Load(rows, featureColumnName, labelColumnName, featureShape);

    /// <summary>
    /// Shuffles the examples, then splits them into a training set and a test set holding about
    /// <paramref name="testFraction"/> of them.
    /// </summary>
    /// <param name="data">The examples.</param>
    /// <param name="testFraction">The fraction of examples for the test set, strictly between 0 and 1.</param>
    /// <param name="seed">The shuffle's seed; <see langword="null"/> draws one from the context.</param>
    /// <returns>The two sets.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="testFraction"/> is not strictly between 0 and 1, or
    /// leaves one of the sets empty.</exception>
    public TrainTestData TrainTestSplit(Dataset data, double testFraction = 0.1, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!(testFraction > 0 && testFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "Must be strictly between 0 and 1.");
        int testCount = (int)Math.Round(data.Count * testFraction, MidpointRounding.AwayFromZero);
        if (testCount == 0 || testCount == data.Count)
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction,
                $"Splitting {data.Count} examples with this fraction leaves {(testCount == 0 ? "the test set" : "the training set")} empty.");
        int[] order = Permutation(data.Count, seed ?? _context.NextSeed());
        return new TrainTestData(data.Select(order[testCount..]), data.Select(order[..testCount]));
    }

    /// <summary>Returns the examples in a random order.</summary>
    /// <param name="data">The examples.</param>
    /// <param name="seed">The shuffle's seed; <see langword="null"/> draws one from the context.</param>
    /// <returns>A shuffled copy (unscored).</returns>
    public Dataset ShuffleRows(Dataset data, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        return data.Select(Permutation(data.Count, seed ?? _context.NextSeed()));
    }

    private static int[] Permutation(int count, int seed)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        var random = new Random(seed);
        for (int i = count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
