using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.LotteryTickets;
using Microsoft.ML.Sparsity.Network;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Serialization;
using Microsoft.ML.Sparsity.Tests.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.LotteryTickets;

/// <summary>Checkpoints: a run stopped anywhere resumes to bit-identical weights; bad checkpoints are refused by name.</summary>
public sealed class CheckpointTests : IDisposable
{
    private static readonly Microsoft.ML.Sparsity.Data.Dataset Data = TrainingData.Blobs(288, features: 12, classes: 3);
    private readonly string _folder = Directory.CreateTempSubdirectory("imp-checkpoint").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string CheckpointPath => Path.Combine(_folder, ImpRun.CheckpointFileName);

    private IterativeMagnitudePruningOptions Options(LotteryTicketReset reset, double rate = 0.3)
    {
        var options = LotteryTicketTests.Small(levels: 2);
        options.PruningRate = rate;
        options.Controls = LotteryTicketControls.All;
        options.Reset = reset;
        options.RewindStep = reset == LotteryTicketReset.WeightRewinding ? 9 : 0;
        options.CheckpointDirectory = _folder;
        options.CheckpointInterval = 5;
        return options;
    }

    [Theory]
    [InlineData(LotteryTicketReset.InitialWeights, 0.3)]
    [InlineData(LotteryTicketReset.WeightRewinding, 0.3)]
    [InlineData(LotteryTicketReset.LearningRateRewinding, 0.3)]
    [InlineData(LotteryTicketReset.InitialWeights, 0.6)]   // 16% density at level 2: sparse prediction formats exist
    public void ARunStoppedAtSeveralPointsResumesToBitIdenticalWeights(LotteryTicketReset reset, double rate)
    {
        var uninterrupted = Options(reset, rate);
        uninterrupted.CheckpointDirectory = null;
        var expected = LotteryTicketTests.Run(uninterrupted);

        // Stop points (level, run, step): inside level 0 before and after the rewind step and a checkpoint, right at a
        // checkpoint, at the end of a run, inside the controls, one step into a ticket
        // (after the rewind step 9 for weight rewinding) and inside the last ticket.
        var stops = new (int Level, LotteryTicketVariant Variant, long Step)[]
        {
            (0, LotteryTicketVariant.Ticket, 7), (0, LotteryTicketVariant.Ticket, 13), (1, LotteryTicketVariant.RandomReinitialization, 10),
            (1, LotteryTicketVariant.RandomMask, 22), (1, LotteryTicketVariant.Ticket, 11), (2, LotteryTicketVariant.RandomMask, 16), (2, LotteryTicketVariant.Ticket, 19),
        };
        var ml = new MLContext(seed: 1);
        var host = new SparsityHost(ml, nameof(CheckpointTests), threads: 1);
        foreach (var stop in stops)
        {
            using var cancel = new CancellationTokenSource();
            var run = new ImpRun(host, Options(reset, rate), Data, null, Data)
            {
                AfterStepHook = (level, variant, step) => { if ((level, variant, step) == stop) cancel.Cancel(); },
            };
            Assert.Throws<OperationCanceledException>(() => run.Run(null, cancel.Token));
            Assert.True(File.Exists(CheckpointPath));
            Assert.Empty(Directory.GetFiles(_folder, "*.tmp"));
        }
        var resumed = new ImpRun(host, Options(reset, rate), Data, null, Data).Run(null, CancellationToken.None);
        LotteryTicketTests.AssertSameWeights(expected.Model, resumed.Model);
        Assert.Equal(expected.Levels.Select(l => l with { Seconds = 0 }), resumed.Levels.Select(l => l with { Seconds = 0 }));
        for (int i = 0; i < expected.Ticket.Start.Network.StateArrays.Count; i++)
            Assert.Equal(expected.Ticket.Start.Network.StateArrays[i], resumed.Ticket.Start.Network.StateArrays[i]);
    }

    [Fact]
    public void WritingCheckpointsDoesNotChangeTheRun()
    {
        // 16% density at level 2, where trained models would predict from sparse formats: a checkpoint must not leave
        // one on the network being trained (evaluations would then see stale weights).
        var plain = Options(LotteryTicketReset.InitialWeights, 0.6);
        plain.CheckpointDirectory = null;
        plain.CheckpointInterval = 1000;
        var everyStep = Options(LotteryTicketReset.InitialWeights, 0.6);
        everyStep.CheckpointInterval = 1;
        var expected = LotteryTicketTests.Run(plain);
        var actual = LotteryTicketTests.Run(everyStep);
        Assert.Equal(expected.Levels.Select(l => l with { Seconds = 0 }), actual.Levels.Select(l => l with { Seconds = 0 }));
        LotteryTicketTests.AssertSameWeights(expected.Model, actual.Model);
    }

    private void WriteCheckpointStoppedAt(long step)
    {
        var ml = new MLContext(seed: 1);
        var host = new SparsityHost(ml, nameof(CheckpointTests), threads: 1);
        using var cancel = new CancellationTokenSource();
        var run = new ImpRun(host, Options(LotteryTicketReset.InitialWeights), Data, null, Data)
        {
            AfterStepHook = (level, _, s) => { if (level == 1 && s == step) cancel.Cancel(); },
        };
        Assert.Throws<OperationCanceledException>(() => run.Run(null, cancel.Token));
    }

    [Fact]
    public void ResumingWithOtherOptionsOrArchitectureNamesWhatDiffers()
    {
        WriteCheckpointStoppedAt(12);
        var ml = new MLContext(seed: 1);
        var rate = Options(LotteryTicketReset.InitialWeights);
        rate.PruningRate = 0.25;
        var e = Assert.Throws<ArgumentException>(() => ml.Sparsity().LotteryTicket(rate).Run(Data.AsDataView(), Data.AsDataView()));
        Assert.Contains("PruningRate is 0.3", e.Message);
        Assert.Contains("0.25", e.Message);
        Assert.Contains(CheckpointPath, e.Message);

        var architecture = Options(LotteryTicketReset.InitialWeights);
        architecture.Training.Layers = [Layers.Dense(20), Layers.ReLU(), Layers.Dense(8), Layers.ReLU()];
        Assert.Contains("Training.Layers", Assert.Throws<ArgumentException>(() => ml.Sparsity().LotteryTicket(architecture).Run(Data.AsDataView(), Data.AsDataView())).Message);

        var seed = Options(LotteryTicketReset.InitialWeights);
        seed.Training.Seed = 6;
        Assert.Contains("Training.seed", Assert.Throws<ArgumentException>(() => ml.Sparsity().LotteryTicket(seed).Run(Data.AsDataView(), Data.AsDataView())).Message);

        var data = TrainingData.Blobs(300, features: 12, classes: 3);
        Assert.Contains("Data.Training", Assert.Throws<ArgumentException>(() => ml.Sparsity().LotteryTicket(Options(LotteryTicketReset.InitialWeights)).Run(data.AsDataView(), data.AsDataView())).Message);
    }

    [Fact]
    public void CheckpointsRefuseDropoutAndAMissingFolder()
    {
        var ml = new MLContext(seed: 1);
        var dropout = Options(LotteryTicketReset.InitialWeights);
        dropout.Training.Layers = [Layers.Dense(16), Layers.ReLU(), Layers.Dropout(0.5f)];
        Assert.Contains("dropout", Assert.Throws<ArgumentException>(() => ml.Sparsity().LotteryTicket(dropout).Run(Data.AsDataView(), Data.AsDataView())).Message);
        var missing = Options(LotteryTicketReset.InitialWeights);
        missing.CheckpointDirectory = Path.Combine(_folder, "absent");
        Assert.Contains("absent", Assert.Throws<DirectoryNotFoundException>(() => ml.Sparsity().LotteryTicket(missing).Run(Data.AsDataView(), Data.AsDataView())).Message);
        var file = Options(LotteryTicketReset.InitialWeights);
        file.CheckpointDirectory = Path.Combine(_folder, "a-file");
        File.WriteAllText(file.CheckpointDirectory, "");
        Assert.Contains("'" + file.CheckpointDirectory + "' is a file", Assert.Throws<DirectoryNotFoundException>(() => ml.Sparsity().LotteryTicket(file).Run(Data.AsDataView(), Data.AsDataView())).Message);
    }

    [Fact]
    public void ACorruptCheckpointIsRefusedNamingTheFileAndEntry()
    {
        WriteCheckpointStoppedAt(12);
        var bytes = File.ReadAllBytes(CheckpointPath);
        var ml = new MLContext(seed: 1);
        var options = Options(LotteryTicketReset.InitialWeights);

        // A damaged entry (stored uncompressed, found by its content): the SHA-256 check names it.
        using (var zip = new System.IO.Compression.ZipArchive(File.Open(CheckpointPath, FileMode.Open), System.IO.Compression.ZipArchiveMode.Update))
        {
            var entry = zip.GetEntry("masks/0.bits")!;
            byte[] content;
            using (var s = entry.Open()) { using var m = new MemoryStream(); s.CopyTo(m); content = m.ToArray(); }
            content[0] ^= 0x01;
            entry.Delete();
            using var w = zip.CreateEntry("masks/0.bits").Open();
            w.Write(content);
        }
        var damaged = Assert.Throws<ModelFormatException>(() => ml.Sparsity().LotteryTicket(options).Run(Data.AsDataView(), Data.AsDataView()));
        Assert.Contains("masks/0.bits", damaged.Message);
        Assert.Contains(CheckpointPath, damaged.Message);

        // Truncated.
        File.WriteAllBytes(CheckpointPath, bytes[..(bytes.Length / 2)]);
        Assert.Contains(CheckpointPath, Assert.Throws<ModelFormatException>(() => ml.Sparsity().LotteryTicket(options).Run(Data.AsDataView(), Data.AsDataView())).Message);

        // A newer format version.
        File.WriteAllBytes(CheckpointPath, bytes);
        using (var zip = new System.IO.Compression.ZipArchive(File.Open(CheckpointPath, FileMode.Open), System.IO.Compression.ZipArchiveMode.Update))
        {
            var entry = zip.GetEntry("checkpoint.json")!;
            string json;
            using (var r = new StreamReader(entry.Open())) json = r.ReadToEnd();
            HostileFiles.ReplaceJson(zip, "checkpoint.json", json.Replace("\"formatVersion\": 2", "\"formatVersion\": 3", StringComparison.Ordinal));
        }
        Assert.Contains("format version 3", Assert.Throws<ModelFormatException>(() => ml.Sparsity().LotteryTicket(options).Run(Data.AsDataView(), Data.AsDataView())).Message);
    }

    [Fact]
    public void AWriteInterruptedMidwayLeavesThePreviousCheckpointReadable()
    {
        WriteCheckpointStoppedAt(12);
        var before = File.ReadAllBytes(CheckpointPath);
        var ml = new MLContext(seed: 1);
        var host = new SparsityHost(ml, nameof(CheckpointTests), threads: 1);
        var run = new ImpRun(host, Options(LotteryTicketReset.InitialWeights), Data, null, Data);
        Assert.Throws<IOException>(() => ImpCheckpoint.Write(CheckpointPath, run.State, null, new SortedDictionary<string, string>(), s => Serialization.InterruptedStream.Failing(s, 1000)));
        Assert.Equal(before, File.ReadAllBytes(CheckpointPath));
        Assert.Empty(Directory.GetFiles(_folder, "*.tmp"));
        Assert.Equal(1, new ImpRun(host, Options(LotteryTicketReset.InitialWeights), Data, null, Data).State.Level);
    }

    /// <summary>A checkpoint stopped inside level 1 (masks, θ₀, the run in progress), written once for the damage table.</summary>
    private static readonly Lazy<byte[]> Checkpoint = new(() =>
    {
        using var tests = new CheckpointTests();
        tests.WriteCheckpointStoppedAt(12);
        return File.ReadAllBytes(tests.CheckpointPath);
    });

    /// <summary>Damaged and edited checkpoints: (case, the entry the error must name, a word the message must contain).</summary>
    public static TheoryData<string, string?, string> Damages => new()
    {
        { "edited level", "checkpoint.json", "SHA-256" },
        { "edited options", "checkpoint.json", "SHA-256" },                     // not "it belongs to another run"
        { "truncated entry", "source.zip", "truncated" },
        { "missing mask entry", "masks/0.bits", "missing" },
        { "missing model entry", "current.zip", "missing" },
        { "missing checksum entry", "checkpoint.json.sha256", "missing" },
        { "wrong checksum", "checkpoint.json", "SHA-256" },
        { "garbage JSON", "checkpoint.json", "SHA-256" },
        { "garbage JSON with its checksum", "checkpoint.json", "JSON" },
        { "flipped byte in a model", "source.zip", "SHA-256" },
        { "edited activation inside a model, outer checksums recomputed", "source.zip/manifest.json", "SHA-256" },
        { "format 1 (before checksums)", "checkpoint.json", "start the run over" },
        { "300 MB zero model entry", "current.zip", "header declares 314572800 bytes" },
        { "truncated zip", null, "truncated" },
        { "empty file", null, "empty" },
    };

    [Theory]
    [MemberData(nameof(Damages))]
    public void DamagedCheckpointsNameTheFileAndTheEntry(string damage, string? entry, string word)
    {
        byte[] good = Checkpoint.Value;
        var entries = HostileFiles.ReadZip(good);
        var manifest = HostileFiles.Json(entries, "checkpoint.json");
        void Edit() => HostileFiles.SetJson(entries, "checkpoint.json", manifest);
        switch (damage)
        {
            case "edited level": manifest["level"] = 2; Edit(); break;
            case "edited options": manifest["options"]!["PruningRate"] = "0.25"; Edit(); break;
            case "truncated entry": HostileFiles.Set(entries, "source.zip", HostileFiles.Get(entries, "source.zip")[..100]); break;
            case "missing mask entry": entries.RemoveAll(e => e.Name == "masks/0.bits"); break;
            case "missing model entry": entries.RemoveAll(e => e.Name == "current.zip"); break;
            case "missing checksum entry": entries.RemoveAll(e => e.Name == "checkpoint.json.sha256"); break;
            case "wrong checksum": HostileFiles.Set(entries, "checkpoint.json.sha256", Encoding.ASCII.GetBytes(HostileFiles.Sha([7]))); break;
            case "garbage JSON": HostileFiles.Set(entries, "checkpoint.json", "{ \"level\": "u8.ToArray()); break;
            case "garbage JSON with its checksum":
                HostileFiles.Set(entries, "checkpoint.json", "{ \"level\": "u8.ToArray());
                HostileFiles.Set(entries, "checkpoint.json.sha256", Encoding.ASCII.GetBytes(HostileFiles.Sha(HostileFiles.Get(entries, "checkpoint.json"))));
                break;
            case "flipped byte in a model": HostileFiles.Get(entries, "source.zip")[200] ^= 0x04; break;
            case "edited activation inside a model, outer checksums recomputed":
                var model = HostileFiles.ReadZip(HostileFiles.Get(entries, "source.zip"));
                var inner = HostileFiles.Json(model, "manifest.json");
                inner["transformers"]![0]!["layers"]![1]!["activation"] = "tanh";
                HostileFiles.SetJson(model, "manifest.json", inner);
                byte[] edited = HostileFiles.WriteZip(model);
                HostileFiles.Set(entries, "source.zip", edited);
                (manifest["source"]!["sha256"], manifest["source"]!["bytes"]) = (HostileFiles.Sha(edited), edited.Length);
                HostileFiles.SetJsonAndChecksum(entries, "checkpoint.json", manifest);
                break;
            case "format 1 (before checksums)":
                manifest["formatVersion"] = 1;
                HostileFiles.SetJson(entries, "checkpoint.json", manifest);
                entries.RemoveAll(e => e.Name == "checkpoint.json.sha256");
                break;
        }
        if (damage == "300 MB zero model entry") HostileFiles.WriteWithZeroEntry(CheckpointPath, entries, "current.zip", megabytes: 300);
        else File.WriteAllBytes(CheckpointPath, damage switch
        {
            "truncated zip" => good[..(good.Length / 3)],
            "empty file" => [],
            _ => HostileFiles.WriteZip(entries),
        });

        var host = new SparsityHost(new MLContext(seed: 1), nameof(CheckpointTests), threads: 1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ModelFormatException>(() => new ImpRun(host, Options(LotteryTicketReset.InitialWeights), Data, null, Data));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(CheckpointPath, e.FilePath);
        Assert.Contains(CheckpointPath, e.Message, StringComparison.Ordinal);
        Assert.Equal(entry, e.Entry);
        if (entry is not null) Assert.Contains($"'{entry}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(word, e.Message, StringComparison.Ordinal);
        Assert.True(allocated < 50L << 20, $"refusing the checkpoint allocated {allocated:N0} bytes");
    }

    [Fact]
    public void ResumingRemovesTheTemporaryOfAKilledCheckpointWriteButNotALiveOne()
    {
        WriteCheckpointStoppedAt(12);
        string stale = Path.Combine(_folder, $".{ImpRun.CheckpointFileName}.{Guid.NewGuid():N}.tmp");
        string live = Path.Combine(_folder, $".{ImpRun.CheckpointFileName}.{Guid.NewGuid():N}.tmp");
        string other = Path.Combine(_folder, $".results.csv.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(stale, [1, 2, 3]);
        File.WriteAllBytes(other, [1, 2, 3]);
        var host = new SparsityHost(new MLContext(seed: 1), nameof(CheckpointTests), threads: 1);
        using (new FileStream(live, FileMode.CreateNew, FileAccess.Write, FileShare.None))   // held as a live writer holds it
        {
            Assert.Equal(1, new ImpRun(host, Options(LotteryTicketReset.InitialWeights), Data, null, Data).State.Level);
            Assert.False(File.Exists(stale));
            Assert.True(File.Exists(live));
            Assert.True(File.Exists(other));
        }
    }
}
