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
    /// <param name="threads">
    /// The engine's thread count; null means <see cref="System.Environment.ProcessorCount"/>, which .NET already
    /// derives from the process's affinity mask and its cgroup CPU quota (v1 <c>cpu.cfs_quota_us</c>, v2
    /// <c>cpu.max</c>, rounded up; checked on .NET 10: a 0.5-CPU quota gives 1, a 1.5-CPU quota 2, <c>taskset -c 0</c>
    /// gives 1) and which <c>DOTNET_PROCESSOR_COUNT</c> overrides. A rounded-up quota costs nothing: the kernel
    /// throttles all of the process's threads together, so none of them is left behind holding a parallel call.
    /// </param>
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
