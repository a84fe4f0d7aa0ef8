using System.Text.RegularExpressions;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>
/// Writes a file so that readers see either the old file or the complete new one, never a partial file, and cleans up
/// after writers that were killed.
/// </summary>
/// <remarks>
/// The content goes to a hidden temporary file <c>.{name}.{32 hex digits}.tmp</c> next to the target, opened with
/// <see cref="FileShare.None"/> for the whole write: that is an exclusive lock (a <c>flock</c> on Unix, a sharing mode
/// on Windows) which the operating system releases when the writer closes the file or dies. A process killed
/// mid-write leaves its temporary file behind; the next write to the same target (and the next resume of a
/// lottery-ticket run) removes the temporaries of that target whose lock it can take, which are exactly those no live
/// writer (in this process or another) is writing. Only names of that exact pattern are touched.
/// </remarks>
internal static class AtomicFile
{
    /// <summary>Writes to a temporary file in the same folder, flushes it to disk, then renames it over <paramref name="path"/>.</summary>
    /// <param name="path">The destination.</param>
    /// <param name="write">Writes the content.</param>
    /// <param name="wrap">Test seam: wraps the temporary file's stream (e.g. to fail midway).</param>
    /// <exception cref="IOException">The file cannot be written (the message names <paramref name="path"/>); the existing file is unchanged.</exception>
    /// <exception cref="UnauthorizedAccessException">Writing to the folder of <paramref name="path"/> is not permitted.</exception>
    public static void Write(string path, Action<Stream> write, Func<Stream, Stream>? wrap = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no folder.", nameof(path));
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Cannot save '{path}': its folder '{folder}' does not exist.");
        if (Directory.Exists(full)) throw new IOException($"Cannot save '{path}': it is a directory; a file path was expected.");
        RemoveStaleTemporaries(full);
        string temporary = TemporaryPath(full);
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            // The temporary file is an implementation detail: the message names the file the caller asked for.
            string message = $"Cannot save '{path}': {e.Message.Replace(temporary, full, StringComparison.Ordinal)}";
            if (e is UnauthorizedAccessException) throw new UnauthorizedAccessException(message, e);
            throw new IOException(message, e);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>A new temporary file name for <paramref name="path"/>: <c>.{name}.{32 hex digits}.tmp</c> in its folder.</summary>
    public static string TemporaryPath(string path)
    {
        string full = Path.GetFullPath(path);
        return Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
    }

    /// <summary>
    /// Removes the temporary files that killed writers of <paramref name="path"/> left behind: those of its exact name
    /// pattern whose exclusive lock can be taken (a live writer holds its own). Files it cannot remove are left alone.
    /// </summary>
    public static void RemoveStaleTemporaries(string path)
    {
        string full = Path.GetFullPath(path);
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder)) return;
        var pattern = new Regex($"^\\.{Regex.Escape(Path.GetFileName(full))}\\.[0-9a-f]{{32}}\\.tmp$", RegexOptions.CultureInvariant);
        foreach (string candidate in Directory.EnumerateFiles(folder, ".*.tmp"))
        {
            if (!pattern.IsMatch(Path.GetFileName(candidate))) continue;
            try
            {
                // Taking the lock proves no writer has the file open; closing deletes it while the lock is still held.
                using var stale = new FileStream(candidate, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A live writer's (locked), already gone, or not ours to delete.
            }
        }
    }

    private static void TryDelete(string file)
    {
        try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
