using System.Collections.Concurrent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Runtime.Hosting;
using Orleans.Serialization;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Microsoft.ML.Sparsity.Distributed.Tests;

/// <summary>In-process clusters of Microsoft.ML.Sparsity workers for the tests.</summary>
internal static class TestClusters
{
    /// <summary>A deployed cluster of <paramref name="silos"/> workers sharing one grain storage that outlives any silo (as Redis does).</summary>
    public static async Task<TestCluster> Start(int silos = 3)
    {
        var builder = new TestClusterBuilder((short)silos);
        builder.AddSiloBuilderConfigurator<Workers>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>The workers' silo configuration.</summary>
    private sealed class Workers : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.AddSparsityWorker();
            silo.Services.AddGrainStorage(SparsityCluster.JournalStorageName, (services, _) => new ProcessGrainStorage(services.GetRequiredService<Serializer>()));
        }
    }

    /// <summary>The work a worker of <paramref name="cluster"/> started: trials and P-GaP copies.</summary>
    public static int WorkStarted(TestCluster cluster, SiloHandle silo) =>
        cluster.GetSiloServiceProvider(silo.SiloAddress).GetRequiredService<WorkerData>().WorkStarted;

    /// <summary>Grain state kept by the process (serialised, so a grain's later changes do not leak into it): it survives killed silos.</summary>
    /// <summary>The storage's next this-many writes fail (as a Redis outage would); 0 by default.</summary>
    public static int FailingWrites;

    private sealed class ProcessGrainStorage(Serializer serializer) : IGrainStorage
    {
        private static readonly ConcurrentDictionary<string, (string ETag, byte[] State)> Stored = new();

        private static string Key(string stateName, GrainId grain) => $"{stateName}/{grain}";

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (Stored.TryGetValue(Key(stateName, grainId), out var stored))
                (grainState.State, grainState.ETag, grainState.RecordExists) = (serializer.Deserialize<T>(stored.State), stored.ETag, true);
            return Task.CompletedTask;
        }

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (Interlocked.Decrement(ref FailingWrites) >= 0) throw new OrleansException("The storage is down (a test's failure).");
            Interlocked.Exchange(ref FailingWrites, 0);
            string etag = Guid.NewGuid().ToString("N");
            Stored[Key(stateName, grainId)] = (etag, serializer.SerializeToArray(grainState.State));
            (grainState.ETag, grainState.RecordExists) = (etag, true);
            return Task.CompletedTask;
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            Stored.TryRemove(Key(stateName, grainId), out _);
            (grainState.ETag, grainState.RecordExists) = (null, false);
            return Task.CompletedTask;
        }
    }
}
