using Microsoft.ML.Sparsity.Sweeps;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// Hands the cluster's workers out to units of work: it follows the cluster's membership (a worker that joins takes work
/// at once; one that dies is no longer handed any, and its running work is noticed as lost), runs at most
/// <c>slotsPerWorker</c> units on a worker, gives a freed slot to the waiting unit of lowest index (the order a sweep on
/// one machine starts its trials), and keeps the workers that refused the work out of it.
/// </summary>
internal sealed class WorkerDispatcher : IDisposable
{
    private readonly IManagementGrain _management;
    private readonly int _slots;
    private readonly TimeSpan _patience;
    private readonly object _gate = new();
    private readonly Dictionary<SiloAddress, int> _busy = [];
    private readonly Dictionary<SiloAddress, string> _refused = [];
    private readonly SortedSet<int> _waiting = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _watching;
    private HashSet<SiloAddress> _active = [];
    private Exception? _membershipFailure;
    private DateTime? _membershipFailingSince;

    public WorkerDispatcher(IGrainFactory grains, int slotsPerWorker, TimeSpan patience)
    {
        (_management, _slots, _patience) = (grains.GetGrain<IManagementGrain>(0), slotsPerWorker, patience);
        try
        {
            Refresh().GetAwaiter().GetResult();
        }
        catch (TimeoutException e)
        {
            // Not answered within a poll's wait (the management grain's first activation can take longer on a busy
            // machine): the polls go on asking, as for any later read, and Acquire waits for them within the patience.
            RecordMembershipFailure(e);
        }

        _watching = Task.Run(Watch);
    }

    /// <summary>The cluster's membership is read this often.</summary>
    internal static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    private async Task Watch()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, _stop.Token);
                await Refresh();
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                RecordMembershipFailure(e);
            }
        }
    }

    private void RecordMembershipFailure(Exception e)
    {
        lock (_gate)
        {
            _membershipFailure = e;
            _membershipFailingSince ??= DateTime.UtcNow;
            Monitor.PulseAll(_gate);
        }
    }

    private async Task Refresh()
    {
        // The management grain may be on a worker that just died: a call to it would wait out Orleans' 30 s response
        // timeout, and meanwhile the dead worker would still count as alive. A short wait, then the next poll, reaches
        // it again once the cluster has declared that worker dead.
        var hosts = await _management.GetHosts(onlyActive: true).WaitAsync(4 * Interval).ConfigureAwait(false);
        lock (_gate)
        {
            _active = [.. hosts.Keys];
            (_membershipFailure, _membershipFailingSince) = (null, null);
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// True while <paramref name="worker"/> is an active member of the cluster. When the membership cannot be read for
    /// <see cref="ClusterRetry.Patience"/>, no worker counts as alive: the running work is given up rather than awaited
    /// without end, and no more is handed out.
    /// </summary>
    public bool IsAlive(SiloAddress worker)
    {
        lock (_gate) return !MembershipLost && _active.Contains(worker);
    }

    private bool MembershipLost => DateTime.UtcNow - _membershipFailingSince > ClusterRetry.Patience;

    /// <summary>True when a unit of lower index than <paramref name="index"/> waits for a slot.</summary>
    public bool LowerWaiting(int index)
    {
        lock (_gate) return _waiting.Count > 0 && _waiting.Min < index;
    }

    /// <summary>Charges the slot taken on <paramref name="from"/> to <paramref name="to"/>, where the work was placed instead.</summary>
    public void Move(SiloAddress from, SiloAddress to)
    {
        lock (_gate)
        {
            _busy[from] = Math.Max(0, _busy.GetValueOrDefault(from) - 1);
            _busy[to] = _busy.GetValueOrDefault(to) + 1;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Waits for a slot for unit <paramref name="index"/> (lower indices first) and returns its worker.
    /// </summary>
    /// <exception cref="SweepHaltException">No worker could take work for the patience given (every one refused it, or none is there).</exception>
    public SiloAddress Acquire(int index, CancellationToken cancellation)
    {
        lock (_gate)
        {
            _waiting.Add(index);
            try
            {
                var since = DateTime.UtcNow;
                while (true)
                {
                    cancellation.ThrowIfCancellationRequested();
                    var eligible = MembershipLost ? [] : _active.Where(s => !_refused.ContainsKey(s)).ToList();
                    if (eligible.Count > 0) since = DateTime.UtcNow;
                    else if (DateTime.UtcNow - since > _patience) throw new SweepHaltException(NoWorker());
                    if (_waiting.Min == index)
                    {
                        var free = eligible.Where(s => _busy.GetValueOrDefault(s) < _slots).OrderBy(s => _busy.GetValueOrDefault(s)).ThenBy(s => s.ToString(), StringComparer.Ordinal).FirstOrDefault();
                        if (free is not null)
                        {
                            _busy[free] = _busy.GetValueOrDefault(free) + 1;
                            return free;
                        }
                    }
                    Monitor.Wait(_gate, Interval);
                }
            }
            finally
            {
                _waiting.Remove(index);
                Monitor.PulseAll(_gate);
            }
        }
    }

    private InvalidOperationException NoWorker() => new(
        (_membershipFailure is { } e ? $"The cluster's membership cannot be read ({e.Message}). " : "") +
        (_refused.Count == 0
            ? $"No worker has been in the cluster for {_patience.TotalSeconds:0} s; start one (mlnet-sparsity worker)."
            : $"No worker in the cluster can run the work: {string.Join(" ", _refused.Values)}"), _membershipFailure);

    /// <summary>Frees a slot of <paramref name="worker"/>.</summary>
    public void Release(SiloAddress worker)
    {
        lock (_gate)
        {
            _busy[worker] = Math.Max(0, _busy.GetValueOrDefault(worker) - 1);
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Takes a slot of <paramref name="worker"/> back for work that waited without one (it may exceed the slots for a while).</summary>
    public void Resume(SiloAddress worker)
    {
        lock (_gate) _busy[worker] = _busy.GetValueOrDefault(worker) + 1;
    }

    /// <summary>Hands <paramref name="worker"/> no more work: it refused it (<paramref name="why"/>).</summary>
    public void Refuse(SiloAddress worker, string why)
    {
        lock (_gate)
        {
            _refused[worker] = why;
            Monitor.PulseAll(_gate);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _watching.Wait();
        }
        catch (AggregateException)
        {
            // Ended by the cancellation.
        }
        _stop.Dispose();
    }
}
