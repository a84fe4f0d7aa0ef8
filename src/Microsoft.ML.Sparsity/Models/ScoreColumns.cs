using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// The columns a multiclass model adds, with the annotations ML.NET's own multiclass trainers put on them (so its
/// evaluator finds the class names and <c>MapKeyToValue</c> turns predicted keys back into labels).
/// </summary>
internal static class ScoreColumns
{
    public const string Score = "Score";
    public const string PredictedLabel = "PredictedLabel";
    private const string MulticlassClassification = "MulticlassClassification";

    /// <summary><paramref name="input"/>'s columns, then <c>Score</c> and <c>PredictedLabel</c> (hiding input columns of those names).</summary>
    public static DataViewSchema AddTo(DataViewSchema input, int classCount, ClassLabels? labels)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(Score, new VectorDataViewType(NumberDataViewType.Single, classCount), ScoreAnnotations(labels));
        builder.AddColumn(PredictedLabel, new KeyDataViewType(typeof(uint), classCount), PredictedLabelAnnotations(labels));
        return builder.ToSchema();
    }

    /// <summary>Slot names (text labels only), the score kinds, and the training label's values.</summary>
    public static DataViewSchema.Annotations ScoreAnnotations(ClassLabels? labels)
    {
        var builder = Kinds(Score);
        if (labels?.ValueType is TextDataViewType) labels.AddTo(builder, AnnotationNames.SlotNames);
        labels?.AddTo(builder, AnnotationNames.TrainingLabelValues);
        return builder.ToAnnotations();
    }

    /// <summary>The key values, and the score kinds.</summary>
    public static DataViewSchema.Annotations PredictedLabelAnnotations(ClassLabels? labels)
    {
        var builder = Kinds(PredictedLabel);
        labels?.AddTo(builder, AnnotationNames.KeyValues);
        return builder.ToAnnotations();
    }

    private static DataViewSchema.Annotations.Builder Kinds(string valueKind)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.Add(AnnotationNames.ScoreColumnKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = MulticlassClassification.AsMemory());
        builder.Add(AnnotationNames.ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = valueKind.AsMemory());
        return builder;
    }
}
