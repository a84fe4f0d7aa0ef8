using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Masks;

namespace Microsoft.ML.Sparsity.Tests.Serialization;

/// <summary>Builds good model files and edits them into hostile or damaged ones: zips as ordered entry lists.</summary>
internal static class HostileFiles
{
    public static readonly WorkerPool Pool = WorkerPool.Shared(2);

    /// <summary>A 6×6×2-input MLP (flatten, dense0 16, ReLU, dense1 4) 75% pruned: masked, kept-only tensors.</summary>
    public static NeuralNetworkMulticlassModel PrunedModel()
    {
        var network = SparsityTestNetworks.Build([6, 6, 2], 3, Layers.Flatten(), Layers.Dense(16), Layers.ReLU(), Layers.Dense(4));
        SparsityTestNetworks.PruneNow(network, new PruningOptions { TargetSparsity = 0.75 });
        return new NeuralNetworkMulticlassModel(network, 4, null, "Features", []);
    }

    public static byte[] ModelBytes(ITransformer model)
    {
        using var stream = new MemoryStream();
        ModelFile.Save(model, stream);
        return stream.ToArray();
    }

    public static List<(string Name, byte[] Bytes)> ReadZip(byte[] bytes)
    {
        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        return [.. zip.Entries.Select(e =>
        {
            using var s = e.Open();
            using var m = new MemoryStream();
            s.CopyTo(m);
            return (e.FullName, m.ToArray());
        })];
    }

    public static byte[] WriteZip(IEnumerable<(string Name, byte[] Bytes)> entries)
    {
        using var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, content) in entries)
            {
                using var s = zip.CreateEntry(name).Open();
                s.Write(content);
            }
        return stream.ToArray();
    }

    public static byte[] Get(List<(string Name, byte[] Bytes)> entries, string name) => entries.Single(e => e.Name == name).Bytes;

    public static void Set(List<(string Name, byte[] Bytes)> entries, string name, byte[] bytes) => entries[entries.FindIndex(e => e.Name == name)] = (name, bytes);

    public static JsonObject Json(List<(string Name, byte[] Bytes)> entries, string name) => JsonNode.Parse(Get(entries, name))!.AsObject();

    /// <summary>Replaces a JSON entry without touching its checksum sidecar (a careless edit or damage).</summary>
    public static void SetJson(List<(string Name, byte[] Bytes)> entries, string name, JsonObject json) =>
        Set(entries, name, Encoding.UTF8.GetBytes(json.ToJsonString()));

    /// <summary>Replaces a JSON entry and recomputes its checksum sidecar (a crafted file).</summary>
    public static void SetJsonAndChecksum(List<(string Name, byte[] Bytes)> entries, string name, JsonObject json)
    {
        SetJson(entries, name, json);
        Set(entries, name + ".sha256", Encoding.ASCII.GetBytes(Sha(Get(entries, name))));
    }

    /// <summary>Replaces a JSON entry of an archive open for update and recomputes its checksum sidecar (a crafted edit).</summary>
    public static void ReplaceJson(ZipArchive archive, string name, string json)
    {
        var bytes = new UTF8Encoding(false).GetBytes(json);
        foreach (var (entry, content) in new[] { (name, bytes), (name + ".sha256", Encoding.ASCII.GetBytes(Sha(bytes))) })
        {
            archive.GetEntry(entry)?.Delete();
            using var stream = archive.CreateEntry(entry).Open();
            stream.Write(content);
        }
    }

    public static string Sha(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();

    /// <summary>
    /// Writes <paramref name="entries"/> to <paramref name="path"/> with the entry <paramref name="bomb"/> replaced by
    /// <paramref name="megabytes"/> MB of zeros, streamed through deflate (the file stays small).
    /// </summary>
    public static void WriteWithZeroEntry(string path, List<(string Name, byte[] Bytes)> entries, string bomb, int megabytes)
    {
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        var zeros = new byte[1 << 20];
        foreach (var (name, content) in entries)
        {
            using var s = zip.CreateEntry(name, CompressionLevel.Optimal).Open();
            if (name != bomb) s.Write(content);
            else for (int i = 0; i < megabytes; i++) s.Write(zeros);
        }
    }
}
