using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>
/// Reading and writing the entries of model files and checkpoints so that a hostile or damaged file cannot make the
/// reader allocate more than the file's description allows: every entry's declared size is checked against the size
/// its reader expects before anything is allocated, and no more than that is ever read (a deflate bomb stops there).
/// Every entry is covered by a SHA-256: tensors by the manifest, and the manifest (a JSON entry) by a sidecar entry
/// <c>{name}.sha256</c> holding its hex digest.
/// </summary>
internal static class ZipEntries
{
    /// <summary>The most a JSON entry (manifest, checkpoint description) may hold: far above any real one (a million class names).</summary>
    public const long MaxJsonBytes = 16 << 20;

    /// <summary>The suffix of a JSON entry's checksum sidecar.</summary>
    public const string ChecksumSuffix = ".sha256";

    private const int Sha256HexLength = 64;

    /// <summary>Opens a zip for reading; when it is not one, says whether the file is empty, truncated or something else.</summary>
    public static ZipArchive Open(Stream stream)
    {
        try
        {
            return new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new ModelFormatException(null, Diagnose(stream, e), e);
        }
    }

    private static string Diagnose(Stream stream, InvalidDataException e)
    {
        if (!stream.CanSeek) return $"the data is not a readable zip archive ({e.Message}).";
        if (stream.Length == 0) return "the file is empty (0 bytes); a zip archive was expected.";
        Span<byte> signature = stackalloc byte[4];
        stream.Position = 0;
        int read = stream.ReadAtLeast(signature, 4, throwOnEndOfStream: false);
        return read == 4 && signature.SequenceEqual("PK\u0003\u0004"u8)
            ? $"the file is truncated or its end is damaged: it starts as a zip archive, but the zip directory at its end ({stream.Length} bytes in) is missing or unreadable ({e.Message})."
            : $"the file is not a zip archive (it does not start with the zip signature PK\\x03\\x04; {stream.Length} bytes).";
    }

    /// <summary>Reads the entry <paramref name="name"/>, which must hold exactly <paramref name="length"/> bytes whose SHA-256 is <paramref name="sha256"/>.</summary>
    public static byte[] ReadChecked(ZipArchive zip, string? name, string? sha256, long length)
    {
        if (string.IsNullOrEmpty(name)) throw new ModelFormatException(ModelFile.ManifestEntry, "a tensor has no entry name.");
        var bytes = Read(zip, name, length, exact: true);
        Verify(name, bytes, sha256);
        return bytes;
    }

    /// <summary>Throws unless the SHA-256 of <paramref name="bytes"/> (the entry <paramref name="name"/>) is <paramref name="sha256"/>.</summary>
    public static void Verify(string name, byte[] bytes, string? sha256)
    {
        if (!string.Equals(Sha(bytes), sha256, StringComparison.OrdinalIgnoreCase))
            throw new ModelFormatException(name, "its SHA-256 does not match the one recorded for it: the entry is damaged or was edited.");
    }

    /// <summary>
    /// Reads the JSON entry <paramref name="name"/> (at most <see cref="MaxJsonBytes"/>), checks it against its sidecar
    /// <c>{name}.sha256</c> when the file has one (<paramref name="checksummed"/> says whether it had), and deserialises it.
    /// </summary>
    public static T ReadJson<T>(ZipArchive zip, string name, out bool checksummed) where T : class
    {
        var bytes = Read(zip, name, MaxJsonBytes, exact: false);
        checksummed = zip.GetEntry(name + ChecksumSuffix) is not null;
        if (checksummed)
            Verify(name, bytes, Encoding.ASCII.GetString(Read(zip, name + ChecksumSuffix, Sha256HexLength, exact: true)));
        try
        {
            return JsonSerializer.Deserialize<T>(bytes, ModelManifest.Json) ?? throw new ModelFormatException(name, "the entry holds the JSON value null.");
        }
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            throw new ModelFormatException(name, $"the entry is not valid JSON of the expected form: {e.Message}", e);
        }
    }

    /// <summary>Writes <paramref name="value"/> as the JSON entry <paramref name="name"/> and its checksum sidecar.</summary>
    public static void WriteJson<T>(ZipArchive zip, string name, T value)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, ModelManifest.Json);
        Write(zip, name, bytes);
        Write(zip, name + ChecksumSuffix, Encoding.ASCII.GetBytes(Sha(bytes)));
    }

    /// <summary>
    /// Reads the entry <paramref name="name"/>: exactly <paramref name="length"/> bytes, or at most that many when not
    /// <paramref name="exact"/>. The header's declared size is checked before allocating and the data read never goes past it.
    /// </summary>
    public static byte[] Read(ZipArchive zip, string name, long length, bool exact)
    {
        try
        {
            var entry = Find(zip, name, length, exact);
            long declared = entry.Length;
            var bytes = new byte[declared];
            using var stream = entry.Open();
            int read = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            if (read < bytes.Length)
                throw new ModelFormatException(name, $"the entry is truncated: it holds {read} bytes; its header declares {declared}.");
            if (stream.ReadByte() >= 0)
                throw new ModelFormatException(name, $"the entry holds more than the {declared} bytes its header declares.");
            return bytes;
        }
        catch (Exception e) when (e is InvalidDataException or (IOException and not ModelFormatException))
        {
            throw new ModelFormatException(name, $"the entry cannot be read (truncated or damaged): {e.Message}", e);
        }
    }

    /// <summary>The entry <paramref name="name"/>, once its header declares exactly <paramref name="length"/> bytes (at most that many when not <paramref name="exact"/>).</summary>
    public static ZipArchiveEntry Find(ZipArchive zip, string name, long length, bool exact)
    {
        var entry = zip.GetEntry(name) ?? throw new ModelFormatException(name, "the entry is missing.");
        long declared = entry.Length;
        if (exact && declared < length)
            throw new ModelFormatException(name, $"the entry is truncated: its header declares {declared} bytes; {length} were expected.");
        if (declared > length)
            throw new ModelFormatException(name, exact
                ? $"its header declares {declared} bytes; {length} were expected. Nothing was read."
                : $"its header declares {declared} bytes, more than the {length} an entry of its kind may hold. Nothing was read.");
        if (declared > Array.MaxLength) throw new ModelFormatException(name, $"its header declares {declared} bytes, more than one array can hold.");
        return entry;
    }

    /// <summary>Writes an entry with a fixed timestamp, so that saving the same thing twice gives the same bytes.</summary>
    public static void Write(ZipArchive zip, string name, byte[] bytes)
    {
        var entry = zip.CreateEntry(name, CompressionLevel.Fastest);
        entry.LastWriteTime = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
        using var stream = entry.Open();
        stream.Write(bytes);
    }

    /// <summary>The lowercase hex SHA-256 of <paramref name="bytes"/>.</summary>
    public static string Sha(ReadOnlySpan<byte> bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();
}
