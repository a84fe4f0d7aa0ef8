namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// The two parts of a dataset split by <see cref="DataOperationsCatalog.TrainTestSplit"/>: the examples to train on and the
/// examples held out to evaluate on.
/// </summary>
public sealed class TrainTestData
{
    internal TrainTestData(Dataset trainSet, Dataset testSet)
    {
        TrainSet = trainSet;
        TestSet = testSet;
    }

    /// <summary>The examples to train on.</summary>
    public Dataset TrainSet { get; }

    /// <summary>The held-out examples to evaluate on.</summary>
    public Dataset TestSet { get; }
}
