using System.Collections.Concurrent;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// A worker's data: each reference (with its split seed) is loaded once, hashed, and kept while the worker runs, so a
/// sweep's trials after the first on a worker cost no loading.
/// </summary>
internal sealed class WorkerData(WorkerLog log)
{
    /// <summary>Where the worker says what it runs (a worker host's console), or nowhere.</summary>
    public Action<string> Log => log.Write;

    private readonly ConcurrentDictionary<(SweepDataReference Data, int Seed), Lazy<(Dataset Train, Dataset Validation, string Hash)>> _loaded = new();
    private int _workStarted;

    /// <summary>The units of work (trials and P-GaP copies) this worker has started, refused ones included.</summary>
    public int WorkStarted => Volatile.Read(ref _workStarted);

    /// <summary>Counts a unit of work.</summary>
    public void Started() => Interlocked.Increment(ref _workStarted);

    /// <summary>Data sets kept at once; the least recently used goes when another comes (each Fashion-MNIST split holds about 380 MB).</summary>
    internal const int Kept = 2;

    private readonly List<(SweepDataReference Data, int Seed)> _recent = [];

    /// <summary>Marks a data set as just used and lets the least recently used go beyond <see cref="Kept"/>.</summary>
    private void Touch(SweepDataReference reference, int seed)
    {
        lock (_recent)
        {
            _recent.Remove((reference, seed));
            _recent.Add((reference, seed));
            while (_recent.Count > Kept)
            {
                _loaded.TryRemove(_recent[0], out _);
                _recent.RemoveAt(0);
            }
        }
    }

    /// <summary>The data of <paramref name="reference"/> split with <paramref name="seed"/>, checked against <paramref name="expectedHash"/>.</summary>
    /// <exception cref="WorkerMismatchException">This worker cannot load the data, or its copy has another SHA-256; the message names both hashes.</exception>
    public (Dataset Train, Dataset Validation) Get(SweepDataReference reference, int seed, string expectedHash, string worker)
    {
        var lazy = _loaded.GetOrAdd((reference, seed), key => new(() =>
        {
            var (train, validation) = key.Data.Load(key.Seed);
            return (train, validation, SparsitySweep.Fingerprint(train, validation));
        }));
        (Dataset Train, Dataset Validation, string Hash) loaded;
        try
        {
            loaded = lazy.Value;
        }
        catch (Exception e)
        {
            _loaded.TryRemove(new((reference, seed), lazy)); // a failed load is tried again next time (the files may appear)
            // Not the trial's fault: the worker refuses the work, and the others run it.
            if (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException or System.Net.Http.HttpRequestException)
                throw new WorkerMismatchException($"Worker {worker} cannot load the data '{reference}': {e.Message}", e);
            throw;
        }
        Touch(reference, seed);
        if (loaded.Hash != expectedHash)
            throw new WorkerMismatchException($"Worker {worker} has other data for '{reference}': its SHA-256 is {loaded.Hash}, the coordinator's is {expectedHash}.");
        return (loaded.Train, loaded.Validation);
    }

    /// <summary>Refuses work from a coordinator that runs another package version.</summary>
    /// <exception cref="WorkerMismatchException">The versions differ; the message names both.</exception>
    public static void CheckVersion(string coordinator, string worker)
    {
        if (coordinator != Serialization.ModelFile.PackageVersion)
            throw new WorkerMismatchException($"Worker {worker} runs Microsoft.ML.Sparsity {Serialization.ModelFile.PackageVersion}; the coordinator runs {coordinator}. Run the same version on every machine.");
    }
}

/// <summary>A worker's log of the work it starts and ends.</summary>
internal sealed record WorkerLog(Action<string> Write);
