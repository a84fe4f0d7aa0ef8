using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.ML.Sparsity.Distributed;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary><c>worker</c>: joins a cluster and runs sweep trials and P-GaP copies until stopped (Ctrl+C or SIGTERM).</summary>
internal static class WorkerCommand
{
    public static System.CommandLine.Command Create()
    {
        var cluster = Cluster();
        var port = new Option<int>("--port") { Description = $"The port workers talk to each other on (localhost: the first worker uses {SparsityCluster.LocalhostPrimaryPort}).", DefaultValueFactory = _ => SparsityCluster.LocalhostPrimaryPort };
        var gateway = new Option<int>("--gateway-port") { Description = $"The port coordinators connect to (localhost: the first worker's is {SparsityCluster.LocalhostGatewayPort}).", DefaultValueFactory = _ => SparsityCluster.LocalhostGatewayPort };
        var address = new Option<string?>("--address") { Description = "The address other machines reach this worker at (Redis clusters; default: this machine's first IPv4 address that is not a loopback one)." };
        var command = new System.CommandLine.Command("worker", "Joins a cluster and runs the trials of sweeps started with --cluster (and P-GaP copies) until stopped.")
        {
            cluster, port, gateway, address,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(Program.Run(token =>
        {
            int silo = Port(parse.GetValue(port), "--port"), gatewayPort = Port(parse.GetValue(gateway), "--gateway-port");
            IPAddress? at = parse.GetValue(address) is { } a ? (IPAddress.TryParse(a, out var ip) ? ip : throw new ArgumentException($"--address \"{a}\" is not an IP address.", "--address")) : null;
            using var host = SparsityCluster.CreateWorker(parse.GetValue(cluster)!, silo, gatewayPort, at, line => CliConsole.Line($"{DateTime.Now:HH:mm:ss} {line}"));
            host.StartAsync(token).GetAwaiter().GetResult();
            CliConsole.Line($"Worker joined {parse.GetValue(cluster)} (port {silo}, gateway {gatewayPort}); stop it with Ctrl+C.");
            try
            {
                host.WaitForShutdownAsync(token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: leave the cluster cleanly below.
            }
            host.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
            return ExitCodes.Success;
        }, cancellation)));
        return command;
    }

    /// <summary>The --cluster option: localhost or redis://HOST:PORT.</summary>
    public static Option<string> Cluster(bool required = true) => new("--cluster")
    {
        Description = "The cluster: localhost (development) or redis://HOST:PORT (Redis keeps the membership and the sweeps' journals).",
        Required = required,
    };

    private static int Port(int port, string option) =>
        port is > 0 and < 65536 ? port : throw new ArgumentOutOfRangeException(option, port, $"{option} must be a port, 1 to 65535.");
}
