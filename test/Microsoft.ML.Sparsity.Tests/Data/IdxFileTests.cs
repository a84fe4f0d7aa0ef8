using Microsoft.ML.Sparsity.Data;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Data;

public sealed class IdxFileTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_plain_and_gzipped_files_whatever_their_name(bool gzip)
    {
        using var dir = new TempFolder();
        var data = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)(i * 7)).ToArray();
        // The name says nothing about compression: detection is by the gzip magic bytes.
        string path = Idx.Write(dir.File("array.bin"), [2, 3, 4], data, gzip);

        IdxArray array = IdxFile.Read(path);

        Assert.Equal([2, 3, 4], array.Dimensions);
        Assert.Equal(2, array.Count);
        Assert.Equal(data, array.Data);
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        using var dir = new TempFolder();
        string path = dir.File("nope-idx1-ubyte");
        var e = Assert.Throws<FileNotFoundException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Equal(path, e.FileName);
    }

    [Fact]
    public void A_directory_where_the_file_should_be_is_named_as_such()
    {
        using var dir = new TempFolder();
        string path = dir.File("train-images-idx3-ubyte");
        Directory.CreateDirectory(path);
        var e = Assert.Throws<FileNotFoundException>(() => IdxFile.Read(path, "image data"));
        Assert.Contains($"'{path}' is a directory", e.Message);
        Assert.Equal(path, e.FileName);
    }

    /// <summary>A 3×4×5 file cut at offsets inside the magic number, the dimensions and the data, plain and gzipped.</summary>
    [Theory]
    [InlineData(false, 2)]
    [InlineData(false, 9)]
    [InlineData(false, 17)]
    [InlineData(false, 75)]
    [InlineData(true, 2)]
    [InlineData(true, 9)]
    [InlineData(true, 17)]
    [InlineData(true, 75)]
    public void A_file_truncated_anywhere_says_truncated_and_names_the_path(bool gzip, int keptBytes)
    {
        using var dir = new TempFolder();
        var bytes = Idx.Bytes([3, 4, 5], Enumerable.Range(0, 60).Select(i => (byte)i).ToArray());
        string path = dir.File("cut-idx3-ubyte");
        Idx.Write(path, bytes[..keptBytes], gzip);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Wrong_magic_number_is_rejected()
    {
        using var dir = new TempFolder();
        var bytes = Idx.Bytes([1], [5]);
        bytes[0] = 0x12;
        string path = Idx.Write(dir.File("bad"), bytes, gzip: false);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("magic", e.Message);
    }

    [Fact]
    public void Unsupported_type_is_rejected_with_a_clear_message()
    {
        using var dir = new TempFolder();
        string path = Idx.Write(dir.File("floats"), Idx.Bytes([1], [0, 0, 0, 0], type: 0x0D), gzip: false);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("0x0d", e.Message);
        Assert.Contains("0x08 (unsigned byte)", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Truncated_header_is_rejected(bool gzip)
    {
        using var dir = new TempFolder();
        var bytes = Idx.Bytes([10, 28, 28], new byte[10 * 784]).AsSpan(0, 9).ToArray(); // magic + 1 of 3 dimensions + 1 byte
        string path = Idx.Write(dir.File("short"), bytes, gzip);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("expected 12 bytes of dimensions", e.Message);
        Assert.Contains("found 5", e.Message);
    }

    [Fact]
    public void Empty_file_is_rejected()
    {
        using var dir = new TempFolder();
        string path = dir.WriteText("empty", "");
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("found 0 bytes", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Truncated_data_says_what_was_expected_and_found(bool gzip)
    {
        using var dir = new TempFolder();
        var bytes = Idx.Bytes([100, 28, 28], new byte[100 * 784]);
        string path = Idx.Write(dir.File("images"), bytes.AsSpan(0, 16 + 1000).ToArray(), gzip);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path, "image data"));
        Assert.Contains(path, e.Message);
        Assert.Contains("expected 78400 bytes of image data", e.Message);
        Assert.Contains("found 1000", e.Message);
    }

    [Fact]
    public void Trailing_data_is_rejected()
    {
        using var dir = new TempFolder();
        var bytes = Idx.Bytes([3], [1, 2, 3]).Concat(new byte[] { 4 }).ToArray();
        string path = Idx.Write(dir.File("long"), bytes, gzip: false);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("more data", e.Message);
    }

    [Fact]
    public void Corrupt_gzip_names_the_file()
    {
        using var dir = new TempFolder();
        string path = dir.File("corrupt.gz");
        File.WriteAllBytes(path, [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x22]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
    }
}
