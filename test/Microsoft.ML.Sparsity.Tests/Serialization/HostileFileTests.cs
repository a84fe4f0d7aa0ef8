using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Serialization;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Serialization.HostileFiles;

namespace Microsoft.ML.Sparsity.Tests.Serialization;

/// <summary>
/// Model files that are hostile (crafted to make the reader allocate), damaged or simply not model files: each is
/// refused cheaply with a <see cref="ModelFormatException"/> (or <see cref="FileNotFoundException"/>) naming the file
/// and entry; and saves that die midway leave nothing behind once the next save has run.
/// </summary>
public sealed class HostileFileTests : IDisposable
{
    private const long AllocationLimit = 50L << 20;
    private readonly string _folder = Directory.CreateTempSubdirectory("sparsity-hostile-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string PathOf(string name) => Path.Combine(_folder, name);

    private static ITransformer Load(string path) => ModelFile.Load(path, Pool);

    /// <summary>Loads, expecting a refusal, and measures what this thread allocated meanwhile.</summary>
    private static (ModelFormatException Error, long Allocated) Refused(string path)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ModelFormatException>(() => Load(path));
        return (e, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void AssertNames(ModelFormatException e, string path, string? entry)
    {
        Assert.Equal(path, e.FilePath);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Equal(entry, e.Entry);
        if (entry is not null) Assert.Contains($"'{entry}'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("manifest.json")]
    [InlineData("t0/tensors/0.f32")]     // dense0.weight's kept values
    [InlineData("t0/masks/0.bits")]
    [InlineData("t0/tensors/1.f32")]     // dense0.bias
    public void AZeroEntryOf300MegabytesIsRefusedAllocatingUnder50Megabytes(string entry)
    {
        string path = PathOf("bomb.zip");
        var entries = ReadZip(ModelBytes(PrunedModel()));
        Assert.Contains(entries, e => e.Name == entry);
        WriteWithZeroEntry(path, entries, entry, megabytes: 300);
        Assert.True(new FileInfo(path).Length < 2 << 20, "the crafted file should be small: the entry is a deflate bomb");
        using (var zip = ZipFile.OpenRead(path)) Assert.Equal(300L << 20, zip.GetEntry(entry)!.Length);

        var (e, allocated) = Refused(path);
        AssertNames(e, path, entry);
        Assert.Contains("header declares 314572800 bytes", e.Message, StringComparison.Ordinal);
        Assert.True(allocated < AllocationLimit, $"refusing the file allocated {allocated:N0} bytes");
    }

    [Fact]
    public void ALayerOfFourMillionUnitsIsRefusedBeforeItIsBuilt()
    {
        string path = PathOf("wide.zip");
        var entries = ReadZip(ModelBytes(PrunedModel()));
        var manifest = Json(entries, "manifest.json");
        manifest["transformers"]![0]!["layers"]![1]!["units"] = 4_000_000;  // dense0: 4,000,000 × 72 weights, 2.3 GB with gradients
        SetJsonAndChecksum(entries, "manifest.json", manifest);               // crafted, so the checksum does not catch it
        File.WriteAllBytes(path, WriteZip(entries));

        var (e, allocated) = Refused(path);
        AssertNames(e, path, "manifest.json");
        Assert.Contains("Layer 'dense0'", e.Message, StringComparison.Ordinal);
        Assert.Contains("[4000000, 72]", e.Message, StringComparison.Ordinal);
        Assert.True(allocated < AllocationLimit, $"refusing the file allocated {allocated:N0} bytes");
    }

    [Theory]
    [InlineData("units", "Layer 'dense0'", "more values than an array holds")]     // 100,000,000 × 72 > Array.MaxLength
    [InlineData("inputShape", "Layer 'flatten0'", "overflow")]                     // 65536 × 65536 × 2 > int.MaxValue
    public void ShapesThatOverflowNameTheLayer(string field, string layer, string problem)
    {
        string path = PathOf("overflow.zip");
        var entries = ReadZip(ModelBytes(PrunedModel()));
        var manifest = Json(entries, "manifest.json");
        var transformer = manifest["transformers"]![0]!;
        if (field == "units") transformer["layers"]![1]!["units"] = 100_000_000;
        else transformer["inputShape"] = new JsonArray(65536, 65536, 2);
        SetJsonAndChecksum(entries, "manifest.json", manifest);
        File.WriteAllBytes(path, WriteZip(entries));

        var (e, allocated) = Refused(path);
        AssertNames(e, path, "manifest.json");
        Assert.Contains(layer, e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
        Assert.True(allocated < AllocationLimit, $"refusing the file allocated {allocated:N0} bytes");
    }

    /// <summary>Damaged and edited model files: (case, the entry the error must name, a word the message must contain).</summary>
    public static TheoryData<string, string?, string> Damages => new()
    {
        { "edited activation", "manifest.json", "SHA-256" },
        { "edited shape", "manifest.json", "SHA-256" },
        { "edited class count", "manifest.json", "SHA-256" },
        { "truncated entry", "t0/tensors/1.f32", "truncated" },
        { "missing tensor entry", "t0/tensors/1.f32", "missing" },
        { "missing mask entry", "t0/masks/0.bits", "missing" },
        { "missing checksum entry", "manifest.json.sha256", "missing" },
        { "wrong checksum", "manifest.json", "SHA-256" },
        { "checksum not hex", "manifest.json", "SHA-256" },
        { "garbage JSON", "manifest.json", "SHA-256" },
        { "garbage JSON with its checksum", "manifest.json", "JSON" },
        { "JSON null with its checksum", "manifest.json", "null" },
        { "flipped tensor byte", "t0/tensors/2.f32", "SHA-256" },
        { "no manifest", "manifest.json", "not a model file" },
        { "truncated zip", null, "truncated" },
        { "truncated zip, last byte", null, "truncated" },
        { "empty file", null, "empty" },
    };

    [Theory]
    [MemberData(nameof(Damages))]
    public void DamagedFilesNameTheFileAndTheEntry(string damage, string? entry, string word)
    {
        string path = PathOf("damaged.zip");
        byte[] good = ModelBytes(PrunedModel());
        var entries = ReadZip(good);
        var manifest = Json(entries, "manifest.json");
        var transformer = manifest["transformers"]![0]!;
        byte[] bytes;
        switch (damage)
        {
            case "edited activation": transformer["layers"]![2]!["activation"] = "tanh"; SetJson(entries, "manifest.json", manifest); break;
            case "edited shape": transformer["tensors"]![2]!["shape"] = new JsonArray(4, 15); SetJson(entries, "manifest.json", manifest); break;
            case "edited class count": transformer["classCount"] = 3; SetJson(entries, "manifest.json", manifest); break;
            case "truncated entry": Set(entries, "t0/tensors/1.f32", Get(entries, "t0/tensors/1.f32")[..30]); break;
            case "missing tensor entry": entries.RemoveAll(e => e.Name == "t0/tensors/1.f32"); break;
            case "missing mask entry": entries.RemoveAll(e => e.Name == "t0/masks/0.bits"); break;
            case "missing checksum entry": entries.RemoveAll(e => e.Name == "manifest.json.sha256"); break;
            case "wrong checksum": Set(entries, "manifest.json.sha256", Encoding.ASCII.GetBytes(Sha([1, 2, 3]))); break;
            case "checksum not hex": Set(entries, "manifest.json.sha256", Encoding.ASCII.GetBytes(new string('z', 64))); break;
            case "garbage JSON": Set(entries, "manifest.json", Encoding.UTF8.GetBytes("{ \"formatVersion\": 1, \"transformers\": [ {")); break;
            case "garbage JSON with its checksum":
                Set(entries, "manifest.json", Encoding.UTF8.GetBytes("{ \"formatVersion\": 1, \"transformers\": [ {"));
                Set(entries, "manifest.json.sha256", Encoding.ASCII.GetBytes(Sha(Get(entries, "manifest.json"))));
                break;
            case "JSON null with its checksum":
                Set(entries, "manifest.json", "null"u8.ToArray());
                Set(entries, "manifest.json.sha256", Encoding.ASCII.GetBytes(Sha(Get(entries, "manifest.json"))));
                break;
            case "flipped tensor byte": Get(entries, "t0/tensors/2.f32")[5] ^= 0x10; break;
            case "no manifest": entries.RemoveAll(e => e.Name.StartsWith("manifest.json", StringComparison.Ordinal)); break;
        }
        bytes = damage switch
        {
            "truncated zip" => good[..(good.Length / 2)],
            "truncated zip, last byte" => good[..^1],
            "empty file" => [],
            _ => WriteZip(entries),
        };
        File.WriteAllBytes(path, bytes);

        var (e, _) = Refused(path);
        AssertNames(e, path, entry);
        Assert.Contains(word, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FilesWrittenBeforeTheManifestChecksumStillLoad()
    {
        var model = PrunedModel();
        var entries = ReadZip(ModelBytes(model));
        var manifest = Json(entries, "manifest.json");
        manifest.Remove("manifestSha256Entry");
        SetJson(entries, "manifest.json", manifest);
        entries.RemoveAll(e => e.Name == "manifest.json.sha256");
        string path = PathOf("old.zip");
        File.WriteAllBytes(path, WriteZip(entries));

        var loaded = Assert.IsType<NeuralNetworkMulticlassModel>(Load(path));
        Assert.Equal(model.Network.StateArrays, loaded.Network.StateArrays);

        // Such a file's manifest has no checksum to catch an edit, but an edit that contradicts the tensors is still refused.
        manifest["transformers"]![0]!["tensors"]![2]!["shape"] = new JsonArray(4, 15);
        SetJson(entries, "manifest.json", manifest);
        File.WriteAllBytes(path, WriteZip(entries));
        AssertNames(Refused(path).Error, path, "manifest.json");
    }

    /// <summary>Inputs a careless user might pass where a model file or lottery ticket is expected.</summary>
    public static TheoryData<string, string> Careless
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (string loader in new[] { "LoadLotteryTicket", "LoadModel" })
                foreach (string input in new[] { "missing", "directory", "empty", "csv named .zip", "gzip", "zip of another kind", "truncated at 10", "truncated at 100", "truncated at half", "truncated at end - 1" })
                    data.Add(loader, input);
            data.Add("LoadLotteryTicket", "model that is not a ticket");
            data.Add("LoadModel", "model file of this package");
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Careless))]
    public void CarelessInputsGiveATypedExceptionNamingThePath(string loader, string input)
    {
        string path = PathOf("input.zip");
        byte[] good = ModelBytes(PrunedModel());
        switch (input)
        {
            case "missing": break;
            case "directory": Directory.CreateDirectory(path); break;
            case "empty": File.WriteAllBytes(path, []); break;
            case "csv named .zip": File.WriteAllText(path, "Weight,Height,Label\n1,2,cat\n"); break;
            case "gzip":
                using (var gzip = new GZipStream(File.Create(path), CompressionLevel.Fastest)) gzip.Write(good);
                break;
            case "zip of another kind": File.WriteAllBytes(path, WriteZip([("readme.txt", "hello"u8.ToArray())])); break;
            case "truncated at 10": File.WriteAllBytes(path, good[..10]); break;
            case "truncated at 100": File.WriteAllBytes(path, good[..100]); break;
            case "truncated at half": File.WriteAllBytes(path, good[..(good.Length / 2)]); break;
            case "truncated at end - 1": File.WriteAllBytes(path, good[..^1]); break;
            case "model that is not a ticket" or "model file of this package": File.WriteAllBytes(path, good); break;
        }
        var ml = new MLContext(seed: 1);
        Action load = loader == "LoadModel" ? () => ml.Sparsity().LoadModel(path, out _) : () => ml.Sparsity().LoadLotteryTicket(path);
        var e = Assert.ThrowsAny<IOException>(load);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        switch (input)
        {
            case "missing": Assert.IsType<FileNotFoundException>(e); break;
            case "directory": Assert.IsType<FileNotFoundException>(e); Assert.Contains("is a directory", e.Message, StringComparison.Ordinal); break;
            default:
                var format = Assert.IsType<ModelFormatException>(e);
                Assert.Equal(path, format.FilePath);
                if (input.StartsWith("truncated", StringComparison.Ordinal)) Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
                if (input == "empty") Assert.Contains("empty", e.Message, StringComparison.Ordinal);
                if (input is "csv named .zip" or "gzip") Assert.Contains("not a zip archive", e.Message, StringComparison.Ordinal);
                break;
        }
    }

    [Fact]
    public void AFailedSaveNamesTheTargetNotTheTemporaryFile()
    {
        string path = PathOf("model.zip");
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, _ => { }, s => throw new IOException($"No space left on device : '{((FileStream)s).Name}'")));
        Assert.Contains($"Cannot save '{path}'", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(".tmp", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_folder));

        string directory = PathOf("folder.zip");
        Directory.CreateDirectory(directory);
        var onDirectory = Assert.Throws<IOException>(() => AtomicFile.Write(directory, s => s.WriteByte(1)));
        Assert.Contains($"'{directory}': it is a directory", onDirectory.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheNextSaveRemovesStaleTemporariesOfItsTargetOnly()
    {
        string path = PathOf("model.zip");
        string Temporary(string name) => PathOf($".{name}.{Guid.NewGuid():N}.tmp");
        string stale = Temporary("model.zip"), live = Temporary("model.zip");
        string[] others = [Temporary("other.zip"), Temporary("model.zip.bak"), PathOf($"model.zip.{Guid.NewGuid():N}.tmp"), PathOf(".model.zip.1234.tmp"), PathOf(".model.zip.tmp")];
        foreach (string file in others.Append(stale)) File.WriteAllBytes(file, [1, 2, 3]);
        using (var writer = new FileStream(live, FileMode.CreateNew, FileAccess.Write, FileShare.None))   // a live writer, as AtomicFile holds it
        {
            writer.Write([4, 5, 6]);
            AtomicFile.Write(path, s => s.Write("new"u8));
            Assert.False(File.Exists(stale));
            Assert.True(File.Exists(live));
            Assert.All(others, file => Assert.True(File.Exists(file), file));
        }
        AtomicFile.Write(path, s => s.Write("newer"u8));
        Assert.False(File.Exists(live));
        Assert.All(others, file => Assert.True(File.Exists(file), file));
        Assert.Equal("newer", File.ReadAllText(path));
    }

    [Fact]
    public void ASaveKilledMidWriteLeavesATemporaryThatTheNextSaveRemoves()
    {
        string path = PathOf("model.zip");
        var model = PrunedModel();
        AtomicFile.Write(path, s => ModelFile.Save(model, s));
        byte[] before = File.ReadAllBytes(path);

        // A child process (this test assembly run as a program) saves to the same path and is killed (SIGKILL) midway.
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in new[] { "exec", typeof(HostileFileTests).Assembly.Location, Program.KillMidSave, path }) start.ArgumentList.Add(argument);
        using (var child = Process.Start(start)!)
        {
            string output = child.StandardOutput.ReadToEnd() + child.StandardError.ReadToEnd();
            Assert.True(child.WaitForExit(120_000), "the child did not finish within 2 minutes");
            Assert.True(output.Contains(Program.Killing, StringComparison.Ordinal), $"the child did not reach the kill ({child.ExitCode}): {output}");
            Assert.NotEqual(0, child.ExitCode);
        }
        string[] debris = Directory.GetFiles(_folder, ".model.zip.*.tmp");
        Assert.Single(debris);
        Assert.True(new FileInfo(debris[0]).Length > 0);
        Assert.Equal(before, File.ReadAllBytes(path));

        AtomicFile.Write(path, s => ModelFile.Save(model, s));
        Assert.Equal([path], Directory.GetFileSystemEntries(_folder));
        Assert.Equal(model.Network.StateArrays, Assert.IsType<NeuralNetworkMulticlassModel>(Load(path)).Network.StateArrays);
    }
}
