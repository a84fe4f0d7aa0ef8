using System.Globalization;
using System.Text;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>Evaluation results for a multiclass classifier, with the fields of ML.NET's <c>MulticlassClassificationMetrics</c>.</summary>
public sealed class MulticlassClassificationMetrics
{
    internal MulticlassClassificationMetrics(double microAccuracy, double macroAccuracy, double logLoss, double logLossReduction,
        int topKPredictionCount, double topKAccuracy, double[] perClassLogLoss, ConfusionMatrix confusionMatrix)
    {
        MicroAccuracy = microAccuracy;
        MacroAccuracy = macroAccuracy;
        LogLoss = logLoss;
        LogLossReduction = logLossReduction;
        TopKPredictionCount = topKPredictionCount;
        TopKAccuracy = topKAccuracy;
        PerClassLogLoss = perClassLogLoss;
        ConfusionMatrix = confusionMatrix;
    }

    /// <summary>The fraction of examples predicted correctly (accuracy).</summary>
    public double MicroAccuracy { get; }

    /// <summary>The mean over classes (that occur in the labels) of each class's accuracy (recall).</summary>
    public double MacroAccuracy { get; }

    /// <summary>The mean of −ln p(true class), with p clamped below at 1e-15.</summary>
    public double LogLoss { get; }

    /// <summary>(prior log-loss − log-loss) / prior log-loss, where the prior predicts the label frequencies: 1 is perfect, 0 no better than the prior.</summary>
    public double LogLossReduction { get; }

    /// <summary>The K of <see cref="TopKAccuracy"/> (0 when not requested).</summary>
    public int TopKPredictionCount { get; }

    /// <summary>The fraction of examples whose true class is among the K highest scores.</summary>
    public double TopKAccuracy { get; }

    /// <summary>The log-loss of the examples of each class (NaN for a class with no examples).</summary>
    public IReadOnlyList<double> PerClassLogLoss { get; }

    /// <summary>Counts of (true class, predicted class) pairs.</summary>
    public ConfusionMatrix ConfusionMatrix { get; }

    internal static MulticlassClassificationMetrics Compute(Dataset scored, int topK)
    {
        if (!scored.IsScored || scored.PredictedLabels is null)
            throw new ArgumentException("The dataset has no scores; pass the output of a classifier's Transform.", nameof(scored));
        int k = scored.ScoreLength, n = scored.Count;
        if (topK < 0 || topK > k) throw new ArgumentOutOfRangeException(nameof(topK), topK, $"Must be between 0 and the class count {k}.");
        var counts = new double[k, k];
        var classCount = new long[k];
        var classLogLoss = new double[k];
        double logLoss = 0;
        long correct = 0, topKCorrect = 0;
        for (int i = 0; i < n; i++)
        {
            float labelValue = scored.Labels[i];
            int label = (int)labelValue;
            if (label != labelValue || label < 0 || label >= k)
                throw new InvalidDataException($"Row {i}: the label {labelValue} is not a class index in [0, {k}).");
            var p = scored.GetScores(i);
            int predicted = scored.PredictedLabels[i];
            counts[label, predicted]++;
            classCount[label]++;
            double loss = -Math.Log(Math.Max(p[label], 1e-15));
            logLoss += loss;
            classLogLoss[label] += loss;
            if (predicted == label) correct++;
            if (topK > 0)
            {
                int higher = 0;
                for (int c = 0; c < k; c++) if (p[c] > p[label]) higher++;
                if (higher < topK) topKCorrect++;
            }
        }
        double prior = 0, macro = 0;
        int present = 0;
        var perClass = new double[k];
        for (int c = 0; c < k; c++)
        {
            perClass[c] = classCount[c] == 0 ? double.NaN : classLogLoss[c] / classCount[c];
            if (classCount[c] == 0) continue;
            double f = (double)classCount[c] / n;
            prior -= f * Math.Log(f);
            macro += counts[c, c] / classCount[c];
            present++;
        }
        logLoss /= n;
        return new MulticlassClassificationMetrics((double)correct / n, macro / present, logLoss,
            prior > 0 ? (prior - logLoss) / prior : 0, topK, topK > 0 ? (double)topKCorrect / n : 0, perClass,
            new ConfusionMatrix(counts, scored.ClassNames));
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"MicroAccuracy {MicroAccuracy:F4}, MacroAccuracy {MacroAccuracy:F4}, LogLoss {LogLoss:F4}, LogLossReduction {LogLossReduction:F4}");
}

/// <summary>A confusion matrix: <c>Counts[true class][predicted class]</c>, with per-class precision and recall.</summary>
public sealed class ConfusionMatrix
{
    private readonly double[][] _counts;

    internal ConfusionMatrix(double[,] counts, IReadOnlyList<string>? classNames)
    {
        NumberOfClasses = counts.GetLength(0);
        _counts = Enumerable.Range(0, NumberOfClasses).Select(r => Enumerable.Range(0, NumberOfClasses).Select(c => counts[r, c]).ToArray()).ToArray();
        ClassNames = classNames;
        PerClassRecall = Enumerable.Range(0, NumberOfClasses).Select(c => Ratio(counts[c, c], _counts[c].Sum())).ToArray();
        PerClassPrecision = Enumerable.Range(0, NumberOfClasses).Select(c => Ratio(counts[c, c], _counts.Sum(row => row[c]))).ToArray();
    }

    /// <summary>The number of classes.</summary>
    public int NumberOfClasses { get; }

    /// <summary>The class names, when the data had them.</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary><c>Counts[t][p]</c>: examples of true class t predicted as class p.</summary>
    public IReadOnlyList<IReadOnlyList<double>> Counts => _counts;

    /// <summary>For each class, the fraction of its examples predicted as it (0 when it has none).</summary>
    public IReadOnlyList<double> PerClassRecall { get; }

    /// <summary>For each class, the fraction of predictions of it that were right (0 when never predicted).</summary>
    public IReadOnlyList<double> PerClassPrecision { get; }

    /// <summary>The matrix as a text table, with recall per row and precision per column.</summary>
    public string GetFormattedConfusionTable()
    {
        var sb = new StringBuilder();
        string Label(int c) => ClassNames is { } names && c < names.Count ? names[c] : c.ToString(CultureInfo.InvariantCulture);
        int width = Math.Max(6, Enumerable.Range(0, NumberOfClasses).Max(c => Label(c).Length) + 1);
        sb.Append(new string(' ', width)).Append(" |");
        for (int c = 0; c < NumberOfClasses; c++) sb.Append(CultureInfo.InvariantCulture, $"{c,7}");
        sb.AppendLine(" | Recall");
        for (int t = 0; t < NumberOfClasses; t++)
        {
            sb.Append(Label(t).PadRight(width)).Append(" |");
            for (int p = 0; p < NumberOfClasses; p++) sb.Append(CultureInfo.InvariantCulture, $"{_counts[t][p],7:F0}");
            sb.AppendLine(CultureInfo.InvariantCulture, $" | {PerClassRecall[t]:F4}");
        }
        sb.Append("Precision".PadRight(width)).Append(" |");
        for (int p = 0; p < NumberOfClasses; p++) sb.Append(CultureInfo.InvariantCulture, $" {PerClassPrecision[p]:F4}");
        return sb.AppendLine().ToString();
    }

    private static double Ratio(double a, double b) => b == 0 ? 0 : a / b;
}
