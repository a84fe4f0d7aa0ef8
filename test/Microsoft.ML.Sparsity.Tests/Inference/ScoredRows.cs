using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Tests.Inference;

/// <summary>In-memory examples as an <see cref="IDataView"/>, and the Score and PredictedLabel columns a model's Transform adds, read back.</summary>
internal static class ScoredRows
{
    /// <summary><paramref name="data"/> as a view with a Features vector and a Label key of <paramref name="classCount"/> values.</summary>
    public static IDataView View(Dataset data, int classCount) =>
        new DatasetDataView(new Dataset(data.Features, data.FeatureShapeArray, data.Labels, data.ClassLabels, classCount));

    /// <summary>The scores (row-major, one row after another) and predicted keys (1-based; 0 is missing) <paramref name="model"/>'s Transform gives <paramref name="data"/>.</summary>
    public static (float[] Scores, uint[] Predicted) Transform(ITransformer model, Dataset data, int classCount) =>
        Read(model.Transform(View(data, classCount)));

    /// <summary>The Score and PredictedLabel columns of <paramref name="scored"/>, read with one cursor.</summary>
    public static (float[] Scores, uint[] Predicted) Read(IDataView scored, string scoreColumn = "Score", string predictedColumn = "PredictedLabel")
    {
        var score = scored.Schema[scoreColumn];
        var predicted = scored.Schema[predictedColumn];
        var scores = new List<float>();
        var labels = new List<uint>();
        using var cursor = scored.GetRowCursor([score, predicted]);
        var getScore = cursor.GetGetter<VBuffer<float>>(score);
        var getPredicted = cursor.GetGetter<uint>(predicted);
        VBuffer<float> buffer = default;
        uint label = 0;
        while (cursor.MoveNext())
        {
            getScore(ref buffer);
            scores.AddRange(buffer.DenseValues());
            getPredicted(ref label);
            labels.Add(label);
        }
        return ([.. scores], [.. labels]);
    }
}
