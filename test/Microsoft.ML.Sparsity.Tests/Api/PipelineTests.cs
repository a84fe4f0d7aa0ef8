using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Tests.Training;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Api;

public sealed class PipelineTests
{
    /// <summary>A test estimator: learns per-feature mean and scale and standardises; records what it was fitted on.</summary>
    private sealed class Standardizer : IEstimator<StandardizerTransformer>
    {
        public List<Dataset> FittedOn { get; } = [];

        public StandardizerTransformer Fit(Dataset input)
        {
            FittedOn.Add(input);
            int f = input.FeatureLength;
            var mean = new double[f];
            var sq = new double[f];
            for (int i = 0; i < input.Count; i++)
            {
                var x = input.GetFeatures(i);
                for (int j = 0; j < f; j++) { mean[j] += x[j]; sq[j] += (double)x[j] * x[j]; }
            }
            for (int j = 0; j < f; j++)
            {
                mean[j] /= input.Count;
                sq[j] = Math.Sqrt(Math.Max(sq[j] / input.Count - mean[j] * mean[j], 1e-12));
            }
            return new StandardizerTransformer(mean, sq);
        }
    }

    private sealed class StandardizerTransformer(double[] mean, double[] std) : ITransformer
    {
        public int Calls { get; private set; }

        public Dataset Transform(Dataset input)
        {
            Calls++;
            int f = input.FeatureLength;
            var x = new float[input.Count * f];
            for (int i = 0; i < input.Count; i++)
            {
                var row = input.GetFeatures(i);
                for (int j = 0; j < f; j++) x[i * f + j] = (float)((row[j] - mean[j]) / std[j]);
            }
            return new Dataset(x, [.. input.FeatureShape], input.GetLabels(), input.ClassNames?.ToArray());
        }
    }

    private static Dataset Shifted(Dataset data, float shift, float scale)
    {
        var x = new float[data.Count * data.FeatureLength];
        for (int i = 0; i < data.Count; i++)
        {
            var row = data.GetFeatures(i);
            for (int j = 0; j < row.Length; j++) x[i * row.Length + j] = row[j] * scale + shift;
        }
        return new Dataset(x, [.. data.FeatureShape], data.GetLabels());
    }

    [Fact]
    public void Append_chains_a_transform_and_the_trainer()
    {
        using var context = new SparsityContext(seed: 1);
        // Badly scaled features: the standardiser must run before the trainer sees them.
        var data = Shifted(TrainingData.Blobs(300), shift: 500f, scale: 40f);
        var standardizer = new Standardizer();
        var trainer = context.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Dense(16), Layers.ReLU()],
            Epochs = 5,
            BatchSize = 16,
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f },
        });

        EstimatorChain<NeuralNetworkMulticlassModel> pipeline = standardizer.Append(trainer);
        TransformerChain<NeuralNetworkMulticlassModel> fitted = pipeline.Fit(data);

        Assert.Single(standardizer.FittedOn);
        Assert.Same(data, standardizer.FittedOn[0]);
        Assert.Equal(2, fitted.Transformers.Count);
        Assert.IsType<StandardizerTransformer>(fitted.Transformers[0]);
        Assert.Same(fitted.Transformers[1], fitted.LastTransformer);
        Assert.Equal(3, fitted.LastTransformer.ClassCount);

        var scored = fitted.Transform(data);
        Assert.True(scored.IsScored);
        Assert.Equal(3, scored.ScoreLength);
        var metrics = context.MulticlassClassification.Evaluate(scored);
        Assert.True(metrics.MicroAccuracy > 0.8, $"accuracy {metrics.MicroAccuracy}");

        // The chain equals applying its parts by hand.
        var byHand = fitted.LastTransformer.Transform(fitted.Transformers[0].Transform(data));
        Assert.Equal(Enumerable.Range(0, data.Count).Select(scored.GetPredictedLabel), Enumerable.Range(0, data.Count).Select(byHand.GetPredictedLabel));
    }

    [Fact]
    public void EstimatorChain_Append_adds_a_step_and_fits_each_on_the_previous_output()
    {
        using var context = new SparsityContext(seed: 1);
        var data = Shifted(TrainingData.Blobs(90), shift: 3f, scale: 2f);
        var first = new Standardizer();
        var second = new Standardizer();
        var trainer = context.MulticlassClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(8)], epochs: 1, batchSize: 30);
        var chain = first.Append(second).Append(trainer);
        var fitted = chain.Fit(data);

        Assert.Equal(3, fitted.Transformers.Count);
        Assert.Same(data, first.FittedOn[0]);
        // The second standardiser was fitted on the first's output: already standardised features.
        var seen = second.FittedOn.Single();
        Assert.NotSame(data, seen);
        double mean = Enumerable.Range(0, seen.Count).Average(i => (double)seen.GetFeatures(i)[0]);
        Assert.Equal(0, mean, 1e-4);
        Assert.IsType<NeuralNetworkMulticlassModel>(fitted.LastTransformer);
        Assert.Throws<ArgumentNullException>(() => first.Append<NeuralNetworkMulticlassModel>(null!));
    }

    // ------------------------------------------------------------------ metrics

    /// <summary>
    /// Six examples, three classes, hand-picked probabilities. Labels 0,0,0,1,1,2; predictions 0,1,1,1,2,2.
    /// Row 2 gives its true class probability 0, so the log-loss clamp (1e-15) applies.
    /// </summary>
    private static Dataset Scored(string[]? classNames = null)
    {
        float[] scores =
        [
            0.7f, 0.2f, 0.1f,
            0.3f, 0.6f, 0.1f,
            0.0f, 0.5f, 0.5f,
            0.1f, 0.8f, 0.1f,
            0.25f, 0.35f, 0.4f,
            0.2f, 0.3f, 0.5f,
        ];
        float[] labels = [0, 0, 0, 1, 1, 2];
        int[] predicted = [0, 1, 1, 1, 2, 2];
        return new Dataset(new float[6], [1], labels, classNames, scores, 3, predicted);
    }

    [Fact]
    public void Metrics_match_hand_computed_values()
    {
        using var context = new SparsityContext(seed: 1);
        var m = context.MulticlassClassification.Evaluate(Scored(), topKPredictionCount: 2);

        Assert.Equal(3.0 / 6, m.MicroAccuracy, 1e-12);
        // Per-class recall 1/3, 1/2, 1/1.
        Assert.Equal((1.0 / 3 + 1.0 / 2 + 1.0) / 3, m.MacroAccuracy, 1e-12);

        double[] trueClassP = [0.7f, 0.3f, 1e-15, 0.8f, 0.35f, 0.5f];
        double logLoss = trueClassP.Average(p => -Math.Log(p));
        Assert.Equal(logLoss, m.LogLoss, 1e-10);
        Assert.Equal(34.538776394910684 / 6, -Math.Log(1e-15) / 6, 1e-10); // the clamp's contribution
        double[] freq = [3.0 / 6, 2.0 / 6, 1.0 / 6];
        double prior = -freq.Sum(f => f * Math.Log(f));
        Assert.Equal((prior - logLoss) / prior, m.LogLossReduction, 1e-10);

        // Top-2: the true class is among the two highest scores in every row but row 2.
        Assert.Equal(2, m.TopKPredictionCount);
        Assert.Equal(5.0 / 6, m.TopKAccuracy, 1e-12);

        Assert.Equal((-Math.Log(0.7f) - Math.Log(0.3f) - Math.Log(1e-15)) / 3, m.PerClassLogLoss[0], 1e-10);
        Assert.Equal((-Math.Log(0.8f) - Math.Log(0.35f)) / 2, m.PerClassLogLoss[1], 1e-10);
        Assert.Equal(-Math.Log(0.5f), m.PerClassLogLoss[2], 1e-10);

        var cm = m.ConfusionMatrix;
        Assert.Equal(3, cm.NumberOfClasses);
        double[][] expected = [[1, 2, 0], [0, 1, 1], [0, 0, 1]];
        for (int t = 0; t < 3; t++) Assert.Equal(expected[t], cm.Counts[t]);
        Assert.Equal(new[] { 1.0 / 3, 1.0 / 2, 1.0 }, cm.PerClassRecall);
        // Precision per predicted column: 1/1, 1/3, 1/2.
        Assert.Equal(new[] { 1.0, 1.0 / 3, 1.0 / 2 }, cm.PerClassPrecision);
        Assert.Contains("Recall", cm.GetFormattedConfusionTable());
    }

    [Fact]
    public void Top_k_equal_to_one_is_the_accuracy_of_the_argmax_and_k_equal_to_class_count_is_one()
    {
        using var context = new SparsityContext(seed: 1);
        // Top-1 counts rows where no class scores strictly higher than the true one: rows 0, 3 and 5.
        var top1 = context.MulticlassClassification.Evaluate(Scored(), 1);
        Assert.Equal(3.0 / 6, top1.TopKAccuracy, 1e-12);
        var top3 = context.MulticlassClassification.Evaluate(Scored(), 3);
        Assert.Equal(1.0, top3.TopKAccuracy, 1e-12);
        var none = context.MulticlassClassification.Evaluate(Scored());
        Assert.Equal(0, none.TopKPredictionCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => context.MulticlassClassification.Evaluate(Scored(), 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => context.MulticlassClassification.Evaluate(Scored(), -1));
    }

    [Fact]
    public void Perfect_predictions_have_zero_log_loss_and_full_reduction()
    {
        using var context = new SparsityContext(seed: 1);
        var data = new Dataset(new float[4], [1], [0, 1, 2, 1], null, [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0], 3, [0, 1, 2, 1]);
        var m = context.MulticlassClassification.Evaluate(data);
        Assert.Equal(1.0, m.MicroAccuracy);
        Assert.Equal(1.0, m.MacroAccuracy);
        Assert.Equal(0.0, m.LogLoss, 1e-12);
        Assert.Equal(1.0, m.LogLossReduction, 1e-12);
    }

    [Fact]
    public void Macro_accuracy_ignores_classes_absent_from_the_labels()
    {
        using var context = new SparsityContext(seed: 1);
        // Class 2 never occurs: macro = mean(recall of 0, recall of 1) = (1 + 0.5) / 2.
        var data = new Dataset(new float[3], [1], [0, 1, 1], null, [0.8f, 0.1f, 0.1f, 0.2f, 0.7f, 0.1f, 0.6f, 0.3f, 0.1f], 3, [0, 1, 0]);
        var m = context.MulticlassClassification.Evaluate(data);
        Assert.Equal(0.75, m.MacroAccuracy, 1e-12);
        Assert.True(double.IsNaN(m.PerClassLogLoss[2]));
        Assert.Equal(0, m.ConfusionMatrix.PerClassRecall[2]);
        Assert.Equal(0, m.ConfusionMatrix.PerClassPrecision[2]);
    }

    [Fact]
    public void Evaluating_unscored_data_is_rejected()
    {
        using var context = new SparsityContext(seed: 1);
        var ex = Assert.Throws<ArgumentException>(() => context.MulticlassClassification.Evaluate(TrainingData.Blobs(10)));
        Assert.Contains("Transform", ex.Message);
    }

    [Fact]
    public void Metrics_carry_class_names_into_the_confusion_matrix()
    {
        using var context = new SparsityContext(seed: 1);
        var m = context.MulticlassClassification.Evaluate(Scored(["cat", "dog", "eel"]));
        Assert.Equal(["cat", "dog", "eel"], m.ConfusionMatrix.ClassNames!);
        Assert.Contains("dog", m.ConfusionMatrix.GetFormattedConfusionTable());
    }

    // ------------------------------------------------------------------ layer summaries

    [Fact]
    public void LeNet_300_100_has_the_published_parameter_counts()
    {
        using var context = new SparsityContext(seed: 1);
        var data = new Dataset(new float[20 * 784], [784], Enumerable.Range(0, 20).Select(i => (float)(i % 10)).ToArray());
        var model = context.MulticlassClassification.Trainers.NeuralNetwork(epochs: 1, batchSize: 20).Fit(data);

        var layers = model.Layers;
        Assert.Equal(["dense0", "relu0", "dense1", "relu1", "output"], layers.Select(l => l.Name));
        Assert.Equal(["Dense", "Activation", "Dense", "Activation", "Dense"], layers.Select(l => l.Kind));
        Assert.Equal([235_500L, 0, 30_100, 0, 1_010], layers.Select(l => l.ParameterCount));
        Assert.Equal([235_200L, 0, 30_000, 0, 1_000], layers.Select(l => l.WeightCount));
        Assert.Equal([784L * 300, 0, 300 * 100, 0, 100 * 10], layers.Select(l => l.MultiplyAdds));
        Assert.Equal(266_610, model.ParameterCount);
        Assert.Equal([784], model.InputShape);
        Assert.Equal([300], layers[0].OutputShape);
        Assert.Equal([10], layers[^1].OutputShape);
        Assert.Contains("266,610", model.Summary());
    }

    [Fact]
    public void Image_input_and_the_cnns_have_the_expected_shapes_and_parameter_counts()
    {
        using var context = new SparsityContext(seed: 1);
        var data = new Dataset(new float[10 * 784], [28, 28, 1], Enumerable.Range(0, 10).Select(i => (float)i).ToArray());

        // LeNet-300-100's first dense layer flattens a 28×28×1 image: the same 235,500 parameters.
        var lenet = context.MulticlassClassification.Trainers.NeuralNetwork(epochs: 1, batchSize: 10).Fit(data);
        Assert.Equal(235_500, lenet.Layers[0].ParameterCount);

        var tiny = context.MulticlassClassification.Trainers.NeuralNetwork(layers: TrainingData.TinyCnn(), epochs: 1, batchSize: 10).Fit(data);
        Assert.Equal(["conv0", "relu0", "maxpool0", "flatten0", "output"], tiny.Layers.Select(l => l.Name));
        Assert.Equal([8 * 9 + 8, 0, 0, 0, 14 * 14 * 8 * 10 + 10], tiny.Layers.Select(l => l.ParameterCount));
        Assert.Equal([28, 28, 8], tiny.Layers[0].OutputShape);
        Assert.Equal([14, 14, 8], tiny.Layers[2].OutputShape);
        Assert.Equal([1568], tiny.Layers[3].OutputShape);
        Assert.Equal(28L * 28 * 8 * 9, tiny.Layers[0].MultiplyAdds);

        var small = context.MulticlassClassification.Trainers.NeuralNetwork(layers: Layers.SmallCnn(), epochs: 1, batchSize: 10).Fit(data);
        Assert.Equal(
            [32 * 9 + 32, 0, 0, 64 * 9 * 32 + 64, 0, 0, 0, 7 * 7 * 64 * 128 + 128, 0, 128 * 10 + 10],
            small.Layers.Select(l => l.ParameterCount));
        Assert.Equal(421_642, small.ParameterCount);
        Assert.Equal([7, 7, 64], small.Layers[5].OutputShape);
        Assert.Equal("Conv2d", small.Layers[0].Kind);
        Assert.Equal("Pool2d", small.Layers[2].Kind);
    }
}
