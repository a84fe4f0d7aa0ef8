using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A persistent pool of <c>ThreadCount - 1</c> background threads that, together with the calling thread,
/// run the iterations of <see cref="For(int, Action{int})"/>. Built for many short parallel sections per second (GEMM calls of a
/// training step) on a CPU that other processes may be using too: a call allocates nothing, work items are claimed
/// through an atomic counter (the caller's first as the job opens), the caller's from the front and the workers' from
/// the back (a worker that is not running when a job opens claims nothing, and the caller runs the items it would have
/// run), idle workers poll briefly before they block, and nobody spins on a thread that the operating system has
/// descheduled.
/// </summary>
/// <remarks>
/// <para>
/// Protocol. <c>_jobId</c> is odd while a job is open and even otherwise. <see cref="For(int, Action{int})"/> publishes the job
/// fields, opens the job (increment to odd), runs its first item (0, claimed as the job opens) and then the claim
/// loop, closes the job (increment to even) and then waits until no worker is inside the job. A worker announces
/// itself (<c>_inside++</c>) before it re-checks that the job it saw is still open; both sides use interlocked operations (full fences), so either
/// the caller sees the worker inside and waits for it, or the worker sees the job closed and backs off. The job
/// fields therefore never change under a worker that is running an iteration.
/// </para>
/// <para>
/// The hand-off. A cache line written on one core and read on the other took 50–250 ns to pass between the cores of
/// the 2-vCPU VMs measured here, and a locked instruction waits for its line, so a call's cost beyond its items is
/// mostly the times the pool's shared fields (within one or two lines) pass between the cores. So the caller's first
/// item is its own as the job opens (no claim), a thread whose claim took the last item stops without another, and
/// the caller holding the pool counts itself in no counter (only callers that find it busy do). Two items of 3 µs
/// each then took 3.9–4.1 µs a call against 4.2–4.8 µs before (docs/cpus.md, "the pool's hand-off").
/// </para>
/// <para>
/// A busy CPU. Measured beside CPU-bound processes on 2 cores, a pool whose threads spin kept 0.45× (one
/// competitor) and 0.37× (two) of its speed alone, below the fair shares 0.67× and 0.5×: its threads burned the
/// time the kernel gave them, the caller spinning until a preempted worker finished its item and idle workers
/// spinning 1 ms between jobs. So a caller whose workers are still inside polls for <see cref="CallerSpinTicks"/>
/// and then blocks, which frees its core for the preempted worker; the last worker out wakes it. Idle workers
/// call <see cref="Thread.Yield"/> every <see cref="YieldSpacingTicks"/> of polling, so a competing thread on their
/// core runs instead (a worker that yields its turn away misses the job, and the caller runs that job's items). A
/// worker preempted in the middle of an item still holds the caller until it finishes that item, and beside busy threads that can cost
/// more than the worker saves: measured beside two CPU-bound processes, 2 threads trained at 0.77× the speed of 1.
/// So the pool measures which is faster on the machine as it is now and runs its calls that way
/// (<see cref="ParallelismProbe"/>). A call that runs alone and has a whole alternative runs that instead of its
/// items (a GEMM computes one block rather than two that each pack the operand they share). Which thread runs an item
/// never changes a result: items are the unit of determinism (see docs/engine.md).
/// </para>
/// <para>
/// Concurrent callers (for example two trainings in one process sharing the pool): a caller that finds the pool
/// busy runs its items inline, and while it does the workers stop taking items from the other caller's job once
/// callers plus working workers would exceed <see cref="ThreadCount"/>, so two callers of a 2-thread pool use two
/// cores rather than three threads on two.
/// </para>
/// </remarks>
internal sealed class WorkerPool : IDisposable
{
    // How long an idle worker polls for the next job before it blocks on the monitor. Training loops issue GEMMs
    // back to back, so most jobs arrive within this window and start within microseconds. Waking a blocked worker
    // costs tens of microseconds (measured ~35 µs on a 2-vCPU VM, plus ~30 µs in the caller's PulseAll), so the
    // window is generous; the polls yield (YieldSpacingTicks), so the window costs a competing thread on the same core
    // little.
    private static readonly long IdleSpinTicks = Stopwatch.Frequency / 1000; // 1 ms

    // How long a caller that has run out of items polls for workers still inside before it blocks: above the
    // spread of item ends between threads on a quiet machine (a worker starts a job a few microseconds after the
    // caller; blocking and waking would cost 35-65 µs), far below the milliseconds a preempted worker stays off
    // its core.
    private static readonly long CallerSpinTicks = Stopwatch.Frequency / 10_000; // 100 µs

    // How often a polling thread reads the clock: every 16 polls. A poll pauses with Thread.SpinWait(1), about 50 ns on
    // the VMs measured here (SpinWait(8) took 310 ns, so a caller polling with it noticed its workers' leaving late
    // by 150 ns on average); the clock costs 35–50 ns a read.
    private const int ClockPolls = 16;

    // How long an idle worker polls between two Thread.Yield calls: 20 µs. A yield with nothing else to run took
    // 1.6 µs on those VMs, and a worker inside it when a job opened started late: yielding after every 16 polls (2.5
    // µs) made LeNet-300-100's dense prediction, whose jobs come a few microseconds apart, 9–12% slower. A competing
    // thread waits about this long for the core (the clock is read every ClockPolls polls), and only during the idle
    // spin: far less than a scheduler's time slice.
    private static readonly long YieldSpacingTicks = Stopwatch.Frequency / 50_000; // 20 µs

    [ThreadStatic] private static bool t_inBody;

    private readonly Thread[] _threads;
    private readonly object _gate = new();
    private readonly object _doneGate = new();
    private readonly object _errorsGate = new();

    private Action<int>? _body;
    private int _count;
    // The job's claims: the caller takes items from the front (low 32 bits: how many), workers from the back (high 32
    // bits). The caller's item 0 is claimed as the job opens (the count starts at one, published by the opening fence);
    // every other claim is one atomic add, and a claim that takes the total past the count finds nothing (see Claim).
    private long _claims;
    private long _jobId;
    private int _inside;
    private int _sleepers;
    private int _busy;
    // Callers that found the pool busy and run their items inline beside its job (see the class remarks).
    private int _inlineCallers;
    private int _callerWaiting;
    private volatile bool _disposed;

    // One probe per kind of call: per owner (the body, or the object a call names as its owner) and item count, so a
    // window compares like with like. One probe for every call switched a model's batch scoring to one thread for
    // seconds after another model's or single-image calls. Weak: an owner's probes go with it. A set is touched only
    // by the caller holding _busy.
    private readonly ConditionalWeakTable<object, Dictionary<int, ParallelismProbe>> _probes = new();
    private List<Exception>? _errors;

    /// <summary>A pool without threads: every call runs on the caller. Safe to share; it holds no state.</summary>
    public static WorkerPool Inline { get; } = new(1);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, Lazy<WorkerPool>> SharedPools = new();

    /// <summary>
    /// The process's pool of <paramref name="threadCount"/> threads, created on first use and kept for the process's
    /// life (its threads are background threads that block when idle). Trainers and models share it: the engine's
    /// parallel sections never nest, and concurrent callers split its threads (see the remarks on the class).
    /// </summary>
    public static WorkerPool Shared(int threadCount) =>
        threadCount == 1 ? Inline : SharedPools.GetOrAdd(threadCount, n => new Lazy<WorkerPool>(() => new WorkerPool(n))).Value;

    public WorkerPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ThreadCount = threadCount;
        _threads = new Thread[threadCount - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _threads[i] = new Thread(WorkerLoop)
            {
                IsBackground = true,
                Name = $"Sparsity worker {i + 1}",
            };
            _threads[i].Start();
        }
    }

    /// <summary>Number of threads that run iterations, including the calling thread.</summary>
    public int ThreadCount { get; }

    /// <summary>
    /// Runs <paramref name="body"/>(0 .. <paramref name="count"/> - 1) over the pool and the calling thread and
    /// returns when all iterations are done. Every iteration is attempted; exceptions are rethrown afterwards
    /// (a single one as is, several as an <see cref="AggregateException"/>). Runs inline when there is nothing to
    /// share, when called from inside a body (nested), while another thread is using the pool, or during a spell in
    /// which the workers are left out (see the remarks on the class).
    /// </summary>
    public void For(int count, Action<int> body) => For(count, body, body);

    /// <summary>
    /// As <see cref="For(int, Action{int})"/>, for a body made afresh at each call (a lambda capturing its arguments):
    /// <paramref name="owner"/> (the model or layer making the call) names the kind of call whose timings decide
    /// whether the workers take part.
    /// </summary>
    public void For(int count, Action<int> body, object owner) => For(count, body, owner, null);

    /// <summary>
    /// As <see cref="For(int, Action{int})"/>, for items that each repeat work one pass over them all would do once (a
    /// GEMM's items each pack the whole of one operand): whenever the call runs on the caller alone (see the remarks
    /// on the class), <paramref name="whole"/> runs instead of the items. It must leave what the items would.
    /// </summary>
    public void For(int count, Action<int> body, Action whole)
    {
        ArgumentNullException.ThrowIfNull(whole);
        For(count, body, body, whole);
    }

    private void For(int count, Action<int> body, object owner, Action? whole)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0)
            return;
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (count == 1 || _threads.Length == 0 || t_inBody)
        {
            RunInline(count, body, whole);
            return;
        }

        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            Interlocked.Increment(ref _inlineCallers);
            try
            {
                RunInline(count, body, whole);
            }
            finally
            {
                Interlocked.Decrement(ref _inlineCallers);
            }

            return;
        }

        List<Exception>? errors;
        try
        {
            ParallelismProbe probe = ProbeFor(owner, count);
            long start = Stopwatch.GetTimestamp();
            if (probe.Alone)
                RunInline(count, body, whole);
            else
                RunJob(count, body);
            probe.Record(Stopwatch.GetTimestamp() - start);
        }
        finally
        {
            _body = null;
            errors = TakeCollectedErrors(); // before releasing the pool: the next owner's job adds to the same list
            Volatile.Write(ref _busy, 0);
        }

        Rethrow(errors);
    }

    /// <summary>The probe of <paramref name="owner"/>'s calls with <paramref name="count"/> items (the caller holds <c>_busy</c>).</summary>
    private ParallelismProbe ProbeFor(object owner, int count)
    {
        Dictionary<int, ParallelismProbe> probes = _probes.GetOrCreateValue(owner);
        if (!probes.TryGetValue(count, out ParallelismProbe? probe))
            probes.Add(count, probe = new ParallelismProbe());
        return probe;
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        lock (_gate)
            Monitor.PulseAll(_gate);
        foreach (Thread thread in _threads)
            thread.Join();
    }

    /// <summary>Runs the items on the calling thread, or <paramref name="whole"/> in their place when there is one (and more than one item).</summary>
    private static void RunInline(int count, Action<int> body, Action? whole)
    {
        bool outer = !t_inBody;
        t_inBody = true;
        List<Exception>? errors = null;
        if (whole is not null && count > 1)
        {
            try
            {
                whole();
            }
#pragma warning disable CA1031 // Rethrown below, as a parallel call rethrows.
            catch (Exception e)
#pragma warning restore CA1031
            {
                errors = [e];
            }
        }
        else
        {
            for (int i = 0; i < count; i++)
            {
                try
                {
                    body(i);
                }
#pragma warning disable CA1031 // Rethrown below, as a parallel call rethrows.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    (errors ??= []).Add(e);
                }
            }
        }

        if (outer)
            t_inBody = false;
        Rethrow(errors);
    }

    private void RunJob(int count, Action<int> body)
    {
        _body = body;
        _count = count;
        _claims = 1; // item 0 is the caller's, claimed before the job opens (see Claim)
        Interlocked.Increment(ref _jobId); // open (odd); full fence publishes the fields above
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_gate)
                Monitor.PulseAll(_gate);
        }

        RunIterations(worker: false);
        Interlocked.Increment(ref _jobId); // close (even): no new worker may enter
        WaitForWorkers();
    }

    /// <summary>Returns once no worker is inside the closed job: polls briefly, then blocks until the last one leaves.</summary>
    private void WaitForWorkers()
    {
        long start = Stopwatch.GetTimestamp();
        for (int polls = 1; Volatile.Read(ref _inside) != 0; polls++)
        {
            if (polls % ClockPolls == 0 && Stopwatch.GetTimestamp() - start > CallerSpinTicks)
            {
                lock (_doneGate)
                {
                    Interlocked.Exchange(ref _callerWaiting, 1); // full fence before re-reading _inside (pairs with LeaveJob)
                    while (Volatile.Read(ref _inside) != 0)
                        Monitor.Wait(_doneGate);
                    _callerWaiting = 0;
                }

                return;
            }

            Thread.SpinWait(1);
        }
    }

    /// <summary>
    /// Claims and runs iterations of the current job until none are left (caller and workers), or, for a worker, until
    /// callers plus workers inside would exceed <see cref="ThreadCount"/>.
    /// </summary>
    private void RunIterations(bool worker)
    {
        Action<int> body = _body!;
        int count = _count;
        bool first = !worker; // the caller's item 0, claimed as the job opened
        t_inBody = true;
        // A worker stops taking items while another caller runs its own work inline (see the class remarks).
        bool last = false;
        while (!last && (!worker || 1 + Volatile.Read(ref _inlineCallers) + Volatile.Read(ref _inside) <= ThreadCount))
        {
            int i = first ? 0 : Claim(count, worker, out last);
            if (i < 0)
                break;
            first = false;
            try
            {
                body(i);
            }
#pragma warning disable CA1031 // Taken by the calling thread (TakeCollectedErrors) and rethrown.
            catch (Exception e)
#pragma warning restore CA1031
            {
                lock (_errorsGate)
                    (_errors ??= []).Add(e);
            }
        }

        t_inBody = false;
    }

    /// <summary>
    /// Claims the next item of the open job: the caller from the front (0, 1, …), a worker from the back (count − 1,
    /// count − 2, …); -1 once every item is claimed. Each claim adds one to its end's count; together with the caller's
    /// item 0, claimed as the job opens, the claims that leave the two counts' total at most <paramref name="count"/> are
    /// exactly count, with distinct items. Taking the ends keeps a thread on the same part of every call: at one image,
    /// the caller convolves the top rows of each layer from the rows it wrote itself, the worker the bottom ones
    /// (claimed alternately, both threads read every layer's input from the other's cache: one image through the CNNs
    /// took 0–20% longer in alternating runs, docs/engine.md).
    /// <paramref name="last"/> says that no item is left after this claim, so the thread stops without a claim that
    /// would find nothing (one pass of the claims' cache line between the cores fewer).
    /// </summary>
    private int Claim(int count, bool worker, out bool last)
    {
        long claims = Interlocked.Add(ref _claims, worker ? 1L << 32 : 1);
        long claimed = Claimed(claims);
        last = claimed >= count;
        if (claimed > count)
            return -1;
        return worker ? count - (int)(claims >> 32) : (int)claims - 1;
    }

    /// <summary>The claims made so far, both ends.</summary>
    private static long Claimed(long claims) => (claims & uint.MaxValue) + (claims >>> 32);

    /// <summary>
    /// The errors of the job just run (null when there were none), taken by the caller that still holds the pool:
    /// workers add theirs before they leave the job, and the caller has waited for them to leave.
    /// </summary>
    private List<Exception>? TakeCollectedErrors()
    {
        if (Volatile.Read(ref _errors) is null)
            return null;
        lock (_errorsGate)
        {
            List<Exception>? errors = _errors;
            _errors = null;
            return errors;
        }
    }

    private static void Rethrow(List<Exception>? errors)
    {
        if (errors is null)
            return;
        if (errors.Count == 1)
            ExceptionDispatchInfo.Capture(errors[0]).Throw();
        throw new AggregateException(errors);
    }

    private void WorkerLoop()
    {
        long seen = 0;
        while (true)
        {
            long id = WaitForJob(seen);
            if (id < 0)
                return;
            seen = id;
            // Skip jobs that are already fully claimed (typical for a worker that woke late) rather than making
            // the caller wait for this thread to pass through them.
            if (Claimed(Volatile.Read(ref _claims)) >= Volatile.Read(ref _count))
                continue;
            Interlocked.Increment(ref _inside);
            if (Volatile.Read(ref _jobId) == id)
                RunIterations(worker: true);
            LeaveJob();
        }
    }

    private void LeaveJob()
    {
        // Full fence before reading _callerWaiting (pairs with WaitForWorkers).
        if (Interlocked.Decrement(ref _inside) == 0 && Volatile.Read(ref _callerWaiting) != 0)
        {
            lock (_doneGate)
                Monitor.Pulse(_doneGate);
        }
    }

    /// <summary>Returns the id of an open job other than <paramref name="seen"/>, or -1 once disposed.</summary>
    private long WaitForJob(long seen)
    {
        long start = Stopwatch.GetTimestamp(), yielded = start;
        while (true)
        {
            for (int i = 0; i < ClockPolls; i++)
            {
                long id = Volatile.Read(ref _jobId);
                if ((id & 1) != 0 && id != seen)
                    return id;
                Thread.SpinWait(1);
            }

            if (_disposed)
                return -1;
            long now = Stopwatch.GetTimestamp();
            if (now - start > IdleSpinTicks)
                break;
            if (now - yielded > YieldSpacingTicks)
            {
                Thread.Yield(); // lets a thread waiting for this core run instead of this poll
                yielded = Stopwatch.GetTimestamp();
            }
        }

        lock (_gate)
        {
            Interlocked.Increment(ref _sleepers); // full fence before re-reading _jobId (pairs with For)
            try
            {
                while (true)
                {
                    long id = Volatile.Read(ref _jobId);
                    if ((id & 1) != 0 && id != seen)
                        return id;
                    if (_disposed)
                        return -1;
                    Monitor.Wait(_gate);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _sleepers);
            }
        }
    }
}
