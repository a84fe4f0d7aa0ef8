using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Api;

/// <summary>
/// The neural-network trainer inside ordinary ML.NET pipelines, as ML.NET's own test suite exercises its estimators:
/// data from LoadFromEnumerable and LoadFromTextFile, Concatenate → NormalizeMinMax → MapValueToKey → ours →
/// MapKeyToValue, the output schema, Evaluate, PredictionEngine and cross-validation.
/// </summary>
public sealed class WorkoutTests
{
    private static readonly string[] Animals = ["cat", "dog", "bird"];

    /// <summary>A row as a user writes it: separate numeric columns, a text label.</summary>
    public sealed class AnimalRow
    {
        public float Weight { get; set; }
        public float Height { get; set; }
        public float Speed { get; set; }
        public float Age { get; set; }
        public string Label { get; set; } = "";
    }

    public sealed class AnimalPrediction
    {
        public float[] Score { get; set; } = [];
        public string PredictedLabel { get; set; } = "";
    }

    /// <summary>Three classes, badly scaled columns (hundreds, units, thousandths): learnable after min-max normalisation.</summary>
    internal static AnimalRow[] Rows(int count, int seed)
    {
        var random = new Random(seed);
        float Noise() => (float)(random.NextDouble() * 2 - 1);
        return Enumerable.Range(0, count).Select(i =>
        {
            int c = i % 3;
            return new AnimalRow
            {
                Weight = 300 + 200 * c + 60 * Noise(),
                Height = 2 - c + 0.4f * Noise(),
                Speed = 0.002f * (c == 1 ? 3 : 1) + 0.0008f * Noise(),
                Age = 5 + 5 * Noise(),
                Label = Animals[c],
            };
        }).ToArray();
    }

    internal static IEstimator<ITransformer> Pipeline(MLContext ml, int epochs = 30, int? threads = null) =>
        ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height), nameof(AnimalRow.Speed), nameof(AnimalRow.Age))
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = [Layers.Dense(16), Layers.ReLU()],
                Epochs = epochs,
                BatchSize = 16,
                Optimizer = new SgdOptimizerOptions { LearningRate = 0.1f },
                NumberOfThreads = threads,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    private static string WriteCsv(AnimalRow[] rows)
    {
        string path = Path.Combine(Path.GetTempPath(), $"sparsity-workout-{Guid.NewGuid():N}.csv");
        File.WriteAllLines(path, rows.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Weight},{r.Height},{r.Speed},{r.Age},{r.Label}")).Prepend("Weight,Height,Speed,Age,Label"));
        return path;
    }

    private static IDataView LoadCsv(MLContext ml, string path) => ml.Data.LoadFromTextFile(path, [
        new TextLoader.Column(nameof(AnimalRow.Weight), DataKind.Single, 0),
        new TextLoader.Column(nameof(AnimalRow.Height), DataKind.Single, 1),
        new TextLoader.Column(nameof(AnimalRow.Speed), DataKind.Single, 2),
        new TextLoader.Column(nameof(AnimalRow.Age), DataKind.Single, 3),
        new TextLoader.Column("Label", DataKind.String, 4),
    ], separatorChar: ',', hasHeader: true);

    [Fact]
    public void Fits_from_LoadFromEnumerable_in_an_ML_NET_chain_and_predicts_the_labels_back()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(600, seed: 1));
        var test = ml.Data.LoadFromEnumerable(Rows(300, seed: 2));
        var model = Pipeline(ml).Fit(train);
        var scored = model.Transform(test);

        var score = scored.Schema["Score"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 3), score.Type);
        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        score.Annotations.GetValue("SlotNames", ref slotNames);
        Assert.Equal(Animals, slotNames.DenseValues().Select(n => n.ToString()));
        Assert.Equal(TextDataViewType.Instance, scored.Schema["PredictedLabel"].Type);

        var predicted = scored.GetColumn<string>("PredictedLabel").ToArray();
        var truth = Rows(300, seed: 2).Select(r => r.Label).ToArray();
        double accuracy = predicted.Zip(truth).Count(p => p.First == p.Second) / (double)truth.Length;
        Assert.True(accuracy > 0.9, $"accuracy {accuracy:P1}");
    }

    [Fact]
    public void Fits_from_LoadFromTextFile_as_from_LoadFromEnumerable()
    {
        string trainPath = WriteCsv(Rows(600, seed: 1)), testPath = WriteCsv(Rows(300, seed: 2));
        try
        {
            var fromText = Pipeline(new MLContext(seed: 3)).Fit(LoadCsv(new MLContext(), trainPath));
            var fromObjects = Pipeline(new MLContext(seed: 3)).Fit(new MLContext().Data.LoadFromEnumerable(Rows(600, seed: 1)));
            var test = LoadCsv(new MLContext(), testPath);
            // The CSV holds the same numbers (round-tripped through invariant text): the same seed gives the same model.
            var a = fromText.Transform(test).GetColumn<float[]>("Score").ToArray();
            var b = fromObjects.Transform(test).GetColumn<float[]>("Score").ToArray();
            Assert.Equal(300, a.Length);
            for (int i = 0; i < a.Length; i++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(b[i][c], a[i][c], 1e-4f);
        }
        finally
        {
            File.Delete(trainPath);
            File.Delete(testPath);
        }
    }

    [Fact]
    public void GetOutputSchema_of_the_unfitted_chain_matches_the_fitted_models_schema()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(90, seed: 1));
        var estimator = Pipeline(ml, epochs: 1);
        var shape = estimator.GetOutputSchema(SchemaShapes.Of(data.Schema));
        var schema = estimator.Fit(data).GetOutputSchema(data.Schema);

        Assert.True(SchemaShapes.Find(shape, "Score", out var score));
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.Equal(NumberDataViewType.Single, score.ItemType);
        Assert.True(SchemaShapes.Find(score.Annotations, "SlotNames", out _));
        Assert.True(SchemaShapes.Find(shape, "PredictedLabel", out var predicted));
        Assert.False(predicted.IsKey); // MapKeyToValue ran after the trainer: text again
        Assert.Equal(TextDataViewType.Instance, predicted.ItemType);
        foreach (var column in shape)
            Assert.NotNull(schema.GetColumnOrNull(column.Name));
    }

    [Fact]
    public void Trainer_output_shape_has_a_key_PredictedLabel_with_the_label_key_values()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Rows(30, seed: 1)))
            .Transform(ml.Data.LoadFromEnumerable(Rows(30, seed: 1)));
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(featureColumnName: nameof(AnimalRow.Weight));
        // Weight is a scalar, not a vector: the estimator says which column and what it expected.
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.GetOutputSchema(SchemaShapes.Of(data.Schema)));
        Assert.Contains("'Weight'", error.Message);
        Assert.Contains("known-size vector of Single", error.Message);

        var withFeatures = ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Age)).Fit(data).Transform(data);
        var shape = ml.MulticlassClassification.Trainers.NeuralNetwork().GetOutputSchema(SchemaShapes.Of(withFeatures.Schema));
        Assert.True(SchemaShapes.Find(shape, "PredictedLabel", out var predicted));
        Assert.True(predicted.IsKey);
        Assert.True(SchemaShapes.Find(predicted.Annotations, "KeyValues", out var keyValues));
        Assert.Equal(TextDataViewType.Instance, keyValues.ItemType);
    }

    [Fact]
    public void Evaluate_equals_the_engines_own_accuracy_and_log_loss()
    {
        var ml = new MLContext(seed: 1);
        var prepare = ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height), nameof(AnimalRow.Speed), nameof(AnimalRow.Age))
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Fit(ml.Data.LoadFromEnumerable(Rows(600, seed: 1)));
        var train = prepare.Transform(ml.Data.LoadFromEnumerable(Rows(600, seed: 1)));
        var test = prepare.Transform(ml.Data.LoadFromEnumerable(Rows(300, seed: 2)));
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(8), Layers.ReLU()], epochs: 5, learningRate: 0.05f).Fit(train);

        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));

        var examples = DataViewReader.Read(test, "Features", "Label");
        var probabilities = new float[examples.Count * 3];
        var predicted = new int[examples.Count];
        model.Score(examples.Features, examples.Count, probabilities, predicted);
        int correct = 0;
        double logLoss = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            int label = (int)examples.GetLabel(i);
            if (predicted[i] == label) correct++;
            logLoss -= Math.Log(Math.Max(probabilities[i * 3 + label], 1e-15));
        }
        Assert.Equal((double)correct / examples.Count, metrics.MicroAccuracy, 12);
        Assert.Equal(logLoss / examples.Count, metrics.LogLoss, 5);
        Assert.Equal(3, metrics.ConfusionMatrix.NumberOfClasses);
    }

    [Fact]
    public void PredictionEngine_equals_Transform()
    {
        var ml = new MLContext(seed: 2);
        var rows = Rows(120, seed: 5);
        var model = Pipeline(ml, epochs: 10).Fit(ml.Data.LoadFromEnumerable(Rows(300, seed: 1)));
        var transformed = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var scores = transformed.GetColumn<float[]>("Score").ToArray();
        var labels = transformed.GetColumn<string>("PredictedLabel").ToArray();

        var engine = ml.Model.CreatePredictionEngine<AnimalRow, AnimalPrediction>(model);
        for (int i = 0; i < rows.Length; i++)
        {
            var prediction = engine.Predict(rows[i]);
            Assert.Equal(labels[i], prediction.PredictedLabel);
            for (int c = 0; c < 3; c++) Assert.Equal(scores[i][c], prediction.Score[c], 1e-5f);
        }
    }

    [Fact]
    public void CrossValidate_trains_and_evaluates_every_fold()
    {
        var ml = new MLContext(seed: 1);
        var prepare = ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height), nameof(AnimalRow.Speed), nameof(AnimalRow.Age))
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"));
        var data = ml.Data.LoadFromEnumerable(Rows(450, seed: 1));
        var prepared = prepare.Fit(data).Transform(data);
        var results = ml.MulticlassClassification.CrossValidate(prepared,
            ml.MulticlassClassification.Trainers.NeuralNetwork(layers: [Layers.Dense(16), Layers.ReLU()], epochs: 20, batchSize: 16, learningRate: 0.1f),
            numberOfFolds: 3);
        Assert.Equal(3, results.Count);
        Assert.All(results, r => Assert.True(r.Metrics.MicroAccuracy > 0.85, $"fold {r.Fold}: {r.Metrics.MicroAccuracy:P1}"));
        Assert.Equal(450, results.Sum(r => r.ScoredHoldOutSet.GetColumn<uint>("PredictedLabel").Count()));
    }

    [Fact]
    public void Transform_gives_the_same_rows_through_batches_and_one_row_at_a_time()
    {
        // Over the block size of the batched cursor (1024 rows), with pass-through columns read alongside the scores.
        var ml = new MLContext(seed: 4);
        var model = Pipeline(ml, epochs: 2).Fit(ml.Data.LoadFromEnumerable(Rows(300, seed: 1)));
        var rows = Rows(2500, seed: 9);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var weights = scored.GetColumn<float>(nameof(AnimalRow.Weight)).ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        Assert.Equal(rows.Select(r => r.Weight), weights);
        var engine = ml.Model.CreatePredictionEngine<AnimalRow, AnimalPrediction>(model);
        foreach (int i in new[] { 0, 1023, 1024, 2047, 2048, 2499 })
        {
            var one = engine.Predict(rows[i]).Score;
            for (int c = 0; c < 3; c++) Assert.Equal(one[c], scores[i][c], 1e-5f);
        }
    }

    [Fact]
    public void The_lottery_ticket_estimator_works_in_an_ML_NET_chain()
    {
        var ml = new MLContext(seed: 1);
        var options = new global::Microsoft.ML.Sparsity.LotteryTickets.IterativeMagnitudePruningOptions { Levels = 2, PruningRate = 0.5 };
        (options.Training.Layers, options.Training.Epochs, options.Training.BatchSize) = ([Layers.Dense(32), Layers.ReLU()], 15, 16);
        options.Training.Optimizer = new SgdOptimizerOptions { LearningRate = 0.1f };
        var estimator = ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height), nameof(AnimalRow.Speed), nameof(AnimalRow.Age))
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.Sparsity().LotteryTicket(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var train = ml.Data.LoadFromEnumerable(Rows(600, seed: 1));
        Assert.True(SchemaShapes.Find(estimator.GetOutputSchema(SchemaShapes.Of(train.Schema)), "Score", out _));
        var model = estimator.Fit(train);

        // The last level's ticket: a quarter of the hidden weights kept (the output layer at half the rate).
        var network = model.OfType<NeuralNetworkMulticlassModel>().Single();
        Assert.Equal(0.25, network.GetSparsityReport().Layers[0].Density, 2);
        var rows = Rows(200, seed: 2);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var labels = scored.GetColumn<string>("PredictedLabel").ToArray();
        Assert.True(labels.Zip(rows).Count(p => p.First == p.Second.Label) > 0.85 * rows.Length);
        var engine = ml.Model.CreatePredictionEngine<AnimalRow, AnimalPrediction>(model);
        Assert.Equal(labels.Take(20), rows.Take(20).Select(r => engine.Predict(r).PredictedLabel));
    }

    [Fact]
    public void The_MLContext_seed_makes_training_reproducible_and_Options_Seed_overrides_it()
    {
        float[] Scores(int contextSeed, int? optionsSeed)
        {
            var ml = new MLContext(seed: contextSeed);
            var data = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height)))
                .Fit(ml.Data.LoadFromEnumerable(Rows(60, seed: 1))).Transform(ml.Data.LoadFromEnumerable(Rows(60, seed: 1)));
            var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = [Layers.Dense(4)], Epochs = 1, Seed = optionsSeed,
            }).Fit(data);
            return model.Transform(data).GetColumn<float[]>("Score").First();
        }

        Assert.Equal(Scores(1, null), Scores(1, null));
        Assert.NotEqual(Scores(1, null), Scores(2, null));
        Assert.Equal(Scores(1, 7), Scores(2, 7));
    }

    [Fact]
    public void Bad_columns_are_named_with_what_was_expected()
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(Rows(30, seed: 1));
        var features = ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height)).Fit(raw).Transform(raw);
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(epochs: 1);

        // The label is text, not a key: say which conversion to add.
        var notKey = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(features));
        Assert.Contains("label column 'Label'", notKey.Message);
        Assert.Contains("MapValueToKey(\"Label\")", notKey.Message);

        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(features).Transform(features);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(featureColumnName: "Pixels").Fit(keyed));
        Assert.Contains("'Pixels' was not found", missing.Message);
        Assert.Contains("'Features'", missing.Message); // lists the columns there are

        var missingLabel = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(labelColumnName: "Class").Fit(keyed));
        Assert.Contains("label column 'Class' was not found", missingLabel.Message);

        var scalar = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(featureColumnName: nameof(AnimalRow.Age)).Fit(keyed));
        Assert.Contains("feature column 'Age'", scalar.Message);

        // At prediction: a features column of another size, and a label key with more values than the model's classes.
        var model = trainer.Fit(keyed);
        var wider = ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height), nameof(AnimalRow.Age)).Fit(raw).Transform(raw);
        var size = Assert.Throws<ArgumentOutOfRangeException>(() => model.Transform(wider));
        Assert.Contains("expects 2 feature values", size.Message);
        Assert.Contains("'Features'", size.Message);

        var fourClasses = ml.Data.LoadFromEnumerable(Rows(30, seed: 1).Select((r, i) => { if (i == 0) r.Label = "fish"; return r; }).ToArray());
        var manyKeys = ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label")).Fit(fourClasses).Transform(fourClasses);
        var keys = Assert.Throws<ArgumentOutOfRangeException>(() => model.Transform(manyKeys));
        Assert.Contains("4 key values", keys.Message);
        Assert.Contains("3 classes", keys.Message);
    }

    [Fact]
    public void The_label_check_at_prediction_follows_the_trained_label_column_and_continuing_training_needs_the_same_key_values()
    {
        var ml = new MLContext(seed: 1);
        IDataView Prepared(AnimalRow[] rows, string labelColumn) =>
            ml.Transforms.Concatenate("Features", nameof(AnimalRow.Weight), nameof(AnimalRow.Height))
                .Append(ml.Transforms.Conversion.MapValueToKey(labelColumn, nameof(AnimalRow.Label)))
                .Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(labelColumnName: "Class", epochs: 1);
        var model = trainer.Fit(Prepared(Rows(30, seed: 1), "Class"));
        Assert.Equal("Class", model.LabelColumnName);

        var fourClasses = Rows(30, seed: 1).Select((r, i) => { if (i == 0) r.Label = "fish"; return r; }).ToArray();
        // An unrelated key column named "Label" is not the model's business; its own label column is checked.
        Assert.Equal(30, model.Transform(Prepared(fourClasses, "Label")).GetColumn<uint>("PredictedLabel").Count());
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => model.Transform(Prepared(fourClasses, "Class")));
        Assert.Contains("'Class' has 4 key values", error.Message);

        // Continuing training on keys of another order would train permuted classes: refused, naming both orders.
        var reordered = Rows(30, seed: 1).Reverse().ToArray();
        var permuted = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(Prepared(reordered, "Class"), model));
        Assert.Contains("[bird, dog, cat]", permuted.Message);
        Assert.Contains("[cat, dog, bird]", permuted.Message);
    }

    [Fact]
    public void A_variable_size_feature_vector_is_refused()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new VariableRow { Features = [1f, 2f], Label = 0 }, new VariableRow { Features = [1f], Label = 1 } });
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(epochs: 1).Fit(data));
        Assert.Contains("known-size vector of Single", error.Message);
    }

    public sealed class VariableRow
    {
        public float[] Features { get; set; } = [];

        [KeyType(3)]
        public uint Label { get; set; }
    }

    [Fact]
    public void NaN_features_are_refused_in_training_with_the_row_and_give_a_missing_prediction()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 20).Select(i => new FixedRow { Features = [i % 2, 1 - i % 2], Label = (uint)(i % 2) }).ToArray();
        rows[13].Features[1] = float.NaN;
        var error = Assert.Throws<InvalidDataException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(epochs: 1).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("Row 13, slot 1", error.Message);

        rows[13].Features[1] = 0;
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(epochs: 1).Fit(ml.Data.LoadFromEnumerable(rows));
        var scored = model.Transform(ml.Data.LoadFromEnumerable(new[] { new FixedRow { Features = [float.NaN, 0], Label = 0 } }));
        Assert.True(float.IsNaN(scored.GetColumn<float[]>("Score").Single()[0]));
        Assert.Equal(0u, scored.GetColumn<uint>("PredictedLabel").Single()); // the missing key: no class
    }

    /// <summary>LoadFromEnumerable reads a [KeyType(n)] member as a 0-based index (0 … n−1; stored as key 1 … n).</summary>
    public sealed class FixedRow
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];

        [KeyType(2)]
        public uint Label { get; set; }
    }

    [Fact]
    public void The_two_ML_NET_internals_the_package_reaches_still_exist()
    {
        // If this fails, ML.NET changed IInternalCatalog.Environment or SchemaShape.Column's constructor: update Engine/MLNetInternals.cs.
        var ml = new MLContext(seed: 1);
        var environment = global::Microsoft.ML.Sparsity.Engine.MLNetInternals.EnvironmentOf(ml.MulticlassClassification.Trainers);
        Assert.Same(environment, global::Microsoft.ML.Sparsity.Engine.MLNetInternals.EnvironmentOf(ml.Transforms)); // the context's own environment, which MLContext.Log listens to
        var messages = new List<string>();
        ml.Log += (_, e) => messages.Add(e.Message);
        new SparsityHost(environment, "Probe").WriteLog("hello from the probe");
        Assert.Contains(messages, m => m.Contains("hello from the probe"));
        var column = global::Microsoft.ML.Sparsity.Engine.MLNetInternals.Column("X", SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, []);
        Assert.Equal("X", column.Name);
        Assert.Equal(NumberDataViewType.Single, column.ItemType);
        Assert.Throws<ArgumentException>(() => global::Microsoft.ML.Sparsity.Engine.MLNetInternals.EnvironmentOf(new object()));
    }
}
