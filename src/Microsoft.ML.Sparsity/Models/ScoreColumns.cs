using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// The columns the models add, with the annotations ML.NET's own trainers put on them: multiclass (so its evaluator
/// finds the class names and <c>MapKeyToValue</c> turns predicted keys back into labels), binary classification and regression.
/// </summary>
internal static class ScoreColumns
{
    public const string Score = "Score";
    public const string PredictedLabel = "PredictedLabel";
    public const string Probability = "Probability";
    private const string MulticlassClassification = "MulticlassClassification";
    private const string BinaryClassification = "BinaryClassification";
    private const string Regression = "Regression";

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
        var builder = Kinds(MulticlassClassification, Score);
        if (labels?.ValueType is TextDataViewType) labels.AddTo(builder, AnnotationNames.SlotNames);
        labels?.AddTo(builder, AnnotationNames.TrainingLabelValues);
        return builder.ToAnnotations();
    }

    /// <summary>The key values, and the score kinds.</summary>
    public static DataViewSchema.Annotations PredictedLabelAnnotations(ClassLabels? labels)
    {
        var builder = Kinds(MulticlassClassification, PredictedLabel);
        labels?.AddTo(builder, AnnotationNames.KeyValues);
        return builder.ToAnnotations();
    }

    /// <summary>
    /// <paramref name="input"/>'s columns, then a binary classifier's <c>Score</c> (the logit), <c>Probability</c> (its
    /// sigmoid, normalised) and <c>PredictedLabel</c> (a <see cref="bool"/>), as ML.NET's binary trainers give them.
    /// </summary>
    public static DataViewSchema AddBinaryTo(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(Score, NumberDataViewType.Single, Kinds(BinaryClassification, Score).ToAnnotations());
        var probability = Kinds(BinaryClassification, Probability);
        probability.Add(AnnotationNames.IsNormalized, BooleanDataViewType.Instance, (ref bool v) => v = true);
        builder.AddColumn(Probability, NumberDataViewType.Single, probability.ToAnnotations());
        builder.AddColumn(PredictedLabel, BooleanDataViewType.Instance, Kinds(BinaryClassification, PredictedLabel).ToAnnotations());
        return builder.ToSchema();
    }

    /// <summary><paramref name="input"/>'s columns, then a regression model's <c>Score</c> (a <see cref="float"/>).</summary>
    public static DataViewSchema AddRegressionTo(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(Score, NumberDataViewType.Single, Kinds(Regression, Score).ToAnnotations());
        return builder.ToSchema();
    }

    private static DataViewSchema.Annotations.Builder Kinds(string columnKind, string valueKind)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.Add(AnnotationNames.ScoreColumnKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = columnKind.AsMemory());
        builder.Add(AnnotationNames.ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = valueKind.AsMemory());
        return builder;
    }
}
