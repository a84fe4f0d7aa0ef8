using System.Globalization;
using System.IO.Compression;
using Google.Protobuf;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Export.Onnx;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Api;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Serialization;

/// <summary>
/// Models saved with ML.NET's own <c>mlContext.Model.Save</c>: the portable part loads and predicts in an application
/// that references only ML.NET and OnnxTransformer (test/PortableModelConsumer, run as a child process), and
/// <c>mlContext.Sparsity().LoadModel</c> restores the fast transformer from the model file riding along.
/// </summary>
public sealed class PortableModelTests : IDisposable
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("sparsity-portable-");

    public void Dispose() => _directory.Delete(recursive: true);

    /// <summary>Concatenate → NormalizeMinMax → MapValueToKey → a 90%-pruned network, trained on the workout data.</summary>
    private static (ITransformer Model, IDataView Train) Fitted(MLContext ml)
    {
        var train = ml.Data.LoadFromEnumerable(WorkoutTests.Rows(600, seed: 1));
        var pipeline = ml.Transforms.Concatenate("Features", "Weight", "Height", "Speed", "Age")
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
            {
                Layers = [global::Microsoft.ML.Sparsity.Network.Layers.Dense(64), global::Microsoft.ML.Sparsity.Network.Layers.ReLU()],
                Epochs = 20,
                BatchSize = 16,
                Optimizer = new SgdOptimizerOptions { LearningRate = 0.1f },
                Sparsity = ml.Sparsity().GradualMagnitudePruning(0.9),
            }));
        return (pipeline.Fit(train), train);
    }

    private string WriteCsv(WorkoutTests.AnimalRow[] rows)
    {
        string path = Path.Combine(_directory.FullName, "rows.csv");
        File.WriteAllLines(path, rows.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Weight:R},{r.Height:R},{r.Speed:R},{r.Age:R},{r.Label}")));
        return path;
    }

    private static string[] RunConsumer(string model, string csv, string output)
    {
        var run = ChildProcesses.Run("dotnet", [ChildProcesses.BuiltOutput("test/PortableModelConsumer", "PortableModelConsumer.dll"), model, csv, output], timeoutMilliseconds: 120_000);
        Assert.True(run.Exit == 0, $"The consumer failed ({run.Exit}): {run.Error}{run.Out}");
        return File.ReadAllLines(output);
    }

    [Fact]
    public void A_saved_pipeline_loads_and_predicts_in_an_application_without_the_package()
    {
        var ml = new MLContext(seed: 1);
        var (model, train) = Fitted(ml);
        string zip = Path.Combine(_directory.FullName, "model.zip");
        ml.Model.Save(model, train.Schema, zip);

        var rows = WorkoutTests.Rows(200, seed: 7);
        string csv = WriteCsv(rows);
        var lines = RunConsumer(zip, csv, Path.Combine(_directory.FullName, "out.tsv"));

        Assert.Equal("Score\tVector<Single, 3>", lines[0]);
        Assert.Equal("PredictedLabel\tKey<UInt32, 0-2>\tcat|dog|bird", lines[1]);
        var original = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var scores = original.GetColumn<float[]>("Score").ToArray();
        var keys = original.GetColumn<uint>("PredictedLabel").ToArray();
        Assert.Equal(rows.Length, lines.Length - 2);
        for (int i = 0; i < rows.Length; i++)
        {
            var fields = lines[i + 2].Split('\t');
            Assert.Equal(keys[i], uint.Parse(fields[0], CultureInfo.InvariantCulture));
            Assert.Equal(new[] { "cat", "dog", "bird" }[keys[i] - 1], fields[1]);
            for (int c = 0; c < 3; c++)
                Assert.Equal(scores[i][c], float.Parse(fields[2 + c], CultureInfo.InvariantCulture), 1e-5f);
        }
    }

    [Fact]
    public void LoadModel_restores_the_fast_transformer_bit_identically_with_its_weight_formats()
    {
        var ml = new MLContext(seed: 1);
        var (fitted, train) = Fitted(ml);
        // The layers are tiny (4→64→3), so which format measures fastest is a close call: ask for CSR, and the restored
        // model must keep that request, whatever this machine's timings.
        ITransformer[] parts = [.. (IEnumerable<ITransformer>)fitted];
        var model = new TransformerChain<ITransformer>([.. parts[..^1], ((NeuralNetworkMulticlassModel)parts[^1]).WithWeightFormats(global::Microsoft.ML.Sparsity.Inference.WeightFormat.Csr)]);
        string zip = Path.Combine(_directory.FullName, "model.zip");
        ml.Model.Save(model, train.Schema, zip);

        var restored = ml.Sparsity().LoadModel(zip, out var schema);
        Assert.Equal(train.Schema.Select(c => c.Name), schema.Select(c => c.Name));
        var original = ((IEnumerable<ITransformer>)model).OfType<NeuralNetworkMulticlassModel>().Single();
        var network = Assert.IsType<NeuralNetworkMulticlassModel>(((IEnumerable<ITransformer>)restored).Last());
        Assert.Equal(original.WeightFormats, network.WeightFormats);
        Assert.Contains(network.WeightFormats, f => f.SingleExample != global::Microsoft.ML.Sparsity.Inference.WeightFormat.Dense);

        var test = ml.Data.LoadFromEnumerable(WorkoutTests.Rows(100, seed: 3));
        Assert.Equal(model.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s), restored.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s));
        // The restored pipeline saves again, and a following MapKeyToValue works on both.
        var text = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(restored.Transform(test)).Transform(restored.Transform(test));
        Assert.All(text.GetColumn<string>("PredictedLabel"), label => Assert.Contains(label, new[] { "cat", "dog", "bird" }));
        ml.Model.Save(restored, schema, Path.Combine(_directory.FullName, "again.zip"));
    }

    [Fact]
    public void The_portable_model_loaded_by_ML_NET_scores_as_the_original_and_keeps_the_output_schema()
    {
        var ml = new MLContext(seed: 1);
        var (model, train) = Fitted(ml);
        string zip = Path.Combine(_directory.FullName, "model.zip");
        ml.Model.Save(model, train.Schema, zip);
        var test = ml.Data.LoadFromEnumerable(WorkoutTests.Rows(100, seed: 3));
        var loaded = ml.Model.Load(zip, out _);
        try
        {
            var a = model.Transform(test);
            var b = loaded.Transform(test);
            foreach (string name in new[] { "Score", "PredictedLabel" })
                Assert.Equal(a.Schema[name].Type, b.Schema[name].Type);
            VBuffer<ReadOnlyMemory<char>> slots = default;
            b.Schema["Score"].Annotations.GetValue("SlotNames", ref slots);
            Assert.Equal(["cat", "dog", "bird"], slots.DenseValues().Select(s => s.ToString()));
            Assert.Equal(a.Schema.Where(c => !c.IsHidden).Select(c => c.Name), b.Schema.Where(c => !c.IsHidden).Select(c => c.Name));
            var metricsA = ml.MulticlassClassification.Evaluate(a);
            var metricsB = ml.MulticlassClassification.Evaluate(b);
            Assert.Equal(metricsA.MicroAccuracy, metricsB.MicroAccuracy);
            Assert.Equal(metricsA.LogLoss, metricsB.LogLoss, 5);
        }
        finally
        {
            ((IDisposable)loaded).Dispose();
        }
    }

    /// <summary>Rewrites the ride-along model of the zip's first ONNX entry with <paramref name="change"/>.</summary>
    private static string RewriteRideAlong(string zip, Func<string, string> change)
    {
        using var archive = ZipFile.Open(zip, ZipArchiveMode.Update);
        var entry = archive.Entries.First(e => e.Name == "OnnxModel");
        ModelProto onnx;
        using (var reader = new BinaryReader(entry.Open()))
            onnx = ModelProto.Parser.ParseFrom(reader.ReadBytes(reader.ReadInt32()));
        var property = onnx.MetadataProps.Single(p => p.Key == PortableModel.RideAlongKey);
        property.Value = change(property.Value);
        byte[] bytes = onnx.ToByteArray();
        string name = entry.FullName;
        entry.Delete();
        using (var writer = new BinaryWriter(archive.CreateEntry(name).Open()))
        {
            writer.Write(bytes.Length);
            writer.Write(bytes);
        }
        return name;
    }

    [Fact]
    public void A_damaged_ride_along_model_is_named_while_the_portable_part_still_loads()
    {
        var ml = new MLContext(seed: 1);
        var (model, train) = Fitted(ml);
        string zip = Path.Combine(_directory.FullName, "model.zip");
        ml.Model.Save(model, train.Schema, zip);
        string entry = RewriteRideAlong(zip, value => value[..(value.Length / 2)] + "%%" + value[(value.Length / 2 + 2)..]);

        var error = Assert.Throws<ModelFormatException>(() => ml.Sparsity().LoadModel(zip, out _));
        Assert.Equal(entry, error.Entry);
        Assert.Contains(zip, error.Message);
        Assert.Contains("still loads with mlContext.Model.Load", error.Message);
        using var portable = (IDisposable)ml.Model.Load(zip, out _);
    }

    [Fact]
    public void A_ride_along_model_from_a_newer_package_version_says_to_update()
    {
        var ml = new MLContext(seed: 1);
        var (model, train) = Fitted(ml);
        string zip = Path.Combine(_directory.FullName, "model.zip");
        ml.Model.Save(model, train.Schema, zip);
        RewriteRideAlong(zip, value =>
        {
            using var inner = new MemoryStream();
            inner.Write(Convert.FromBase64String(value));
            using (var archive = new ZipArchive(inner, ZipArchiveMode.Update, leaveOpen: true))
            {
                var manifest = archive.GetEntry(ModelFile.ManifestEntry)!;
                string json;
                using (var reader = new StreamReader(manifest.Open())) json = reader.ReadToEnd();
                HostileFiles.ReplaceJson(archive, ModelFile.ManifestEntry, System.Text.RegularExpressions.Regex.Replace(json, "\"formatVersion\":\\s*\\d+", "\"formatVersion\": 99"));
            }
            return Convert.ToBase64String(inner.ToArray());
        });

        var error = Assert.Throws<ModelFormatException>(() => ml.Sparsity().LoadModel(zip, out _));
        Assert.Contains("format version 99", error.Message);
        Assert.Contains("Update the package", error.Message);
    }

    [Fact]
    public void A_save_removes_the_ONNX_copies_that_killed_saves_left_but_not_one_in_use()
    {
        var ml = new MLContext(seed: 1);
        var (model, train) = Fitted(ml);
        string Copy() => Path.Combine(Path.GetTempPath(), $".sparsity-portable.onnx.{Guid.NewGuid():N}.tmp");
        string stale = Copy(), live = Copy();
        File.WriteAllBytes(stale, [1, 2, 3]);
        try
        {
            using (new FileStream(live, FileMode.CreateNew, FileAccess.Write, FileShare.Read))   // another save's copy, in use
            {
                ml.Model.Save(model, train.Schema, Path.Combine(_directory.FullName, "model.zip"));
                Assert.False(File.Exists(stale));
                Assert.True(File.Exists(live));
            }
        }
        finally
        {
            File.Delete(stale);
            File.Delete(live);
        }
        var restored = ml.Sparsity().LoadModel(Path.Combine(_directory.FullName, "model.zip"), out _);
        Assert.Equal(model.Transform(train).GetColumn<float[]>("Score").SelectMany(x => x), restored.Transform(train).GetColumn<float[]>("Score").SelectMany(x => x));
    }

    [Fact]
    public void A_directory_or_a_missing_file_is_named()
    {
        var ml = new MLContext();
        Assert.Contains("is a directory", Assert.Throws<FileNotFoundException>(() => ml.Sparsity().LoadModel(_directory.FullName, out _)).Message);
        string missing = Path.Combine(_directory.FullName, "none.zip");
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => ml.Sparsity().LoadModel(missing, out _)).Message);
    }
}
