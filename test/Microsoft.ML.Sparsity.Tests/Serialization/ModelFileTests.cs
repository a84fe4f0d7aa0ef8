using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Inference;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Serialization;

public sealed class ModelFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sparsity-model-").FullName;
    private readonly MLContext _ml = new(seed: 3);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>The package's own model file, written atomically (what rides along in ML.NET's saved zip).</summary>
    private static void Save(ITransformer model, string path, Func<Stream, Stream>? wrap = null) =>
        AtomicFile.Write(path, stream => ModelFile.Save(model, stream), wrap);

    private static ITransformer Load(string path)
    {
        using var stream = File.OpenRead(path);
        return Load(stream);
    }

    private static ITransformer Load(Stream stream) => ModelFile.Load(stream, global::Microsoft.ML.Sparsity.Engine.WorkerPool.Shared(2));

    private static float[] Scores(ITransformer model, IDataView data) => ScoredRows.Read(model.Transform(data)).Scores;

    /// <summary>Images 6×6×2 whose class depends on two pixels: enough to train every layer type quickly.</summary>
    private static IDataView Images(int rows, int seed)
    {
        var random = new Random(seed);
        var features = new float[rows * 72];
        var labels = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            for (int f = 0; f < 72; f++) features[r * 72 + f] = random.NextSingle();
            labels[r] = (features[r * 72 + 5] > 0.5f ? 1 : 0) + (features[r * 72 + 40] > 0.5f ? 2 : 0);
        }
        return new DatasetDataView(new Dataset(features, [6, 6, 2], labels, new ClassLabels(TextDataViewType.Instance, ["a", "b", "c", "d"]), 4));
    }

    public static TheoryData<string> Kinds => ["mlp", "cnn", "pruned", "adam"];

    private NeuralNetworkMulticlassTrainer Trainer(string kind, int epochs = 2) => _ml.MulticlassClassification.Trainers.NeuralNetwork(
        new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = kind is "cnn"
                ? [Layers.Conv2d(4, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Conv2d(4, 2), Layers.Activation(ActivationKind.Tanh),
                   Layers.GlobalAveragePool(), Layers.Dropout(0.2f), Layers.Dense(8), Layers.BatchNorm(), Layers.Activation(ActivationKind.Sigmoid)]
                : [Layers.Flatten(), Layers.Dense(16), Layers.ReLU(), Layers.Dense(8), Layers.Activation(ActivationKind.LeakyReLU)],
            Epochs = epochs,
            BatchSize = 16,
            Optimizer = kind == "adam" ? new AdamOptimizerOptions { LearningRate = 0.01f, WeightDecay = 1e-4f } : new SgdOptimizerOptions { LearningRate = 0.05f, Nesterov = true },
            Sparsity = kind == "pruned" ? new PruningOptions { TargetSparsity = 0.75, Schedule = PruningSchedule.Gradual(4, 20, 4) } : null,
            Seed = 11,
            NumberOfThreads = 2,
        });

    private string PathOf(string name) => Path.Combine(_folder, name);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void SaveThenLoadPredictsBitIdenticallyAndContinuesTrainingIdentically(string kind)
    {
        var data = Images(256, 1);
        var model = Trainer(kind).Fit(data);
        string path = PathOf(kind + ".zip");
        Save(model, path);
        var loaded = Assert.IsType<NeuralNetworkMulticlassModel>(Load(path));

        Assert.Equal(Scores(model, data), Scores(loaded, data));
        Assert.Equal(model.ClassNames, loaded.ClassNames);
        Assert.Equal(model.GetSparsityReport().ToString(), loaded.GetSparsityReport().ToString());

        // Continued training from the original and from the loaded copy gives the same weights, bit for bit.
        var continuedOriginal = Trainer(kind, epochs: 1).Fit(data, model);
        var continuedLoaded = Trainer(kind, epochs: 1).Fit(data, loaded);
        Assert.Equal(continuedOriginal.Network.StateArrays, continuedLoaded.Network.StateArrays);
        Assert.NotEqual(model.Network.StateArrays, continuedOriginal.Network.StateArrays);
        if (kind == "pruned")
            Assert.Equal(model.GetSparsityReport().NonZeros, continuedLoaded.GetSparsityReport().NonZeros);
    }

    [Fact]
    public void SavingTwiceGivesTheSameBytesAndStreamsWorkToo()
    {
        var model = Trainer("mlp").Fit(Images(64, 2));
        using var a = new MemoryStream();
        using var b = new MemoryStream();
        ModelFile.Save(model, a);
        ModelFile.Save(model, b);
        Assert.Equal(a.ToArray(), b.ToArray());
        a.Position = 0;
        var loaded = Assert.IsType<NeuralNetworkMulticlassModel>(Load(a));
        Assert.Equal(model.Network.StateArrays, loaded.Network.StateArrays);
        Assert.Equal("NeuralNetworkMulticlassTrainer", loaded.Options!["trainer"]!.GetValue<string>());
    }

    [Fact]
    public void APipelineRoundTrips()
    {
        var data = Images(128, 4);
        var chain = Trainer("mlp").Append(Trainer("cnn", epochs: 1)).Fit(data);
        string path = PathOf("chain.zip");
        Save(chain, path);
        var loaded = Assert.IsType<TransformerChain<ITransformer>>(Load(path));
        Assert.Equal(2, loaded.Count());
        Assert.Equal(Scores(chain, data), Scores(loaded, data));
    }

    [Fact]
    public void AFailedSaveLeavesTheExistingFileIntactAndNoTemporaryFiles()
    {
        var first = Trainer("mlp").Fit(Images(64, 5));
        var second = Trainer("cnn").Fit(Images(64, 6));
        string path = PathOf("model.zip");
        Save(first, path);
        byte[] before = File.ReadAllBytes(path);
        var e = Assert.Throws<IOException>(() => Save(second, path, s => InterruptedStream.Failing(s, 2000)));
        Assert.Contains("simulated", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(_folder));
        var loaded = Assert.IsType<NeuralNetworkMulticlassModel>(Load(path));
        Assert.Equal(first.Network.StateArrays, loaded.Network.StateArrays);
    }

    [Fact]
    public void ConvertToOnnxWritesTheModelAtomicallyAndRefusesWhatItCannotExport()
    {
        var data = Images(64, 8);
        var model = Trainer("cnn").Fit(data);
        string path = PathOf("model.onnx");
        _ml.Sparsity().ConvertToOnnx(model, path);
        using var memory = new MemoryStream();
        _ml.Sparsity().ConvertToOnnx(model, memory);
        Assert.Equal(memory.ToArray(), File.ReadAllBytes(path));
        var parsed = Microsoft.ML.Sparsity.Export.Onnx.ModelProto.Parser.ParseFrom(memory.ToArray());
        Assert.Equal("features", parsed.Graph.Input[0].Name);

        var chain = Trainer("mlp").Append(Trainer("mlp", epochs: 1)).Fit(data);
        string refused = PathOf("chain.onnx");
        var e = Assert.Throws<NotSupportedException>(() => _ml.Sparsity().ConvertToOnnx(chain, refused));
        Assert.Contains("NeuralNetworkMulticlassModel, NeuralNetworkMulticlassModel", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(refused));
        Assert.Single(Directory.GetFiles(_folder));
    }

    /// <summary>Damaged files built from a good one: each must give a ModelFormatException naming the entry at fault.</summary>
    public static TheoryData<string> Damages =>
    [
        "empty", "not a zip", "truncated half", "truncated header", "no manifest", "weight entry missing", "mask entry missing",
        "flipped weight byte", "flipped mask byte", "manifest not json", "future version", "version zero", "wrong tensor shape",
        "wrong mask length", "wrong weight length", "unknown transformer", "unknown layer type", "class count mismatch",
        "class names mismatch", "tensor renamed", "NaN weight", "mask disagrees with weights", "training state count",
        "no transformers", "negative input shape", "missing tensor list entry", "optimizer state damaged", "layer without type", "absurd layer size", "invalid layer option",
    ];

    [Theory]
    [MemberData(nameof(Damages))]
    public void DamagedFilesGiveATypedExceptionNamingTheEntry(string damage)
    {
        var good = GoodFile();
        var (bytes, entry) = Damage(good, damage);
        using var stream = new MemoryStream(bytes);
        var e = Assert.Throws<ModelFormatException>(() => Load(stream));
        Assert.Equal(entry, e.Entry);
        if (entry is not null) Assert.Contains(entry, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FlippingAnyByteOfTheFileNeverCrashesAndNeverLoadsADifferentModel()
    {
        var good = GoodFile();
        var model = (NeuralNetworkMulticlassModel)Load(new MemoryStream(good));
        var random = new Random(5);
        for (int trial = 0; trial < 400; trial++)
        {
            var bytes = (byte[])good.Clone();
            bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
            try
            {
                var loaded = (NeuralNetworkMulticlassModel)Load(new MemoryStream(bytes));
                Assert.Equal(model.Network.StateArrays, loaded.Network.StateArrays);
            }
            catch (ModelFormatException)
            {
            }
        }
    }

    private byte[] GoodFile()
    {
        var model = Trainer("pruned").Fit(Images(64, 7));
        using var stream = new MemoryStream();
        ModelFile.Save(model, stream);
        return stream.ToArray();
    }

    private static (byte[] Bytes, string? Entry) Damage(byte[] good, string damage)
    {
        var entries = ReadZip(good);
        var manifest = JsonNode.Parse(entries["manifest.json"])!.AsObject();
        var transformer = manifest["transformers"]![0]!.AsObject();
        var weight = transformer["tensors"]![0]!.AsObject();              // dense0.weight, masked
        string weightEntry = weight["entry"]!.GetValue<string>(), maskEntry = weight["maskEntry"]!.GetValue<string>();
        byte[] Rezip()
        {
            // A crafted edit (checksum recomputed), so that the checks behind the manifest's checksum are what is tested.
            entries["manifest.json"] = Encoding.UTF8.GetBytes(manifest.ToJsonString());
            entries["manifest.json.sha256"] = Encoding.ASCII.GetBytes(HostileFiles.Sha(entries["manifest.json"]));
            return WriteZip(entries);
        }
        void Resha(string tensorField, string entry, JsonObject tensor) =>
            tensor[tensorField] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(entries[entry])).ToLowerInvariant();
        switch (damage)
        {
            case "empty": return ([], null);
            case "not a zip": return (Encoding.UTF8.GetBytes("definitely not a zip archive, just some text"), null);
            case "truncated half": return (good[..(good.Length / 2)], null);
            case "truncated header": return (good[..10], null);
            case "no manifest": entries.Remove("manifest.json"); return (WriteZip(entries), "manifest.json");
            case "weight entry missing": entries.Remove(weightEntry); return (Rezip(), weightEntry);
            case "mask entry missing": entries.Remove(maskEntry); return (Rezip(), maskEntry);
            case "flipped weight byte": entries[weightEntry][17] ^= 0x40; return (Rezip(), weightEntry);
            case "flipped mask byte": entries[maskEntry][3] ^= 0x01; return (Rezip(), maskEntry);
            case "manifest not json": entries["manifest.json"] = Encoding.UTF8.GetBytes("{ \"formatVersion\": 1, \"transformers\": [ {"); return (WriteZip(entries), "manifest.json");
            case "future version": manifest["formatVersion"] = 99; return (Rezip(), "manifest.json");
            case "version zero": manifest["formatVersion"] = 0; return (Rezip(), "manifest.json");
            case "wrong tensor shape": weight["shape"] = new JsonArray(16, 71); return (Rezip(), "manifest.json");
            case "wrong mask length":
                entries[maskEntry] = entries[maskEntry][..^1];
                Resha("maskSha256", maskEntry, weight);
                return (Rezip(), maskEntry);
            case "wrong weight length":
                entries[weightEntry] = entries[weightEntry][..^4];
                Resha("sha256", weightEntry, weight);
                return (Rezip(), weightEntry);
            case "unknown transformer": transformer["kind"] = "gradientBoostedTrees"; return (Rezip(), "manifest.json");
            case "unknown layer type": transformer["layers"]![1]!["type"] = "transformerBlock"; return (Rezip(), "manifest.json");
            case "class count mismatch": transformer["classCount"] = 5; transformer.Remove("classNames"); return (Rezip(), "manifest.json");
            case "class names mismatch": transformer["classNames"] = new JsonArray("a", "b"); return (Rezip(), "manifest.json");
            case "tensor renamed": weight["name"] = "dense9.weight"; return (Rezip(), "manifest.json");
            case "NaN weight":
                BitConverter.GetBytes(float.NaN).CopyTo(entries[weightEntry], 8);
                Resha("sha256", weightEntry, weight);
                return (Rezip(), weightEntry);
            case "mask disagrees with weights":
                // The weight entry holds the kept values only; a mask that keeps one more value no longer matches it.
                int pruned = Enumerable.Range(0, entries[maskEntry].Length * 8).First(i => (entries[maskEntry][i >> 3] >> (i & 7) & 1) == 0);
                entries[maskEntry][pruned >> 3] |= (byte)(1 << (pruned & 7));
                Resha("maskSha256", maskEntry, weight);
                return (Rezip(), weightEntry);
            case "training state count": transformer["training"]!["state"]!.AsArray().RemoveAt(0); return (Rezip(), "manifest.json");
            case "no transformers": manifest["transformers"] = new JsonArray(); return (Rezip(), "manifest.json");
            case "negative input shape": transformer["inputShape"] = new JsonArray(6, -6, 2); return (Rezip(), "manifest.json");
            case "missing tensor list entry": transformer["tensors"]!.AsArray().RemoveAt(3); return (Rezip(), "manifest.json");
            case "optimizer state damaged":
                string state = transformer["training"]!["state"]![0]!["entry"]!.GetValue<string>();
                entries[state][0] ^= 0xFF;
                return (Rezip(), state);
            case "layer without type": transformer["layers"]![1]!.AsObject().Remove("type"); return (Rezip(), "manifest.json");
            case "absurd layer size": transformer["layers"]![1]!["units"] = int.MaxValue; return (Rezip(), "manifest.json");
            case "invalid layer option": transformer["layers"]![1]!["units"] = -3; return (Rezip(), "manifest.json");
            default: throw new ArgumentException(damage);
        }
    }

    private static Dictionary<string, byte[]> ReadZip(byte[] bytes)
    {
        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        return zip.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var s = e.Open();
            using var m = new MemoryStream();
            s.CopyTo(m);
            return m.ToArray();
        });
    }

    private static byte[] WriteZip(Dictionary<string, byte[]> entries) => HostileFiles.WriteZip(entries.Select(e => (e.Key, e.Value)));
}
