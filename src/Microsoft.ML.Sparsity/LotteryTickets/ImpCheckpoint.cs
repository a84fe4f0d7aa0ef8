using System.IO.Compression;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Serialization;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>
/// The checkpoint of iterative magnitude pruning: a zip with <c>checkpoint.json</c> (format version, the options and
/// data it belongs to, level, run, early-stop record, results so far, each entry's size and SHA-256), its SHA-256 in
/// <c>checkpoint.json.sha256</c>, and the networks as model files (<c>source.zip</c>, <c>rewind.zip</c>,
/// <c>current.zip</c>: weights, masks, optimiser state and step) plus the level's masks bit-packed. Written atomically,
/// so a killed run leaves the previous checkpoint or the new one.
/// </summary>
internal static class ImpCheckpoint
{
    /// <summary>Version 2 added the checksum of <c>checkpoint.json</c> and each model entry's size; version 1 checkpoints are refused (start the run over).</summary>
    public const int FormatVersion = 2;
    private const string ManifestEntry = "checkpoint.json";

    public static void Write(string path, ImpState state, NeuralNetworkMulticlassModel? current, SortedDictionary<string, string> options,
        Func<Stream, Stream>? wrap = null)
    {
        var entries = new List<(string Name, byte[] Bytes)>();
        var manifest = new Manifest
        {
            FormatVersion = FormatVersion,
            ProducerVersion = ModelFile.PackageVersion,
            Options = options,
            Level = state.Level,
            Phase = state.Phase,
            Tracking = current is null ? null : state.Tracking,
            Results = state.Results,
        };
        manifest.Source = Add(entries, "source.zip", ModelFile.ToBytes(state.Source));
        if (state.Rewind is { } rewind) manifest.Rewind = Add(entries, "rewind.zip", ModelFile.ToBytes(rewind));
        if (current is not null) manifest.Current = Add(entries, "current.zip", ModelFile.ToBytes(current));
        if (state.Masks is { } masks)
            manifest.Masks = masks.Select((m, l) => Add(entries, $"masks/{l}.bits", ModelFile.PackBits(m), m.Length)).ToList();
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            ZipEntries.WriteJson(zip, ManifestEntry, manifest);
            foreach (var (name, bytes) in entries) ZipEntries.Write(zip, name, bytes);
        }, wrap);
    }

    /// <summary>Reads a checkpoint written with the same <paramref name="options"/> (and data).</summary>
    /// <exception cref="ArgumentException">The checkpoint belongs to other options, another architecture or other data; the message names what differs.</exception>
    /// <exception cref="ModelFormatException">The checkpoint is damaged, truncated, edited or of another format; the message names the file and entry.</exception>
    public static ImpState Read(string path, SortedDictionary<string, string> options, WorkerPool pool)
    {
        try
        {
            using var stream = ModelFile.OpenRead(path, "checkpoint");
            using var zip = ZipEntries.Open(stream);
            var manifest = ReadManifest(zip);
            var differences = options.Keys.Union(manifest.Options?.Keys ?? Enumerable.Empty<string>()).Order(StringComparer.Ordinal)
                .Select(key => (Key: key, Theirs: manifest.Options?.GetValueOrDefault(key), Ours: options.GetValueOrDefault(key)))
                .Where(d => d.Theirs != d.Ours)
                .Select(d => $"its {d.Key} is {d.Theirs ?? "absent"}, this run's is {d.Ours ?? "absent"}")
                .ToList();
            if (differences.Count > 0)
                throw new ArgumentException(
                    $"The checkpoint '{path}' belongs to another run: {string.Join("; ", differences)}. " +
                    "Resume with the options and data it was written with, or delete it to start over.", nameof(options));
            if (manifest.Source is null) throw new ModelFormatException(ManifestEntry, "the checkpoint has no source network.");
            var source = ReadModel(zip, manifest.Source, pool);
            long parameters = source.Network.Parameters.Sum(p => (long)p.Length);
            var state = new ImpState
            {
                Level = manifest.Level,
                Phase = manifest.Phase,
                Source = source,
                Rewind = manifest.Rewind is null ? null : ReadModel(zip, manifest.Rewind, pool),
                Current = manifest.Current is null ? null : ReadModel(zip, manifest.Current, pool),
                Masks = manifest.Masks?.Select(m => ReadMask(zip, m, parameters)).ToArray(),
                Tracking = manifest.Tracking ?? new RunTracking(),
            };
            state.Results.AddRange(manifest.Results ?? []);
            if (state.Level < 0 || state.Phase < 0 || (state.Level > 0) != (state.Masks is not null) || (state.Current is not null && state.Current.Training is null))
                throw new ModelFormatException(ManifestEntry, $"the run state is inconsistent (level {state.Level}, run {state.Phase}, {state.Masks?.Length ?? 0} masks).");
            return state;
        }
        catch (ModelFormatException e)
        {
            throw e.InFile(path);
        }
        catch (Exception e) when (e is InvalidDataException or (IOException and not FileNotFoundException))
        {
            throw new ModelFormatException(path, null, $"the checkpoint cannot be read: {e.Message}", e);
        }
    }

    private static Manifest ReadManifest(ZipArchive zip)
    {
        if (zip.GetEntry(ManifestEntry) is null)
            throw new ModelFormatException(ManifestEntry, "the zip has no checkpoint.json, so it is not a lottery-ticket checkpoint; delete it or point CheckpointDirectory elsewhere.");
        var manifest = ZipEntries.ReadJson<Manifest>(zip, ManifestEntry, out bool checksummed);
        if (manifest.FormatVersion > FormatVersion)
            throw new ModelFormatException(ManifestEntry,
                $"the checkpoint has format version {manifest.FormatVersion} (written by {manifest.ProducerVersion}); this version ({ModelFile.PackageVersion}) reads up to {FormatVersion}.");
        if (manifest.FormatVersion < FormatVersion)
            throw new ModelFormatException(ManifestEntry,
                $"the checkpoint has format version {manifest.FormatVersion} (written by {manifest.ProducerVersion}, without checksums); this version reads format {FormatVersion} only. Delete it to start the run over.");
        if (!checksummed) throw new ModelFormatException(ManifestEntry + ZipEntries.ChecksumSuffix, "the entry is missing; it holds the checksum of checkpoint.json.");
        return manifest;
    }

    private static NeuralNetworkMulticlassModel ReadModel(ZipArchive zip, EntryRef entry, WorkerPool pool)
    {
        if (string.IsNullOrEmpty(entry.Name)) throw new ModelFormatException(ManifestEntry, "a model entry has no name.");
        var bytes = ZipEntries.ReadChecked(zip, entry.Name, entry.Sha256, entry.Bytes);
        try
        {
            return ModelFile.FromBytes(bytes, pool) as NeuralNetworkMulticlassModel
                ?? throw new ModelFormatException(null, "it is not a neural-network model.");
        }
        catch (ModelFormatException e)
        {
            throw e.InEntry(entry.Name);
        }
    }

    /// <summary>A level mask; masks cover some of the source network's parameters, which bound their length.</summary>
    private static float[] ReadMask(ZipArchive zip, EntryRef entry, long parameters)
    {
        if (string.IsNullOrEmpty(entry.Name)) throw new ModelFormatException(ManifestEntry, "a mask entry has no name.");
        if (entry.Length < 0 || entry.Length > parameters)
            throw new ModelFormatException(entry.Name, $"the mask length {entry.Length} is not between 0 and the network's {parameters} parameters.");
        return ModelFile.ReadMask(zip, entry.Name, entry.Sha256, entry.Length);
    }

    private static EntryRef Add(List<(string, byte[])> entries, string name, byte[] bytes, int length = 0)
    {
        entries.Add((name, bytes));
        return new EntryRef { Name = name, Sha256 = ZipEntries.Sha(bytes), Bytes = bytes.Length, Length = length };
    }

    private sealed class Manifest
    {
        public int FormatVersion { get; set; }
        public string ProducerVersion { get; set; } = "";
        public SortedDictionary<string, string>? Options { get; set; }
        public int Level { get; set; }
        public int Phase { get; set; }
        public EntryRef? Source { get; set; }
        public EntryRef? Rewind { get; set; }
        public EntryRef? Current { get; set; }
        public List<EntryRef>? Masks { get; set; }
        public RunTracking? Tracking { get; set; }
        public List<LotteryTicketLevelResult>? Results { get; set; }
    }

    private sealed class EntryRef
    {
        public string Name { get; set; } = "";
        public string Sha256 { get; set; } = "";

        /// <summary>The entry's size in bytes, checked against its header before it is read.</summary>
        public long Bytes { get; set; }

        /// <summary>A mask's number of values.</summary>
        public int Length { get; set; }
    }
}
