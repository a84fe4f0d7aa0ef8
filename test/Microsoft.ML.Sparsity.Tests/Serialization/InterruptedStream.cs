namespace Microsoft.ML.Sparsity.Tests.Serialization;

/// <summary>
/// Writes through to <paramref name="inner"/> until <paramref name="limit"/> bytes are written, then calls
/// <paramref name="interrupt"/> instead of writing more, standing in for a full disk (throw) or a killed process (kill):
/// the save under test is left half-written.
/// </summary>
internal sealed class InterruptedStream(Stream inner, long limit, Action interrupt) : Stream
{
    private long _written;

    /// <summary>Fails with an <see cref="IOException"/> once more than <paramref name="limit"/> bytes would be written.</summary>
    public static InterruptedStream Failing(Stream inner, long limit) => new(inner, limit, () => throw new IOException("simulated disk failure"));

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _written;
    public override long Position { get => _written; set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count)
    {
        int allowed = (int)Math.Clamp(limit - _written, 0, count);
        inner.Write(buffer, offset, allowed);
        _written += allowed;
        if (allowed == count) return;
        inner.Flush(); // what was written reaches the file before the interruption
        interrupt();
    }
}
