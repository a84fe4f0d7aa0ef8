namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>Writes a file so that readers see either the old file or the complete new one, never a partial file.</summary>
internal static class AtomicFile
{
    /// <summary>Writes to a temporary file in the same folder, flushes it to disk, then renames it over <paramref name="path"/>.</summary>
    /// <param name="path">The destination.</param>
    /// <param name="write">Writes the content.</param>
    /// <param name="wrap">Test seam: wraps the temporary file's stream (e.g. to fail midway).</param>
    public static void Write(string path, Action<Stream> write, Func<Stream, Stream>? wrap = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no folder.", nameof(path));
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"The folder of '{path}' does not exist: {folder}");
        string temporary = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                var stream = wrap?.Invoke(file) ?? file;
                write(stream);
                stream.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
