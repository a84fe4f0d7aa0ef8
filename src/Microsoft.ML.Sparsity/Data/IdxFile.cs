using System.Buffers.Binary;
using System.IO.Compression;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// The contents of an IDX file (the MNIST format): its dimensions and its unsigned-byte values in row-major order.
/// </summary>
internal sealed class IdxArray
{
    internal IdxArray(int[] dimensions, byte[] data)
    {
        Dimensions = dimensions;
        Data = data;
    }

    /// <summary>The size of each dimension, outermost first (e.g. <c>[60000, 28, 28]</c>).</summary>
    internal int[] Dimensions { get; }

    /// <summary>The values, row-major.</summary>
    internal byte[] Data { get; }

    /// <summary>The number of items (the first dimension).</summary>
    internal int Count => Dimensions[0];
}

/// <summary>
/// Reads IDX files: magic <c>0x00 0x00 type ndims</c>, <c>ndims</c> big-endian int32 dimensions, then the data.
/// Gzipped files are detected by their magic bytes (<c>1f 8b</c>), not by name. Only type <c>0x08</c> (unsigned byte) is supported.
/// </summary>
internal static class IdxFile
{
    private const byte UnsignedByteType = 0x08;
    private const int MaxDimensions = 8;

    /// <summary>Reads the IDX file at <paramref name="path"/>.</summary>
    /// <param name="path">The file, plain or gzipped.</param>
    /// <param name="contentDescription">What the data is, for error messages (e.g. "image data").</param>
    internal static IdxArray Read(string path, string contentDescription = "data")
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new FileNotFoundException($"'{path}' is a directory; an IDX file ({contentDescription}) was expected.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"The IDX file '{path}' does not exist.", path);

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        using Stream stream = IsGzip(file) ? new GZipStream(file, CompressionMode.Decompress) : file;
        return Read(stream, path, contentDescription);
    }

    private static bool IsGzip(FileStream file)
    {
        Span<byte> magic = stackalloc byte[2];
        int read = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        return read == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }

    private static IdxArray Read(Stream stream, string path, string contentDescription)
    {
        Span<byte> magic = stackalloc byte[4];
        int read = ReadFully(stream, magic, path);
        if (read < 4)
            throw new InvalidDataException(
                $"The IDX file '{path}' is truncated: expected a 4-byte magic number, found {read} bytes.");
        if (magic[0] != 0 || magic[1] != 0)
            throw new InvalidDataException(
                $"'{path}' is not an IDX file: expected a magic number starting with 0x00 0x00, found 0x{magic[0]:x2} 0x{magic[1]:x2}.");
        if (magic[2] != UnsignedByteType)
            throw new InvalidDataException(
                $"The IDX file '{path}' has data type 0x{magic[2]:x2}; only type 0x08 (unsigned byte) is supported.");
        int rank = magic[3];
        if (rank is < 1 or > MaxDimensions)
            throw new InvalidDataException(
                $"The IDX file '{path}' declares {rank} dimensions; expected between 1 and {MaxDimensions}.");

        Span<byte> header = stackalloc byte[4 * MaxDimensions];
        header = header[..(4 * rank)];
        read = ReadFully(stream, header, path);
        if (read < header.Length)
            throw new InvalidDataException(
                $"The IDX file '{path}' is truncated: expected {header.Length} bytes of dimensions ({rank} dimensions), found {read}.");

        var dimensions = new int[rank];
        for (int d = 0; d < rank; d++)
            dimensions[d] = BinaryPrimitives.ReadInt32BigEndian(header.Slice(4 * d, 4));
        long length = 1;
        foreach (int size in dimensions)
        {
            if (size < 0)
                throw new InvalidDataException(
                    $"The IDX file '{path}' declares a negative dimension: [{string.Join(", ", dimensions)}].");
            length = Math.Min(length * size, (long)Array.MaxLength + 1);
        }
        if (length > Array.MaxLength)
            throw new InvalidDataException(
                $"The IDX file '{path}' declares dimensions [{string.Join(", ", dimensions)}], too large to load.");

        var data = new byte[length];
        read = ReadFully(stream, data, path);
        if (read < data.Length)
            throw new InvalidDataException(
                $"The IDX file '{path}' is truncated: expected {data.Length} bytes of {contentDescription} " +
                $"(dimensions [{string.Join(", ", dimensions)}]), found {read}.");
        Span<byte> extra = stackalloc byte[1];
        if (ReadFully(stream, extra, path) != 0)
            throw new InvalidDataException(
                $"The IDX file '{path}' has more data than its dimensions [{string.Join(", ", dimensions)}] declare " +
                $"({data.Length} bytes of {contentDescription} expected).");
        return new IdxArray(dimensions, data);
    }

    private static int ReadFully(Stream stream, Span<byte> buffer, string path)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            // GZipStream throws InvalidDataException on corrupt compressed data without naming the file.
            throw new InvalidDataException($"The gzipped IDX file '{path}' is corrupt: {e.Message}", e);
        }
    }
}
