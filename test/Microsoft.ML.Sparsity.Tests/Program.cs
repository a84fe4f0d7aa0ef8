using System.Diagnostics;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Serialization;

namespace Microsoft.ML.Sparsity.Tests;

/// <summary>
/// The test assembly as a program (its project turns off the test SDK's generated, empty one): the test host never
/// calls <see cref="Main"/>; tests run the assembly with <c>dotnet exec</c> for what needs a process of its own, such as
/// one killed in the middle of a save.
/// </summary>
internal static class Program
{
    /// <summary>Saves a model to the path given and kills itself (SIGKILL) once the first bytes are on disk.</summary>
    public const string KillMidSave = "kill-mid-save";

    /// <summary>Printed just before the kill, so the test knows it happened mid-write.</summary>
    public const string Killing = "killing this process mid-write";

    public static int Main(string[] args)
    {
        if (args is not [KillMidSave, var path])
        {
            Console.Error.WriteLine($"usage: dotnet exec Microsoft.ML.Sparsity.Tests.dll {KillMidSave} <path>");
            return 2;
        }
        var model = HostileFiles.PrunedModel();
        AtomicFile.Write(path, s => ModelFile.Save(model, s), s => new KillingStream(s));
        Console.Error.WriteLine("the save finished: it was not killed");
        return 1;
    }

    /// <summary>Writes through to the file; once 100 bytes are written and flushed, kills the process.</summary>
    private sealed class KillingStream(Stream inner) : Stream
    {
        private long _written;

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
            inner.Write(buffer, offset, count);
            _written += count;
            if (_written < 100) return;
            inner.Flush();
            Console.Out.WriteLine(Killing);
            Console.Out.Flush();
            Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
