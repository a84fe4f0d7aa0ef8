namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// Calls that ride out a worker's death: until the cluster declares a killed worker dead (a few seconds), calls to the
/// grains it hosted fail in the messaging; they are retried, and once it is declared dead they reach new activations.
/// </summary>
internal static class ClusterRetry
{
    /// <summary>How long a call keeps being retried.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(500);

    /// <summary>How long one attempt may take: a call to a grain on a worker that just died waits otherwise for Orleans' 30 s response timeout.</summary>
    private static readonly TimeSpan Attempt = TimeSpan.FromSeconds(10);

    /// <summary>A failure of the cluster's messaging (a lost connection, a dead silo, a timeout), not of the call's own work.</summary>
    public static bool IsMessaging(Exception e) => e is OrleansException or TimeoutException;

    /// <summary>The call's result, retried on messaging failures for <see cref="Patience"/>.</summary>
    /// <exception cref="TimeoutException">The call kept failing; the message names <paramref name="what"/> and the last failure.</exception>
    public static T Run<T>(Func<Task<T>> call, string what)
    {
        var start = DateTime.UtcNow;
        while (true)
        {
            try
            {
                return call().WaitAsync(Attempt).GetAwaiter().GetResult();
            }
            catch (Exception e) when (IsMessaging(e))
            {
                if (DateTime.UtcNow - start > Patience)
                    throw new TimeoutException($"{what} kept failing in the cluster for {Patience.TotalSeconds:0} s; the last failure: {e.Message}", e);
                Thread.Sleep(Pause);
            }
        }
    }

    /// <summary>The call, retried on messaging failures for <see cref="Patience"/>.</summary>
    public static void Run(Func<Task> call, string what) => Run(async () =>
    {
        await call().ConfigureAwait(false);
        return true;
    }, what);
}
