using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Sparsity;
using Microsoft.ML.Sparsity.Training;
using Microsoft.ML.Sparsity.Transforms;

namespace Microsoft.ML.Sparsity;

/// <summary>
/// The starting point of every Microsoft.ML.Sparsity workflow, in the role of ML.NET's <c>MLContext</c>:
/// it holds the random seed and the thread count, and exposes the catalogs of data operations, trainers and transforms.
/// </summary>
/// <remarks>
/// With a fixed <see cref="Seed"/>, training is bit-for-bit reproducible, whatever <see cref="Threads"/> is: the engine
/// never splits a floating-point reduction across threads, so the thread count changes speed, not results.
/// A context owns worker threads; dispose it when done (or let the process end).
/// </remarks>
public sealed class SparsityContext : IDisposable
{
    private readonly Random _seedSource;
    private readonly object _seedLock = new();
    private WorkerPool? _pool;

    /// <summary>Creates a context.</summary>
    /// <param name="seed">The seed of every random choice the context makes when a method is not given its own seed
    /// (initial weights, shuffling, dropout). <see langword="null"/> picks a random seed.</param>
    /// <param name="threads">The number of threads the engine uses; 0 means <see cref="Environment.ProcessorCount"/>.</param>
    public SparsityContext(int? seed = null, int threads = 0)
    {
        if (threads < 0)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "Must be 0 (all processors) or a positive thread count.");
        Seed = seed;
        Threads = threads == 0 ? Environment.ProcessorCount : threads;
        _seedSource = seed is int s ? new Random(s) : new Random();
        Data = new DataOperationsCatalog(this);
        MulticlassClassification = new MulticlassClassificationCatalog(this);
        Sparsity = new SparsityCatalog(this);
        Model = new ModelOperationsCatalog(this);
        Transforms = new TransformsCatalog(this);
    }

    /// <summary>The seed the context was created with, or <see langword="null"/> when it picks random seeds.</summary>
    public int? Seed { get; }

    /// <summary>The number of threads the engine uses.</summary>
    public int Threads { get; }

    /// <summary>Loading, splitting and shuffling data.</summary>
    public DataOperationsCatalog Data { get; }

    /// <summary>Trainers and evaluation for multiclass classification.</summary>
    public MulticlassClassificationCatalog MulticlassClassification { get; }

    /// <summary>Sparsity methods (pruning, …) for trainers, and operations on trained models (prune, sparsity report).</summary>
    public SparsityCatalog Sparsity { get; }

    /// <summary>Data transforms that go in front of a trainer (the frequency-domain transform, …).</summary>
    public TransformsCatalog Transforms { get; }

    /// <summary>Saving, loading and exporting models.</summary>
    public ModelOperationsCatalog Model { get; }

    /// <summary>Raised with the context's log messages (training progress, data locations, warnings).</summary>
    public event EventHandler<LoggingEventArgs>? Log;

    internal WorkerPool Pool => _pool ??= new WorkerPool(Threads);

    /// <summary>Draws the next seed from the context's seed sequence (deterministic for a seeded context).</summary>
    internal int NextSeed()
    {
        lock (_seedLock) return _seedSource.Next();
    }

    internal void WriteLog(string source, string message) => Log?.Invoke(this, new LoggingEventArgs(source, message));

    /// <summary>Stops the context's worker threads.</summary>
    public void Dispose()
    {
        _pool?.Dispose();
        _pool = null;
    }
}

/// <summary>A log message raised by <see cref="SparsityContext.Log"/>.</summary>
public sealed class LoggingEventArgs : EventArgs
{
    internal LoggingEventArgs(string source, string message)
    {
        Source = source;
        Message = message;
    }

    /// <summary>The component that wrote the message, e.g. <c>NeuralNetworkTrainer</c>.</summary>
    public string Source { get; }

    /// <summary>The message.</summary>
    public string Message { get; }

    /// <inheritdoc/>
    public override string ToString() => $"[{Source}] {Message}";
}
