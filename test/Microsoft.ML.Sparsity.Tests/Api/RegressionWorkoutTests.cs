using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Tests.Export;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Api;

/// <summary>
/// The regression neural network inside ordinary ML.NET pipelines: LoadFromEnumerable, Concatenate → NormalizeMinMax
/// → ours, the output schema, ML.NET's regression evaluator, PredictionEngine and cross-validation.
/// </summary>
public sealed class RegressionWorkoutTests
{
    /// <summary>A row as a user writes it: separate numeric columns, a Single label.</summary>
    public sealed class HouseRow
    {
        public float Area { get; set; }
        public float Age { get; set; }
        public float Distance { get; set; }
        public float Noise { get; set; }
        public float Label { get; set; }
    }

    public sealed class HousePrediction
    {
        public float Score { get; set; }
    }

    /// <summary>Badly scaled columns; the label is a smooth non-linear function of three of them plus noise of standard deviation about 0.03.</summary>
    internal static HouseRow[] Rows(int count, int seed)
    {
        var random = new Random(seed);
        float Uniform() => (float)random.NextDouble();
        return Enumerable.Range(0, count).Select(_ =>
        {
            float area = 200 * Uniform(), age = Uniform(), distance = 0.01f * Uniform();
            float a = area / 200, d = distance / 0.01f;
            return new HouseRow
            {
                Area = area, Age = age, Distance = distance, Noise = 5 * Uniform(),
                Label = 2 * a - age + a * d + 0.1f * (Uniform() - 0.5f),
            };
        }).ToArray();
    }

    private static IEstimator<ITransformer> Prepare(MLContext ml) =>
        ml.Transforms.Concatenate("Features", nameof(HouseRow.Area), nameof(HouseRow.Age), nameof(HouseRow.Distance), nameof(HouseRow.Noise))
            .Append(ml.Transforms.NormalizeMinMax("Features"));

    private static NeuralNetworkRegressionTrainer Trainer(MLContext ml, int epochs = 30) =>
        ml.Regression.Trainers.NeuralNetwork(new NeuralNetworkRegressionTrainer.Options
        {
            Layers = [Layers.Dense(16), Layers.ReLU()],
            Epochs = epochs,
            BatchSize = 16,
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.02f },
        });

    [Fact]
    public void Fits_in_an_ML_NET_chain_with_a_Single_Score_and_evaluates_above_the_floors()
    {
        var ml = new MLContext(seed: 1);
        var model = Prepare(ml).Append(Trainer(ml)).Fit(ml.Data.LoadFromEnumerable(Rows(600, seed: 1)));
        var scored = model.Transform(ml.Data.LoadFromEnumerable(Rows(300, seed: 2)));

        Assert.Equal(NumberDataViewType.Single, scored.Schema["Score"].Type);
        ReadOnlyMemory<char> kind = default;
        scored.Schema["Score"].Annotations.GetValue("ScoreColumnKind", ref kind);
        Assert.Equal("Regression", kind.ToString());
        Assert.Null(scored.Schema.GetColumnOrNull("PredictedLabel"));

        var metrics = ml.Regression.Evaluate(scored);
        Assert.True(metrics.RootMeanSquaredError < 0.1, $"RMSE {metrics.RootMeanSquaredError:F3}");
        Assert.True(metrics.RSquared > 0.95, $"R² {metrics.RSquared:F3}");
    }

    [Fact]
    public void GetOutputSchema_of_the_unfitted_chain_matches_the_fitted_models_schema()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(60, seed: 1));
        var estimator = Prepare(ml).Append(Trainer(ml, epochs: 1));
        var shape = estimator.GetOutputSchema(SchemaShapes.Of(data.Schema));
        var schema = estimator.Fit(data).GetOutputSchema(data.Schema);
        Assert.True(SchemaShapes.Find(shape, "Score", out var score));
        Assert.Equal(SchemaShape.Column.VectorKind.Scalar, score.Kind);
        Assert.Equal(NumberDataViewType.Single, score.ItemType);
        Assert.Equal(NumberDataViewType.Single, schema["Score"].Type);
        Assert.False(SchemaShapes.Find(shape, "PredictedLabel", out _));
    }

    [Fact]
    public void Evaluate_equals_the_engines_own_errors()
    {
        var ml = new MLContext(seed: 1);
        var prepare = Prepare(ml).Fit(ml.Data.LoadFromEnumerable(Rows(600, seed: 1)));
        var train = prepare.Transform(ml.Data.LoadFromEnumerable(Rows(600, seed: 1)));
        var test = prepare.Transform(ml.Data.LoadFromEnumerable(Rows(300, seed: 2)));
        var model = ml.Regression.Trainers.NeuralNetwork(layers: [Layers.Dense(8), Layers.ReLU()], epochs: 5, learningRate: 0.02f).Fit(train, test);

        var metrics = ml.Regression.Evaluate(model.Transform(test));

        var examples = DataViewReader.Read(test, "Features", "Label", labelKind: LabelKind.Single);
        var scores = new float[examples.Count];
        model.Score(examples.Features, examples.Count, scores, new int[examples.Count]);
        double squared = 0, absolute = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            double error = scores[i] - examples.GetLabel(i);
            squared += error * error;
            absolute += Math.Abs(error);
        }
        Assert.Equal(Math.Sqrt(squared / examples.Count), metrics.RootMeanSquaredError, 5);
        Assert.Equal(absolute / examples.Count, metrics.MeanAbsoluteError, 5);
        // The trainer's validation loss is the same mean squared error; regression reports no accuracy.
        Assert.Equal(metrics.MeanSquaredError, model.TrainingHistory[^1].ValidationLoss!.Value, 4);
        Assert.Null(model.TrainingHistory[^1].ValidationAccuracy);
    }

    [Fact]
    public void PredictionEngine_equals_Transform()
    {
        var ml = new MLContext(seed: 2);
        var rows = Rows(120, seed: 5);
        var model = Prepare(ml).Append(Trainer(ml, epochs: 5)).Fit(ml.Data.LoadFromEnumerable(Rows(300, seed: 1)));
        var scores = model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("Score").ToArray();

        var engine = ml.Model.CreatePredictionEngine<HouseRow, HousePrediction>(model);
        for (int i = 0; i < rows.Length; i++)
            Assert.Equal(scores[i], engine.Predict(rows[i]).Score, 1e-5f);
    }

    [Fact]
    public void CrossValidate_trains_and_evaluates_every_fold()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(450, seed: 1));
        var prepared = Prepare(ml).Fit(data).Transform(data);
        var results = ml.Regression.CrossValidate(prepared, Trainer(ml), numberOfFolds: 3);
        Assert.Equal(3, results.Count);
        Assert.All(results, r => Assert.True(r.Metrics.RSquared > 0.9, $"fold {r.Fold}: R² {r.Metrics.RSquared:F3}"));
        Assert.Equal(450, results.Sum(r => r.ScoredHoldOutSet.GetColumn<float>("Score").Count()));
    }

    public sealed class BooleanLabelRow
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];

        public bool Label { get; set; }
    }

    [Fact]
    public void Bad_columns_are_named_with_what_was_expected()
    {
        var ml = new MLContext(seed: 1);
        var booleans = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new BooleanLabelRow { Features = [i, 1], Label = i % 2 == 0 }));
        var boolean = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Regression.Trainers.NeuralNetwork(epochs: 1).Fit(booleans));
        Assert.Contains("label column 'Label'", boolean.Message);
        Assert.Contains("expected Single", boolean.Message);
        Assert.Contains("ConvertType", boolean.Message);
        var shapeError = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Regression.Trainers.NeuralNetwork().GetOutputSchema(SchemaShapes.Of(booleans.Schema)));
        Assert.Contains("expected Single", shapeError.Message);

        var data = Prepare(ml).Fit(ml.Data.LoadFromEnumerable(Rows(30, seed: 1))).Transform(ml.Data.LoadFromEnumerable(Rows(30, seed: 1)));
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Regression.Trainers.NeuralNetwork(featureColumnName: "Pixels", epochs: 1).Fit(data));
        Assert.Contains("'Pixels' was not found", missing.Message);
        Assert.Contains("'Features'", missing.Message);
    }

    [Fact]
    public void NaN_labels_are_skipped_and_saving_through_ML_NET_says_it_is_not_supported_yet()
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows(40, seed: 1);
        rows[3].Label = float.NaN;
        var data = Prepare(ml).Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        Assert.Equal(39, DataViewReader.Read(data, "Features", "Label", labelKind: LabelKind.Single).Count);
        var model = Trainer(ml, epochs: 1).Fit(data);
        Assert.All(model.Transform(data).GetColumn<float>("Score"), s => Assert.True(float.IsFinite(s)));
        using var stream = new MemoryStream();
        var error = Assert.Throws<NotSupportedException>(() => ml.Model.Save(model, data.Schema, stream));
        Assert.Contains("regression", error.Message);
    }

    [Fact]
    public void ConvertToOnnx_exports_the_score_as_ONNX_Runtime_computes_it()
    {
        var ml = new MLContext(seed: 1);
        var data = Prepare(ml).Fit(ml.Data.LoadFromEnumerable(Rows(200, seed: 1))).Transform(ml.Data.LoadFromEnumerable(Rows(200, seed: 1)));
        var model = Trainer(ml, epochs: 3).Fit(data);
        var scores = model.Transform(data).GetColumn<float>("Score").ToArray();
        var features = data.GetColumn<float[]>("Features").Take(32).SelectMany(f => f).ToArray();

        using var stream = new MemoryStream();
        ml.Sparsity().ConvertToOnnx(model, stream);
        string path = Path.Combine(Path.GetTempPath(), $"sparsity-regression-{Guid.NewGuid():N}.onnx");
        try
        {
            File.WriteAllBytes(path, stream.ToArray());
            var result = OnnxRuntimeRunner.Run(new OnnxJob(path, features, [32, 4]));
            Assert.Equal(["score"], result.OutputNames);
            Assert.Equal([32, 1], result.Outputs["score"].Dims);
            for (int i = 0; i < 32; i++) Assert.Equal(scores[i], result.Outputs["score"].Data[i], 1e-4);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
