/// <summary>
/// How the samples write their result files (CSV rows, plots): a temporary file beside the target, renamed over it, so
/// a reader never sees half a file and an interrupted write leaves the old one. (The package's own atomic writer is
/// internal to it.)
/// </summary>
internal static class AtomicWrite
{
    public static void Bytes(string path, byte[] content)
    {
        string full = Path.GetFullPath(path);
        string temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temporary, content);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
