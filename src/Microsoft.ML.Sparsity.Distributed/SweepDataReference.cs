using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// Where every machine of a cluster finds a sweep's data: each worker loads it itself (once, then keeps it) and checks it
/// by its SHA-256 against the coordinator's, so no trial ships data. The training split of Fashion-MNIST or of a folder
/// of IDX files (a shared path), split into training and validation parts by ML.NET's <c>TrainTestSplit</c> with the
/// sweep's seed: the parts a one-machine sweep gets from <c>mlContext.Data.TrainTestSplit(data, ValidationFraction, seed)</c>
/// (as the command-line tool's does), so a sweep compares its trials on the same images on one machine and on a cluster.
/// </summary>
/// <param name="Source"><see cref="FashionMnist"/> (found as the package's Fashion-MNIST loader finds it: <c>FASHION_MNIST_DIR</c>, the Debian package dataset-fashion-mnist, the download cache), or a folder every worker can read with train-images-idx3-ubyte and train-labels-idx1-ubyte (plain or .gz).</param>
/// <param name="ValidationFraction">The part held out to compare the trials, in (0, 1). Default 1/6, as the command-line tool's sweep.</param>
/// <param name="Examples">Only the first this many training examples (a quick sweep); null (default): all.</param>
[GenerateSerializer, Immutable]
public sealed record SweepDataReference([property: Id(0)] string Source, [property: Id(1)] double ValidationFraction = 1.0 / 6, [property: Id(2)] int? Examples = null)
{
    /// <summary>The <see cref="Source"/> that names Fashion-MNIST.</summary>
    public const string FashionMnist = "fashion-mnist";

    /// <summary>"fashion-mnist, the first 6,000 examples, 1/6 held out".</summary>
    public override string ToString() =>
        FormattableString.Invariant($"{Source}{(Examples is { } n ? $", the first {n:N0} examples" : "")}, {ValidationFraction:0.###} held out");

    /// <exception cref="ArgumentException">The source is empty, the fraction is outside (0, 1) or the example count is below 2.</exception>
    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Source)) throw new ArgumentException($"Name the data: \"{FashionMnist}\" or a folder of IDX files every worker can read.", nameof(Source));
        if (!(ValidationFraction is > 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "The validation fraction must be in (0, 1).");
        if (Examples is < 2) throw new ArgumentOutOfRangeException(nameof(Examples), Examples, "Use at least 2 examples, or null for all.");
    }

    /// <summary>Reads the data and splits it with <paramref name="seed"/> as ML.NET's <c>TrainTestSplit</c> does: the same parts on every machine.</summary>
    /// <exception cref="FileNotFoundException">The data is not where the reference says; the message names the folder.</exception>
    /// <exception cref="ArgumentException">So few examples that a part came out empty.</exception>
    internal (Dataset Train, Dataset Validation) Load(int seed)
    {
        Validate();
        var all = new FashionMnistLoader(_ => { }).Load(FashionMnistSplit.Train, Source == FashionMnist ? null : Source);
        if (Examples is { } n && n < all.Count) all = all.Take(n);
        // TrainTestSplit draws each row's part from the seed and the row's position alone, so splitting the row
        // numbers gives the parts without reading the features through a cursor (half the time, half the peak memory).
        var ml = new MLContext(seed);
        var split = ml.Data.TrainTestSplit(ml.Data.LoadFromEnumerable(Enumerable.Range(0, all.Count).Select(i => new RowNumber { Row = i })), ValidationFraction, seed: seed);
        return (Part(all, ml, split.TrainSet, "training"), Part(all, ml, split.TestSet, "validation"));
    }

    /// <summary>The examples of one part of the split; a part of a few examples can come out empty.</summary>
    private Dataset Part(Dataset all, MLContext ml, IDataView part, string name)
    {
        int[] rows = [.. ml.Data.CreateEnumerable<RowNumber>(part, reuseRowObject: true).Select(r => r.Row)];
        return rows.Length > 0 ? all.Select(rows)
            : throw new ArgumentException($"Holding out {ValidationFraction:0.###} of {all.Count} examples with this seed leaves the {name} part empty; use more examples.", nameof(Examples));
    }

    private sealed class RowNumber
    {
        public int Row { get; set; }
    }
}
