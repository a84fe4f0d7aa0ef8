using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Tests.Export;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Api;

/// <summary>
/// The binary-classification neural network inside ordinary ML.NET pipelines: LoadFromEnumerable, Concatenate →
/// NormalizeMinMax → ours, the output schema, ML.NET's binary evaluator, PredictionEngine and cross-validation.
/// </summary>
public sealed class BinaryWorkoutTests
{
    /// <summary>A row as a user writes it: separate numeric columns, a Boolean label.</summary>
    public sealed class LoanRow
    {
        public float Income { get; set; }
        public float Debt { get; set; }
        public float Years { get; set; }
        public float Noise { get; set; }
        public bool Label { get; set; }
    }

    public sealed class LoanPrediction
    {
        public float Score { get; set; }
        public float Probability { get; set; }
        public bool PredictedLabel { get; set; }
    }

    /// <summary>Badly scaled columns; the label is a noisy linear rule of two of them: learnable after min-max normalisation.</summary>
    internal static LoanRow[] Rows(int count, int seed)
    {
        var random = new Random(seed);
        float Uniform() => (float)random.NextDouble();
        return Enumerable.Range(0, count).Select(_ =>
        {
            float income = 1000 * Uniform(), debt = Uniform(), years = 0.01f * Uniform();
            return new LoanRow
            {
                Income = income, Debt = debt, Years = years, Noise = 5 * Uniform(),
                Label = income / 1000 - debt + 0.1f * (Uniform() - 0.5f) > 0,
            };
        }).ToArray();
    }

    private static IEstimator<ITransformer> Prepare(MLContext ml) =>
        ml.Transforms.Concatenate("Features", nameof(LoanRow.Income), nameof(LoanRow.Debt), nameof(LoanRow.Years), nameof(LoanRow.Noise))
            .Append(ml.Transforms.NormalizeMinMax("Features"));

    private static NeuralNetworkBinaryTrainer Trainer(MLContext ml, int epochs = 20) =>
        ml.BinaryClassification.Trainers.NeuralNetwork(new NeuralNetworkBinaryTrainer.Options
        {
            Layers = [Layers.Dense(16), Layers.ReLU()],
            Epochs = epochs,
            BatchSize = 16,
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.1f },
        });

    [Fact]
    public void Fits_in_an_ML_NET_chain_with_ML_NETs_binary_columns_and_evaluates_above_the_floors()
    {
        var ml = new MLContext(seed: 1);
        var model = Prepare(ml).Append(Trainer(ml)).Fit(ml.Data.LoadFromEnumerable(Rows(600, seed: 1)));
        var scored = model.Transform(ml.Data.LoadFromEnumerable(Rows(300, seed: 2)));

        Assert.Equal(NumberDataViewType.Single, scored.Schema["Score"].Type);
        Assert.Equal(NumberDataViewType.Single, scored.Schema["Probability"].Type);
        Assert.Equal(BooleanDataViewType.Instance, scored.Schema["PredictedLabel"].Type);
        ReadOnlyMemory<char> kind = default;
        scored.Schema["Score"].Annotations.GetValue("ScoreColumnKind", ref kind);
        Assert.Equal("BinaryClassification", kind.ToString());

        var metrics = ml.BinaryClassification.Evaluate(scored);
        Assert.True(metrics.AreaUnderRocCurve > 0.97, $"AUC {metrics.AreaUnderRocCurve:F3}");
        Assert.True(metrics.Accuracy > 0.9, $"accuracy {metrics.Accuracy:P1}");
        var probabilities = scored.GetColumn<float>("Probability").ToArray();
        var logits = scored.GetColumn<float>("Score").ToArray();
        for (int i = 0; i < logits.Length; i++) Assert.Equal(1 / (1 + MathF.Exp(-logits[i])), probabilities[i], 1e-6f);
    }

    [Fact]
    public void GetOutputSchema_of_the_unfitted_chain_matches_the_fitted_models_schema()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(60, seed: 1));
        var estimator = Prepare(ml).Append(Trainer(ml, epochs: 1));
        var shape = estimator.GetOutputSchema(SchemaShapes.Of(data.Schema));
        var schema = estimator.Fit(data).GetOutputSchema(data.Schema);
        foreach (var (name, type) in new[] { ("Score", (DataViewType)NumberDataViewType.Single), ("Probability", NumberDataViewType.Single), ("PredictedLabel", BooleanDataViewType.Instance) })
        {
            Assert.True(SchemaShapes.Find(shape, name, out var column));
            Assert.Equal(SchemaShape.Column.VectorKind.Scalar, column.Kind);
            Assert.Equal(type, column.ItemType);
            Assert.Equal(type, schema[name].Type);
        }
    }

    [Fact]
    public void Evaluate_equals_the_engines_own_accuracy()
    {
        var ml = new MLContext(seed: 1);
        var prepare = Prepare(ml).Fit(ml.Data.LoadFromEnumerable(Rows(600, seed: 1)));
        var train = prepare.Transform(ml.Data.LoadFromEnumerable(Rows(600, seed: 1)));
        var test = prepare.Transform(ml.Data.LoadFromEnumerable(Rows(300, seed: 2)));
        var model = ml.BinaryClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(8), Layers.ReLU()], epochs: 5, learningRate: 0.05f).Fit(train);

        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));

        var examples = DataViewReader.Read(test, "Features", "Label", labelKind: LabelKind.Boolean);
        var scores = new float[examples.Count * 2];
        var predicted = new int[examples.Count];
        model.Score(examples.Features, examples.Count, scores, predicted);
        int correct = Enumerable.Range(0, examples.Count).Count(i => predicted[i] == (int)examples.GetLabel(i) && (scores[i * 2] > 0) == (predicted[i] == 1));
        Assert.Equal((double)correct / examples.Count, metrics.Accuracy, 12);
        // The trainer's own validation accuracy on the same rows agrees with ML.NET's.
        var validated = ml.BinaryClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(8), Layers.ReLU()], epochs: 5, learningRate: 0.05f).Fit(train, test);
        Assert.Equal(ml.BinaryClassification.Evaluate(validated.Transform(test)).Accuracy, validated.TrainingHistory[^1].ValidationAccuracy!.Value, 6);
    }

    [Fact]
    public void PredictionEngine_equals_Transform()
    {
        var ml = new MLContext(seed: 2);
        var rows = Rows(120, seed: 5);
        var model = Prepare(ml).Append(Trainer(ml, epochs: 5)).Fit(ml.Data.LoadFromEnumerable(Rows(300, seed: 1)));
        var transformed = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var scores = transformed.GetColumn<float>("Score").ToArray();
        var probabilities = transformed.GetColumn<float>("Probability").ToArray();
        var labels = transformed.GetColumn<bool>("PredictedLabel").ToArray();

        var engine = ml.Model.CreatePredictionEngine<LoanRow, LoanPrediction>(model);
        for (int i = 0; i < rows.Length; i++)
        {
            var prediction = engine.Predict(rows[i]);
            Assert.Equal(labels[i], prediction.PredictedLabel);
            Assert.Equal(scores[i], prediction.Score, 1e-5f);
            Assert.Equal(probabilities[i], prediction.Probability, 1e-6f);
        }
    }

    [Fact]
    public void CrossValidate_trains_and_evaluates_every_fold()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(450, seed: 1));
        var prepared = Prepare(ml).Fit(data).Transform(data);
        var results = ml.BinaryClassification.CrossValidate(prepared, Trainer(ml), numberOfFolds: 3);
        Assert.Equal(3, results.Count);
        Assert.All(results, r => Assert.True(r.Metrics.Accuracy > 0.85, $"fold {r.Fold}: {r.Metrics.Accuracy:P1}"));
        Assert.Equal(450, results.Sum(r => r.ScoredHoldOutSet.GetColumn<bool>("PredictedLabel").Count()));
    }

    [Fact]
    public void Bad_columns_are_named_with_what_was_expected()
    {
        var ml = new MLContext(seed: 1);
        var data = Prepare(ml).Fit(ml.Data.LoadFromEnumerable(Rows(30, seed: 1))).Transform(ml.Data.LoadFromEnumerable(Rows(30, seed: 1)));

        // A Single label: binary classification takes a Boolean, as ML.NET's binary trainers do.
        var single = Assert.Throws<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.NeuralNetwork(labelColumnName: nameof(LoanRow.Debt), epochs: 1).Fit(data));
        Assert.Contains("label column 'Debt'", single.Message);
        Assert.Contains("expected Boolean", single.Message);
        var shapeError = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.BinaryClassification.Trainers.NeuralNetwork(labelColumnName: nameof(LoanRow.Debt)).GetOutputSchema(SchemaShapes.Of(data.Schema)));
        Assert.Contains("expected Boolean", shapeError.Message);

        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.NeuralNetwork(featureColumnName: "Pixels", epochs: 1).Fit(data));
        Assert.Contains("'Pixels' was not found", missing.Message);
        Assert.Contains("'Features'", missing.Message);
    }

    [Fact]
    public void Saving_through_ML_NET_says_it_is_not_supported_yet()
    {
        var ml = new MLContext(seed: 1);
        var data = Prepare(ml).Fit(ml.Data.LoadFromEnumerable(Rows(30, seed: 1))).Transform(ml.Data.LoadFromEnumerable(Rows(30, seed: 1)));
        var model = Trainer(ml, epochs: 1).Fit(data);
        using var stream = new MemoryStream();
        var error = Assert.Throws<NotSupportedException>(() => ml.Model.Save(model, data.Schema, stream));
        Assert.Contains("binary-classification", error.Message);
    }

    [Fact]
    public void ConvertToOnnx_exports_the_logit_probability_and_label_as_ONNX_Runtime_computes_them()
    {
        var ml = new MLContext(seed: 1);
        var data = Prepare(ml).Fit(ml.Data.LoadFromEnumerable(Rows(200, seed: 1))).Transform(ml.Data.LoadFromEnumerable(Rows(200, seed: 1)));
        var model = Trainer(ml, epochs: 3).Fit(data);
        var scored = model.Transform(data);
        var scores = scored.GetColumn<float>("Score").ToArray();
        var probabilities = scored.GetColumn<float>("Probability").ToArray();
        var labels = scored.GetColumn<bool>("PredictedLabel").ToArray();
        var features = data.GetColumn<float[]>("Features").Take(32).SelectMany(f => f).ToArray();

        string path = Path.Combine(Path.GetTempPath(), $"sparsity-binary-{Guid.NewGuid():N}.onnx");
        try
        {
            ml.Sparsity().ConvertToOnnx(model, path);
            var result = OnnxRuntimeRunner.Run(new OnnxJob(path, features, [32, 4]));
            Assert.Equal(["score", "probability", "predicted_label"], result.OutputNames);
            Assert.Equal([32, 1], result.Outputs["score"].Dims);
            for (int i = 0; i < 32; i++)
            {
                Assert.Equal(scores[i], result.Outputs["score"].Data[i], 1e-4);
                Assert.Equal(probabilities[i], result.Outputs["probability"].Data[i], 1e-5);
                Assert.Equal(labels[i] ? 1.0 : 0.0, result.Outputs["predicted_label"].Data[i]);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
