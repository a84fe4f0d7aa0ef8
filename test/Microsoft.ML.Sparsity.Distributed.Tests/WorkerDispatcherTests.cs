using System.Net;
using System.Reflection;
using Orleans.Runtime;
using Xunit;

namespace Microsoft.ML.Sparsity.Distributed.Tests;

[Trait("Tier", "NativeOnly")]
public sealed class WorkerDispatcherTests
{
    /// <summary>
    /// The membership's first read may take longer than a poll waits (the management grain's first activation on a busy
    /// machine: once, in CI, a cluster sweep failed at its start with a TimeoutException). The dispatcher keeps polling
    /// and hands out the worker once the read comes back.
    /// </summary>
    [Fact]
    public void A_first_membership_read_slower_than_a_poll_is_waited_for()
    {
        var worker = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11111), 1);
        var management = DispatchProxy.Create<IManagementGrain, SlowFirstHosts>();
        ((SlowFirstHosts)(object)management).Worker = worker;
        var grains = DispatchProxy.Create<IGrainFactory, OneGrain>();
        ((OneGrain)(object)grains).Management = management;

        using var dispatcher = new WorkerDispatcher(grains, 1, TimeSpan.FromSeconds(20));
        Assert.Equal(worker, dispatcher.Acquire(0, CancellationToken.None));
        Assert.True(((SlowFirstHosts)(object)management).Calls >= 2);
    }

    /// <summary>A management grain whose first GetHosts answers after 4 polls' waits, the later ones at once, with one worker.</summary>
    public class SlowFirstHosts : DispatchProxy
    {
        public SiloAddress? Worker { get; set; }

        public int Calls;

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod?.Name != nameof(IManagementGrain.GetHosts))
                throw new NotSupportedException(targetMethod?.Name);
            int call = Interlocked.Increment(ref Calls);
            return Answer(call == 1 ? 16 * WorkerDispatcher.Interval : TimeSpan.Zero);
        }

        private async Task<Dictionary<SiloAddress, SiloStatus>> Answer(TimeSpan delay)
        {
            await Task.Delay(delay);
            return new() { [Worker!] = SiloStatus.Active };
        }
    }

    /// <summary>A grain factory that serves the one management grain.</summary>
    public class OneGrain : DispatchProxy
    {
        public IManagementGrain? Management { get; set; }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) =>
            targetMethod?.Name == nameof(IGrainFactory.GetGrain) && targetMethod.ReturnType == typeof(IManagementGrain)
                ? Management
                : throw new NotSupportedException(targetMethod?.Name);
    }
}
