using Microsoft.ML.Runtime;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// What the package's components take from the <see cref="MLContext"/> they were created from: seeds from the
/// context's random source (so <c>new MLContext(seed: 1)</c> makes runs reproducible), log messages into
/// <see cref="MLContext.Log"/>, and the engine's worker threads.
/// </summary>
internal sealed class SparsityHost
{
    private readonly IHost _host;
    private readonly object _seedLock = new();

    /// <param name="environment">The ML.NET context (or any host environment).</param>
    /// <param name="name">The component's name, shown in the context's log.</param>
    /// <param name="threads">The engine's thread count; null means every processor.</param>
    public SparsityHost(IHostEnvironment environment, string name, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (threads is < 1)
            throw new ArgumentOutOfRangeException("NumberOfThreads", threads, "NumberOfThreads must be at least 1, or null for every processor.");
        Environment = environment;
        _host = environment.Register(name);
        Threads = threads ?? System.Environment.ProcessorCount;
    }

    /// <summary>The context the component was created from.</summary>
    public IHostEnvironment Environment { get; }

    /// <summary>The number of threads the engine uses.</summary>
    public int Threads { get; }

    /// <summary>The engine's persistent threads for <see cref="Threads"/>, shared by every component of the process.</summary>
    public WorkerPool Pool => WorkerPool.Shared(Threads);

    /// <summary>Draws the next seed from the context's random source (deterministic for a seeded context).</summary>
    public int NextSeed()
    {
        lock (_seedLock) return _host.Rand.Next();
    }

    /// <summary>Writes an informational message to the context's log.</summary>
    public void WriteLog(string message)
    {
        using IChannel channel = _host.Start("Sparsity");
        channel.Info(MessageSensitivity.None, message);
    }
}
