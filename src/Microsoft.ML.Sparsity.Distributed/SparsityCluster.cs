using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using StackExchange.Redis;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// Workers and coordinators of a Microsoft.ML.Sparsity cluster. A cluster is named by a string: <c>localhost</c>
/// (Orleans' development clustering on this machine: the first worker listens on 11111 and its gateway on 30000, and
/// the journal lives in the workers' memory) or <c>redis://HOST:PORT</c> (Redis keeps the membership and the journal,
/// so a deployment survives any worker and any coordinator).
/// </summary>
public static class SparsityCluster
{
    /// <summary>The development cluster's first worker's silo port; the others join through it.</summary>
    public const int LocalhostPrimaryPort = 11111;

    /// <summary>The development cluster's first worker's gateway port, which coordinators connect to.</summary>
    public const int LocalhostGatewayPort = 30000;

    /// <summary>Orleans' cluster and service id of every Microsoft.ML.Sparsity cluster.</summary>
    public const string ClusterId = "ml-sparsity";

    /// <summary>Makes a silo a worker: it runs trials and P-GaP copies and keeps its data loaded between them.</summary>
    /// <param name="silo">The silo; it also needs clustering and a grain storage named <see cref="JournalStorageName"/>.</param>
    /// <param name="log">Receives a line when a unit of work starts and ends; null: none.</param>
    public static ISiloBuilder AddSparsityWorker(this ISiloBuilder silo, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Services.AddSingleton(new WorkerLog(log ?? (_ => { })));
        silo.Services.AddSingleton<WorkerData>();
        return silo;
    }

    /// <summary>The name of the grain storage provider the journal needs (Redis, or memory for development and tests).</summary>
    public static string JournalStorageName => JournalStorage.Name;

    /// <summary>
    /// A worker host for <paramref name="cluster"/>: start it (<c>RunAsync</c>) to join the cluster and take work.
    /// </summary>
    /// <param name="cluster"><c>localhost</c> or <c>redis://HOST:PORT</c>.</param>
    /// <param name="siloPort">The port workers talk to each other on (on localhost, the first worker must use <see cref="LocalhostPrimaryPort"/>).</param>
    /// <param name="gatewayPort">The port coordinators connect to (on localhost, the first worker's is <see cref="LocalhostGatewayPort"/>).</param>
    /// <param name="address">The address other machines reach this worker at (Redis clustering; default: this machine's first IPv4 address that is not a loopback one).</param>
    /// <param name="log">Receives a line when a unit of work starts and ends; null: none.</param>
    /// <exception cref="ArgumentException">The cluster string is neither form; the message shows both.</exception>
    public static IHost CreateWorker(string cluster, int siloPort = LocalhostPrimaryPort, int gatewayPort = LocalhostGatewayPort, IPAddress? address = null, Action<string>? log = null)
    {
        var endpoint = ClusterEndpoint.Parse(cluster);
        return Host.CreateDefaultBuilder()
            // Orleans' advice on server GC, its watchdog's notes on a busy CPU (a worker trains on every core) and the
            // stack traces of connections a dead peer reset are noise here; membership changes are not.
            .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Orleans.Runtime.Silo", LogLevel.Error)
                .AddFilter("Orleans.Runtime.Watchdog", LogLevel.Error).AddFilter("Orleans.Runtime.Messaging", LogLevel.Error))
            .UseOrleans(silo =>
            {
                silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (ClusterId, ClusterId));
                // A worker killed mid-trial is declared dead in seconds, so its trial runs again soon: one vote suffices
                // (with Orleans' default of two, a cluster of two workers waits for the dead one's heartbeat to go stale,
                // measured at about 30 s). A worker declared dead by mistake stops, and its trials run again elsewhere.
                silo.Configure<ClusterMembershipOptions>(o => (o.ProbeTimeout, o.NumMissedProbesLimit, o.NumVotesForDeathDeclaration) = (TimeSpan.FromSeconds(2), 2, 1));
                if (endpoint.Redis is { } redis)
                {
                    silo.ConfigureEndpoints(address ?? ThisMachine(), siloPort, gatewayPort, listenOnAnyHostAddress: true);
                    silo.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
                    silo.AddRedisGrainStorage(JournalStorage.Name, o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
                }
                else
                {
                    silo.UseLocalhostClustering(siloPort, gatewayPort, siloPort == LocalhostPrimaryPort ? null : new IPEndPoint(IPAddress.Loopback, LocalhostPrimaryPort), ClusterId, ClusterId);
                    silo.AddMemoryGrainStorage(JournalStorage.Name);
                }
                silo.AddSparsityWorker(log);
            })
            .Build();
    }

    /// <summary>This machine's first IPv4 address that is not a loopback one (Debian names the host 127.0.1.1, which no other machine reaches).</summary>
    private static IPAddress ThisMachine() =>
        Dns.GetHostAddresses(Dns.GetHostName()).FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
        ?? throw new ArgumentException("This machine has no IPv4 address other machines can reach; pass the worker's address.", "address");

    /// <summary>
    /// Connects a coordinator to <paramref name="cluster"/> and returns the started client host (its services hold the
    /// <see cref="IClusterClient"/>); dispose it when done.
    /// </summary>
    /// <param name="cluster"><c>localhost</c> or <c>redis://HOST:PORT</c>.</param>
    /// <param name="timeout">How long to try.</param>
    /// <param name="cancellationToken">Stops trying.</param>
    /// <exception cref="TimeoutException">The cluster could not be reached in time; the message names its address.</exception>
    public static async Task<IHost> ConnectAsync(string cluster, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var endpoint = ClusterEndpoint.Parse(cluster);
        var host = Host.CreateDefaultBuilder()
            .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Critical))
            .UseOrleansClient(client =>
            {
                client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (ClusterId, ClusterId));
                if (endpoint.Redis is { } redis)
                    client.UseRedisClustering(o => o.ConfigurationOptions = WithConnectTimeout(redis, timeout));
                else
                    client.UseLocalhostClustering(LocalhostGatewayPort, ClusterId, ClusterId);
            })
            .Build();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await host.StartAsync(limit.Token).WaitAsync(limit.Token);
            return host;
        }
        catch (Exception e)
        {
            host.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException($"Could not reach the Orleans cluster at {endpoint} within {timeout.TotalSeconds:0.#} s" +
                (e is OperationCanceledException ? "." : $": {e.Message}") + " Is a worker (or redis-server) running there?", e);
        }
    }

    private static ConfigurationOptions WithConnectTimeout(string redis, TimeSpan timeout)
    {
        var options = ConfigurationOptions.Parse(redis);
        options.ConnectTimeout = (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds);
        options.AbortOnConnectFail = true;
        return options;
    }

    /// <summary>A parsed cluster string.</summary>
    private sealed record ClusterEndpoint(string? Redis)
    {
        public static ClusterEndpoint Parse(string cluster)
        {
            ArgumentNullException.ThrowIfNull(cluster);
            if (cluster == "localhost") return new((string?)null);
            const string scheme = "redis://";
            if (cluster.StartsWith(scheme, StringComparison.Ordinal) && cluster.Length > scheme.Length) return new(cluster[scheme.Length..]);
            throw new ArgumentException($"The cluster \"{cluster}\" is neither \"localhost\" nor \"redis://HOST:PORT\".", nameof(cluster));
        }

        public override string ToString() => Redis is null ? $"localhost (gateway 127.0.0.1:{LocalhostGatewayPort})" : $"redis://{Redis}";
    }
}
