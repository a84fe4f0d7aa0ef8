using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Serialization;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>Where a sweep's finished trials are kept, so that a sweep started again runs only the others.</summary>
internal interface ISweepJournal
{
    /// <summary>The finished trials, each checked against the settings the sweep draws for it.</summary>
    /// <exception cref="InvalidDataException">A record is damaged; the message names it.</exception>
    Dictionary<int, SweepTrial> ReadFinished(Func<int, TrialSettings> settingsOf);

    /// <summary>Keeps a finished trial (its model first, then its record) and returns it as the journal holds it.</summary>
    SweepTrial Write(int index, TrialSettings settings, SweepTrialStatus status, TrialOutcome outcome, TimeSpan duration, string? error);
}

/// <summary>
/// Thrown by a trial runner when no trial can run (e.g. no worker of a cluster can take them): it halts the sweep, as a
/// journal that cannot be written does, and the sweep rethrows its inner exception.
/// </summary>
internal sealed class SweepHaltException(Exception cause) : Exception(cause.Message, cause);

/// <summary>
/// Thrown by a trial runner whose trial could not start before the sweep's time budget ran out (a cluster's runner
/// waits for a free worker first): the trial is not run and not journaled, as a trial a sweep never reached.
/// </summary>
internal sealed class TrialNotStartedException() : Exception("The sweep's time budget ran out before a worker was free for the trial.");

/// <summary>
/// A sweep's folder: <c>sweep.json</c> (the sweep's definition) and, per finished trial, <c>trial-NNNN.model</c> (a
/// completed trial's model) and then <c>trial-NNNN.json</c> (its record; written last, atomically, so a trial counts as
/// finished exactly when its record is there). A resumed sweep reads the records and runs only the trials without one.
/// </summary>
internal sealed class SweepJournal : ISweepJournal
{
    private const string DefinitionFile = "sweep.json";
    private readonly string _folder;
    private readonly WorkerPool _pool;

    /// <summary>Opens (or starts) the journal in <paramref name="folder"/> for the sweep <paramref name="definition"/> describes.</summary>
    /// <exception cref="ArgumentException">The folder holds another sweep's journal; the message names the first line that differs.</exception>
    /// <exception cref="InvalidDataException">The folder's sweep.json is damaged; the message names the file.</exception>
    public SweepJournal(string folder, IReadOnlyList<string> definition, WorkerPool pool)
    {
        (_folder, _pool) = (Path.GetFullPath(folder), pool);
        Directory.CreateDirectory(_folder);
        string path = Path.Combine(_folder, DefinitionFile);
        if (!File.Exists(path))
        {
            AtomicFile.Write(path, s => JsonSerializer.Serialize(s, new JsonObject { ["definition"] = new JsonArray([.. definition.Select(d => JsonValue.Create(d))]) }, Indented));
            return;
        }
        string[] existing;
        try
        {
            existing = [.. JsonNode.Parse(File.ReadAllText(path))!["definition"]!.AsArray().Select(n => n!.GetValue<string>())];
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"The sweep journal '{path}' is damaged ({e.Message}); delete the folder to start afresh.", e);
        }
        for (int i = 0; i < Math.Max(existing.Length, definition.Count); i++)
        {
            string? was = i < existing.Length ? existing[i] : null, now = i < definition.Count ? definition[i] : null;
            if (was != now)
                throw new ArgumentException($"The journal folder '{folder}' holds another sweep: it was made with \"{was ?? "(nothing)"}\", this sweep has \"{now ?? "(nothing)"}\". " +
                    "Use another folder, or the same definition to resume.", "JournalFolder");
        }
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private string RecordPath(int index) => Path.Combine(_folder, $"trial-{index:D4}.json");
    private string ModelPath(int index) => Path.Combine(_folder, $"trial-{index:D4}.model");

    /// <summary>The finished trials' records, checked against the settings the sweep draws for them.</summary>
    /// <exception cref="InvalidDataException">A record is damaged or its model is missing; the message names the file.</exception>
    public Dictionary<int, SweepTrial> ReadFinished(Func<int, TrialSettings> settingsOf)
    {
        var finished = new Dictionary<int, SweepTrial>();
        foreach (string path in Directory.EnumerateFiles(_folder, "trial-*.json"))
        {
            if (!int.TryParse(Path.GetFileNameWithoutExtension(path)["trial-".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int index)) continue;
            string what = $"The trial record '{path}'", remedy = $"delete it to run trial {index} again";
            var record = TrialRecord.Parse(File.ReadAllText(path), index, settingsOf(index), what, remedy);
            string? model = record.Status == SweepTrialStatus.Completed ? ModelPath(index) : null;
            // The model is written before its record, so a record's model is whole unless something damaged it since.
            if (model is not null && (!File.Exists(model) || new FileInfo(model).Length != record.Bytes))
                throw new InvalidDataException($"{what} is damaged (its model '{model}' is {(File.Exists(model) ? $"{new FileInfo(model).Length:N0} bytes where the record says {record.Bytes:N0}" : "missing")}); {remedy}.");
            finished[index] = record.ToTrial(index, model, null, _pool);
        }
        return finished;
    }

    /// <summary>Writes a finished trial: its model first, then its record (the commit).</summary>
    public SweepTrial Write(int index, TrialSettings settings, SweepTrialStatus status, TrialOutcome outcome, TimeSpan duration, string? error)
    {
        string? modelPath = null;
        var file = outcome.ModelFileBytes();
        if (file is not null)
        {
            modelPath = ModelPath(index);
            AtomicFile.Write(modelPath, s => s.Write(file));
        }
        var record = TrialRecord.Of(settings, status, outcome, file?.Length, duration, error);
        AtomicFile.Write(RecordPath(index), s => s.Write(System.Text.Encoding.UTF8.GetBytes(record.ToJson())));
        return record.ToTrial(index, modelPath, outcome.Model, _pool);
    }
}

/// <summary>
/// A finished trial's record as a journal keeps it, in JSON (a folder's <c>trial-NNNN.json</c>, a cluster's journal
/// grain); the model is kept apart, and the record says its size.
/// </summary>
internal sealed record TrialRecord(TrialSettings Settings, SweepTrialStatus Status, double[] Curve, double? Sparsity, long? Bytes, double Seconds, string? Error)
{
    private static readonly JsonSerializerOptions Format = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static TrialRecord Of(TrialSettings settings, SweepTrialStatus status, TrialOutcome outcome, long? bytes, TimeSpan duration, string? error) =>
        new(settings, status, [.. outcome.Curve], outcome.ModelSparsity, bytes, duration.TotalSeconds, error);

    public string ToJson() => JsonSerializer.Serialize(this, Format);

    /// <summary>Reads trial <paramref name="index"/>'s record and checks it has the settings the sweep draws for it.</summary>
    /// <exception cref="InvalidDataException">The record is damaged, or has other settings; the message begins with <paramref name="what"/>.</exception>
    public static TrialRecord Parse(string json, int index, TrialSettings expected, string what, string remedy)
    {
        TrialRecord record;
        try
        {
            record = JsonSerializer.Deserialize<TrialRecord>(json, Format) ?? throw new FormatException("no record");
            if (record.Settings is null || record.Curve is null) throw new FormatException("no settings or curve");
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or FormatException or ArgumentException)
        {
            throw new InvalidDataException($"{what} is damaged ({e.Message}); {remedy}.", e);
        }
        if (record.Settings != expected)
            throw new InvalidDataException($"{what} has settings ({record.Settings}) other than this sweep's trial {index} ({expected}); the journal holds another sweep.");
        return record;
    }

    public SweepTrial ToTrial(int index, string? modelPath, NeuralNetworkMulticlassModel? model, WorkerPool pool) =>
        new(index, Settings, Status, Curve, Sparsity, Bytes, TimeSpan.FromSeconds(Seconds), Error, modelPath, model, pool);
}
