using System.Collections.Concurrent;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Tests.Inference;
using Microsoft.ML.Sparsity.Tests.Masks;
using Xunit;
using Xunit.Abstractions;

namespace Microsoft.ML.Sparsity.Tests.Api;

/// <summary>
/// Careless use of the public API: non-finite features on every scoring path and in training, a
/// <c>PredictionEngine</c> shared between threads, and cursors and rows used after they were disposed.
/// </summary>
public sealed class MisuseTests(ITestOutputHelper output)
{
    public sealed class Input
    {
        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    public sealed class Output
    {
        public float[]? Score { get; set; }
        public uint PredictedLabel { get; set; }
    }

    public sealed class BinaryOutput
    {
        public float Score { get; set; }
        public float Probability { get; set; }
        public bool PredictedLabel { get; set; }
    }

    public sealed class RegressionOutput
    {
        public float Score { get; set; }
    }

    /// <summary>The input no weight of the first layer reads: a sparse format never touches it, a dense one multiplies it by 0.</summary>
    private const int Unread = 5;

    private readonly MLContext _ml = new(seed: 1);

    /// <summary>LeNet-300-100-<paramref name="outputs"/>, dense or pruned (90% unstructured or 2:4), with input <see cref="Unread"/> cut off.</summary>
    private static SequentialNetwork Network(string kind, int outputs = 10)
    {
        SequentialNetwork network = SparsityTestNetworks.Build([784], 1, [.. Layers.LeNet300100(), Layers.Dense(outputs) with { Name = "output" }]);
        if (kind != "dense")
            SparsityTestNetworks.PruneNow(network, new PruningOptions
            {
                Pattern = kind == "2:4" ? SparsityPattern.NM(2, 4) : SparsityPattern.Unstructured,
                TargetSparsity = 0.9,
                LeaveMisfitLayersDense = true,
            });
        var first = (DenseLayer)network.Layers[0];
        for (int o = 0; o < first.Outputs; o++)
        {
            first.Weight.Value[o * first.Inputs + Unread] = 0;
            if (first.Weight.Mask is { } mask) mask[o * first.Inputs + Unread] = 0;
        }
        return network;
    }

    private static NeuralNetworkMulticlassModel Model(string kind) => new(Network(kind), 10, null, "Features", []);

    private static float[][] Rows(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, 784).Select(_ => random.NextSingle()).ToArray()).ToArray();
    }

    private IDataView View(float[][] rows) => _ml.Data.LoadFromEnumerable(rows.Select(r => new Input { Features = r }));

    public static TheoryData<string, int, float> NonFiniteCases()
    {
        var cases = new TheoryData<string, int, float>();
        foreach (string kind in new[] { "dense", "90%", "2:4" })
        foreach (int position in new[] { 0, Unread, 391, 783 })
        foreach (float value in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            cases.Add(kind, position, value);
        return cases;
    }

    [Theory]
    [MemberData(nameof(NonFiniteCases))]
    public void A_non_finite_feature_gives_NaN_scores_and_a_missing_label_on_every_path(string kind, int position, float value)
    {
        NeuralNetworkMulticlassModel model = Model(kind);
        float[][] rows = Rows(6, 3);
        var (cleanScores, cleanLabels) = ScoredRows.Read(model.Transform(View(rows)));
        rows[2][position] = value;

        // Batch scoring (Transform, a cursor): the row is NaN with key 0 (missing), its neighbours in the batch unchanged.
        var (scores, labels) = ScoredRows.Read(model.Transform(View(rows)));
        for (int r = 0; r < rows.Length; r++)
        {
            if (r == 2)
            {
                Assert.All(scores.AsSpan(20, 10).ToArray(), s => Assert.True(float.IsNaN(s), $"Transform: score {s}"));
                Assert.Equal(0u, labels[2]);
            }
            else
            {
                Assert.Equal(cleanScores.AsSpan(r * 10, 10).ToArray(), scores.AsSpan(r * 10, 10).ToArray());
                Assert.Equal(cleanLabels[r], labels[r]);
            }
        }

        // Single-example scoring (ML.NET's PredictionEngine, the model's row mapper): the same.
        Output single = _ml.Model.CreatePredictionEngine<Input, Output>(model).Predict(new Input { Features = rows[2] });
        Assert.All(single.Score!, s => Assert.True(float.IsNaN(s), $"PredictionEngine: score {s}"));
        Assert.Equal(0u, single.PredictedLabel);

        // The engine's own single-example path under both: no label (-1).
        var own = new float[10];
        Assert.Equal(-1, model.Predict(rows[2], own));
        Assert.All(own, s => Assert.True(float.IsNaN(s)));
    }

    [Theory]
    [InlineData("dense")]
    [InlineData("90%")]
    public void Binary_and_regression_models_give_NaN_scores_for_a_non_finite_feature_on_both_paths(string kind)
    {
        var binary = new NeuralNetworkBinaryModel(Network(kind, outputs: 1), "Features", []);
        var regression = new NeuralNetworkRegressionModel(Network(kind, outputs: 1), "Features", []);
        foreach (int position in new[] { 0, Unread })
        {
            float[][] rows = Rows(3, 4);
            rows[1][position] = float.NaN;
            IDataView data = View(rows);

            IDataView binaryScored = binary.Transform(data);
            float[] batchScores = binaryScored.GetColumn<float>("Score").ToArray();
            float[] batchProbabilities = binaryScored.GetColumn<float>("Probability").ToArray();
            bool[] batchLabels = binaryScored.GetColumn<bool>("PredictedLabel").ToArray();
            BinaryOutput single = _ml.Model.CreatePredictionEngine<Input, BinaryOutput>(binary).Predict(new Input { Features = rows[1] });
            Assert.True(float.IsNaN(batchScores[1]) && float.IsNaN(batchProbabilities[1]) && !batchLabels[1], $"Transform, feature {position}");
            Assert.True(float.IsNaN(single.Score) && float.IsNaN(single.Probability) && !single.PredictedLabel, $"PredictionEngine, feature {position}");
            Assert.True(float.IsFinite(batchScores[0]) && float.IsFinite(batchScores[2]));

            float[] regressionScores = regression.Transform(data).GetColumn<float>("Score").ToArray();
            RegressionOutput regressionSingle = _ml.Model.CreatePredictionEngine<Input, RegressionOutput>(regression).Predict(new Input { Features = rows[1] });
            Assert.True(float.IsNaN(regressionScores[1]) && float.IsNaN(regressionSingle.Score), $"regression, feature {position}");
            Assert.True(float.IsFinite(regressionScores[0]) && float.IsFinite(regressionScores[2]));
        }
    }

    public sealed class ColorRow
    {
        [VectorType(3)]
        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    public sealed class ColorPrediction
    {
        public string? PredictedLabel { get; set; }
    }

    [Fact]
    public void A_missing_predicted_key_maps_back_to_an_empty_label()
    {
        string[] colors = ["red", "green", "blue"];
        var rows = Enumerable.Range(0, 30).Select(i => new ColorRow { Features = [i % 3 == 0 ? 1 : 0, i % 3 == 1 ? 1 : 0, i % 3 == 2 ? 1 : 0], Label = colors[i % 3] }).ToArray();
        IDataView data = _ml.Data.LoadFromEnumerable(rows);
        var pipeline = _ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(_ml.MulticlassClassification.Trainers.NeuralNetwork(layers: [], epochs: 2))
            .Append(_ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(data);
        var engine = _ml.Model.CreatePredictionEngine<ColorRow, ColorPrediction>(pipeline);
        Assert.Contains(engine.Predict(rows[0]).PredictedLabel, colors);
        Assert.Equal("", engine.Predict(new ColorRow { Features = [1, float.NaN, 0] }).PredictedLabel);
        var batch = pipeline.Transform(_ml.Data.LoadFromEnumerable(new[] { rows[0], new ColorRow { Features = [1, float.NaN, 0] } }));
        Assert.Equal("", batch.GetColumn<string>("PredictedLabel").Last());
    }

    public sealed class ImageRow
    {
        [VectorType(8, 8, 1)] public float[] Features { get; set; } = [];
        [KeyType(3)] public uint Label { get; set; }
        [VectorType(2, 2, 16)] public float[] Dct { get; set; } = [];
    }

    [Fact]
    public void The_frequency_domain_transform_passes_a_non_finite_pixel_on_alike_on_both_paths()
    {
        var random = new Random(11);
        var rows = Enumerable.Range(0, 12).Select(i => new ImageRow { Features = Enumerable.Range(0, 64).Select(_ => random.NextSingle()).ToArray(), Label = (uint)(i % 3) }).ToArray();
        var transform = _ml.Transforms.ConvertToFrequencyDomain(new Sparsity.FrequencyDomain.FrequencyDomainEstimator.Options { BlockSize = 4, OutputColumnName = "Dct" })
            .Fit(_ml.Data.LoadFromEnumerable(rows));
        rows[4].Features[9] = float.NaN;           // block (0, 0)
        rows[7].Features[63] = float.NegativeInfinity; // block (1, 1)
        IDataView input = _ml.Data.LoadFromEnumerable(rows);
        float[][] batch = transform.Transform(input).GetColumn<float[]>("Dct").ToArray();
        var engine = _ml.Model.CreatePredictionEngine<ImageRow, ImageRow>(transform, inputSchema: input.Schema);
        for (int r = 0; r < rows.Length; r++)
            Assert.Equal(batch[r], engine.Predict(rows[r]).Dct); // NaN equals NaN here
        Assert.Equal(16, batch[4].Count(v => float.IsNaN(v)));
        Assert.Equal(16, batch[7].Count(v => !float.IsFinite(v))); // ±∞ (each coefficient weighs the pixel by a non-zero cosine)
        Assert.All(batch[0], v => Assert.True(float.IsFinite(v)));
    }

    public sealed class SmallRow
    {
        [VectorType(3)]
        public float[] Features { get; set; } = [];
        public bool Flag { get; set; }
        public float Target { get; set; }
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Every_trainer_refuses_a_non_finite_feature_naming_the_column_row_and_slot(float value)
    {
        var rows = Enumerable.Range(0, 12).Select(i => new SmallRow { Features = [i % 2, 1, i], Flag = i % 2 == 0, Target = i }).ToArray();
        rows[7].Features[2] = value;
        IDataView data = _ml.Data.LoadFromEnumerable(rows);
        IDataView keyed = _ml.Transforms.Conversion.MapValueToKey("Label", "Flag").Fit(data).Transform(data);
        var errors = new Exception[]
        {
            Assert.Throws<InvalidDataException>(() => _ml.MulticlassClassification.Trainers.NeuralNetwork(epochs: 1).Fit(keyed)),
            Assert.Throws<InvalidDataException>(() => _ml.BinaryClassification.Trainers.NeuralNetwork(labelColumnName: "Flag", epochs: 1).Fit(data)),
            Assert.Throws<InvalidDataException>(() => _ml.Regression.Trainers.NeuralNetwork(labelColumnName: "Target", epochs: 1).Fit(data)),
        };
        Assert.All(errors, e => Assert.Contains($"Row 7, slot 2 of the feature column 'Features': the value is {value}", e.Message));
    }

    [Fact]
    public void A_prediction_engine_used_from_two_threads_at_once_throws()
    {
        // A wide dense layer makes one prediction take longer than the threads take to wake at the barrier, so the calls overlap.
        SequentialNetwork wide = SparsityTestNetworks.Build([784], 1, Layers.Dense(2048), Layers.ReLU(), Layers.Dense(10) with { Name = "output" });
        var model = new NeuralNetworkMulticlassModel(wide, 10, null, "Features", []);
        var engine = _ml.Model.CreatePredictionEngine<Input, Output>(model);
        Input[] candidates = Rows(16, 5).Select(r => new Input { Features = r }).ToArray();
        Output[] labelled = candidates.Select(engine.Predict).ToArray();
        int other = Array.FindIndex(labelled, o => o.PredictedLabel != labelled[0].PredictedLabel);
        Input[] inputs = [candidates[0], candidates[other]];
        Output[] expected = [labelled[0], labelled[other]];
        Assert.NotEqual(expected[0].PredictedLabel, expected[1].PredictedLabel); // a mix-up would show in the label

        // Both threads are released together for each call, until one of them is told it is sharing the engine.
        const int MostCalls = 100_000;
        using var together = new Barrier(2);
        var failures = new ConcurrentQueue<Exception>();
        int wrong = 0, calls = 0;
        bool stop = false;
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            var result = new Output();
            for (int i = 0; i < MostCalls && !Volatile.Read(ref stop); i++)
            {
                together.SignalAndWait();
                try
                {
                    engine.Predict(inputs[t], ref result);
                    Interlocked.Increment(ref calls);
                    if (result.PredictedLabel != expected[t].PredictedLabel) Interlocked.Increment(ref wrong);
                }
#pragma warning disable CA1031 // Every failure is collected and asserted on below; a thread that died would leave the other at the barrier.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    failures.Enqueue(e);
                    Volatile.Write(ref stop, true);
                }
            }
            together.RemoveParticipant();
        })).ToArray();
        foreach (Thread thread in threads) thread.Start();
        foreach (Thread thread in threads) thread.Join();
        output.WriteLine($"{failures.Count} thread(s) stopped after {calls} completed calls, {wrong} of them with the other thread's label.");

        Assert.NotEmpty(failures);
        Assert.All(failures, e =>
        {
            Assert.IsType<InvalidOperationException>(e);
            Assert.Contains("A PredictionEngine is not thread-safe", e.Message);
            Assert.Contains("one PredictionEngine per thread", e.Message);
            Assert.Contains("PredictionEnginePool", e.Message);
        });

        // The engine is still good for one thread at a time.
        for (int t = 0; t < 2; t++)
            Assert.Equal(expected[t].Score, engine.Predict(inputs[t]).Score);
    }

    [Fact]
    public void A_prediction_engine_taken_in_turns_by_two_threads_gives_the_sequential_results()
    {
        NeuralNetworkMulticlassModel model = Model("90%");
        var engine = _ml.Model.CreatePredictionEngine<Input, Output>(model);
        Input[] inputs = Rows(16, 6).Select(r => new Input { Features = r }).ToArray();
        Output[] expected = inputs.Select(engine.Predict).ToArray();
        object turn = new();
        int wrong = 0;
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            var result = new Output();
            for (int i = 0; i < 2_000; i++)
            {
                int row = (i * 5 + t * 3) % inputs.Length;
                lock (turn) engine.Predict(inputs[row], ref result);
                if (!result.Score!.AsSpan().SequenceEqual(expected[row].Score) || result.PredictedLabel != expected[row].PredictedLabel)
                    Interlocked.Increment(ref wrong);
            }
        })).ToArray();
        foreach (Thread thread in threads) thread.Start();
        foreach (Thread thread in threads) thread.Join();
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void Transform_read_by_several_threads_with_cursors_of_their_own_gives_the_sequential_results()
    {
        NeuralNetworkMulticlassModel model = Model("90%");
        IDataView scored = model.Transform(View(Rows(3000, 7)));
        var (scores, labels) = ScoredRows.Read(scored);
        var results = new (float[] Scores, uint[] Labels)[4];
        var threads = Enumerable.Range(0, results.Length).Select(t => new Thread(() => results[t] = ScoredRows.Read(scored))).ToArray();
        foreach (Thread thread in threads) thread.Start();
        foreach (Thread thread in threads) thread.Join();
        Assert.All(results, r =>
        {
            Assert.Equal(scores, r.Scores);
            Assert.Equal(labels, r.Labels);
        });
    }

    [Fact]
    public void A_cursor_over_scored_rows_refuses_use_after_it_was_disposed()
    {
        IDataView scored = Model("90%").Transform(View(Rows(3, 8)));
        var cursor = scored.GetRowCursor(scored.Schema);
        var getScore = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
        VBuffer<float> score = default;
        Assert.True(cursor.MoveNext());
        getScore(ref score);
        cursor.Dispose();
        cursor.Dispose(); // twice is allowed

        foreach (var use in new Action[]
        {
            () => cursor.MoveNext(),
            () => getScore(ref score),
            () => cursor.GetGetter<uint>(scored.Schema["PredictedLabel"]),
        })
        {
            var e = Assert.Throws<ObjectDisposedException>(use);
            Assert.Equal("DataViewRowCursor", e.ObjectName);
            Assert.Contains("was disposed", e.Message);
        }
    }

    [Fact]
    public void A_row_of_the_row_mapper_refuses_use_after_it_was_disposed()
    {
        NeuralNetworkMulticlassModel model = Model("90%");
        IDataView data = View(Rows(2, 9));
        var mapper = model.GetRowToRowMapper(data.Schema);
        var input = data.GetRowCursor(data.Schema);
        var row = mapper.GetRow(input, mapper.OutputSchema);
        var getLabel = row.GetGetter<uint>(mapper.OutputSchema["PredictedLabel"]);
        uint label = 0;
        Assert.True(input.MoveNext());
        getLabel(ref label);
        Assert.InRange(label, 1u, 10u);
        row.Dispose();

        foreach (var use in new Action[] { () => getLabel(ref label), () => row.GetGetter<VBuffer<float>>(mapper.OutputSchema["Score"]) })
        {
            var e = Assert.Throws<ObjectDisposedException>(use);
            Assert.Equal("DataViewRow", e.ObjectName);
        }
    }

    [Fact]
    public void Disposing_a_prediction_engine_leaves_the_model_usable()
    {
        // ML.NET's CreatePredictionEngine gives the engine the transformer to own: disposing the engine disposes an
        // IDisposable model. The package's public types hold nothing to release, so none is IDisposable and a model
        // outlives the engines made from it.
        var disposable = typeof(NeuralNetworkModel).Assembly.GetExportedTypes().Where(t => typeof(IDisposable).IsAssignableFrom(t));
        Assert.Empty(disposable);

        NeuralNetworkMulticlassModel model = Model("90%");
        var input = new Input { Features = Rows(1, 10)[0] };
        Output first;
        using (var engine = _ml.Model.CreatePredictionEngine<Input, Output>(model))
            first = engine.Predict(input);
        Assert.Equal(first.Score, _ml.Model.CreatePredictionEngine<Input, Output>(model).Predict(input).Score);
        Assert.Equal(first.PredictedLabel, ScoredRows.Read(model.Transform(View([input.Features]))).Predicted.Single());
    }
}
