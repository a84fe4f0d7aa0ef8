using System.Buffers.Binary;
using System.IO.Compression;

namespace Microsoft.ML.Sparsity.Tests.Data;

/// <summary>A temporary folder deleted on dispose, with helpers to write IDX files into it.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sparsity-data-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string WriteText(string name, string text)
    {
        string path = File(name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}

internal static class Idx
{
    /// <summary>The bytes of an IDX file: magic 0 0 type rank, big-endian dims, data.</summary>
    public static byte[] Bytes(int[] dims, byte[] data, byte type = 0x08)
    {
        var bytes = new byte[4 + 4 * dims.Length + data.Length];
        bytes[2] = type;
        bytes[3] = (byte)dims.Length;
        for (int d = 0; d < dims.Length; d++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        data.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    public static string Write(string path, byte[] bytes, bool gzip)
    {
        using var file = System.IO.File.Create(path);
        if (gzip)
        {
            using var zip = new GZipStream(file, CompressionLevel.Fastest);
            zip.Write(bytes);
        }
        else
        {
            file.Write(bytes);
        }
        return path;
    }

    public static string Write(string path, int[] dims, byte[] data, bool gzip = false) => Write(path, Bytes(dims, data), gzip);

    /// <summary>Writes a Fashion-MNIST-style image/label pair: image i has every pixel equal to i*10 % 256, label i % 10.</summary>
    public static void WriteFashionPair(string directory, string prefix, int count, bool gzip)
    {
        var pixels = new byte[count * 28 * 28];
        for (int i = 0; i < count; i++)
            pixels.AsSpan(i * 784, 784).Fill((byte)(i * 10 % 256));
        var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray();
        string suffix = gzip ? ".gz" : "";
        Write(System.IO.Path.Combine(directory, $"{prefix}-images-idx3-ubyte{suffix}"), [count, 28, 28], pixels, gzip);
        Write(System.IO.Path.Combine(directory, $"{prefix}-labels-idx1-ubyte{suffix}"), [count], labels, gzip);
    }
}
