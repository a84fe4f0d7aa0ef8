using Microsoft.ML.Sparsity.Engine;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Engine;

public sealed class WorkerPoolTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void EveryIndexRunsExactlyOnce(int threads)
    {
        using var pool = new WorkerPool(threads);
        Assert.Equal(threads, pool.ThreadCount);
        int[] hits = new int[257];
        Action<int> body = i => Interlocked.Increment(ref hits[i]);
        for (int call = 0; call < 2000; call++)
        {
            int count = call % hits.Length;
            Array.Clear(hits);
            pool.For(count, body);
            for (int i = 0; i < hits.Length; i++)
                Assert.Equal(i < count ? 1 : 0, hits[i]);
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void TheCallerTakesItemsFromTheFrontAndWorkersFromTheBack(int threads)
    {
        // Consecutive calls then keep each thread on the same part of the work (the rows it wrote the call before).
        using var pool = new WorkerPool(threads);
        int caller = Environment.CurrentManagedThreadId, shared = 0;
        int[] ranBy = new int[64];
        Action<int> body = i =>
        {
            ranBy[i] = Environment.CurrentManagedThreadId;
            Thread.SpinWait(2000); // long enough for a polling worker to join
        };
        for (int call = 0; call < 200; call++)
        {
            pool.For(ranBy.Length, body);
            Assert.Equal(caller, ranBy[0]); // claimed by the caller as the job opens
            int front = Array.FindIndex(ranBy, t => t != caller);
            if (front < 0)
                continue; // the workers took no part in this call
            shared++;
            Assert.All(ranBy[front..], t => Assert.NotEqual(caller, t));
        }

        Assert.True(shared > 0, "the workers never took part: nothing was checked");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void SleepingWorkersChangeNeitherWhichItemsRunNorTheirResults(int threads)
    {
        // A worker that sleeps in the middle of items stands in for one the kernel has descheduled. Each item sums
        // its own slice of data in a fixed order (as the engine's kernels do per output element), so the results
        // must equal the inline ones bit for bit, whoever ran which item and whenever.
        float[] data = new float[97 * 61];
        var random = new Random(5);
        for (int i = 0; i < data.Length; i++)
            data[i] = random.NextSingle() - 0.5f;
        float[] Sums(WorkerPool pool, int count, int[] hits)
        {
            float[] sums = new float[count];
            pool.For(count, i =>
            {
                Interlocked.Increment(ref hits[i]);
                float s = 0;
                for (int j = i; j < data.Length; j += count)
                {
                    s += data[j] * data[(j * 7) % data.Length];
                    if (j == i + 3 * count && Thread.CurrentThread.Name?.StartsWith("Sparsity worker", StringComparison.Ordinal) == true && (i + j) % 3 == 0)
                        Thread.Sleep(1);
                }
                sums[i] = s;
            });
            return sums;
        }

        using var pool = new WorkerPool(threads);
        foreach (int count in new[] { 2, 3, 17, 61 })
        {
            float[] expected = Sums(WorkerPool.Inline, count, new int[count]);
            for (int call = 0; call < 20; call++)
            {
                int[] hits = new int[count];
                Assert.Equal(expected, Sums(pool, count, hits));
                Assert.All(hits, h => Assert.Equal(1, h));
            }
        }
    }

    [Fact]
    public async Task WorkerStuckInAnItemDelaysOnlyThatItem()
    {
        // The worker's first item blocks until every other item is done: that can only happen if the caller runs
        // the items the stuck worker would otherwise have claimed, instead of waiting for it.
        using var pool = new WorkerPool(2);
        const int Count = 200;
        int done = 0, workerItems = 0;
        using var workerStarted = new ManualResetEventSlim();
        using var othersDone = new ManualResetEventSlim();
        int caller = 0;
        await Task.Run(() =>
        {
            caller = Environment.CurrentManagedThreadId;
            pool.For(Count, i =>
            {
                if (Environment.CurrentManagedThreadId == caller)
                {
                    // Hold the caller's first item until the worker is inside one, so that the worker really runs.
                    if (!workerStarted.IsSet)
                        Assert.True(workerStarted.Wait(TimeSpan.FromSeconds(20)));
                }
                else if (Interlocked.Increment(ref workerItems) == 1)
                {
                    workerStarted.Set();
                    Assert.True(othersDone.Wait(TimeSpan.FromSeconds(20)));
                }

                if (Interlocked.Increment(ref done) == Count - 1)
                    othersDone.Set();
            });
        }).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Count, done);
        Assert.Equal(1, workerItems);
    }

    [Fact]
    public void WorkerThatKeepsTheCallerWaitingIsLeftOut()
    {
        // A worker that sleeps 5 ms in each item it takes stands in for one the kernel keeps preempting mid-item; the
        // caller's items take 0.5 ms each, so a call alone takes 2 ms and one the worker joins at least 5 ms. The probe
        // (its policy is ParallelismProbeTests') must run most calls alone: after the first 100 calls the worker may
        // join only the probes' windows with it (measured: 3-4 calls in 100 on a quiet machine, 13 once while other
        // test classes ran beside it; without the probe, 39-54). The bodies are lambdas made afresh at each call, so the
        // calls name one owner, as the engine's do.
        using var pool = new WorkerPool(2);
        object owner = new();
        int caller = Environment.CurrentManagedThreadId;
        long itemTicks = System.Diagnostics.Stopwatch.Frequency / 2000;
        int JoinedCalls(int calls)
        {
            int joined = 0;
            for (int call = 0; call < calls; call++)
            {
                int workerItems = 0;
                pool.For(4, i =>
                {
                    if (Environment.CurrentManagedThreadId != caller)
                    {
                        Interlocked.Increment(ref workerItems);
                        Thread.Sleep(5);
                        return;
                    }

                    long end = System.Diagnostics.Stopwatch.GetTimestamp() + itemTicks;
                    while (System.Diagnostics.Stopwatch.GetTimestamp() < end) { }
                }, owner);
                if (workerItems > 0) joined++;
            }

            return joined;
        }

        JoinedCalls(100);
        Assert.InRange(JoinedCalls(100), 0, 24);

        // Calls of another size are judged by a probe of their own, which starts with the workers: a call of 64 items
        // that waits for the worker's first item shows it taking part.
        int taken = 0;
        pool.For(64, i =>
        {
            if (Environment.CurrentManagedThreadId != caller) Interlocked.Increment(ref taken);
            else if (i == 0) SpinWait.SpinUntil(() => Volatile.Read(ref taken) > 0, 5000);
        }, owner);
        Assert.True(taken > 0, "a call of 64 items ran alone: the probe of the 4-item calls decided it");
    }

    [Fact]
    public async Task SecondCallerTakesTheWorkersShareInsteadOfOversubscribing()
    {
        // Caller A's job is open; caller B finds the pool busy and runs its items inline. While B does, A's worker
        // must stop taking A's items (two callers already fill a 2-thread pool): after B is in, the worker may start
        // at most the one item it could have claimed as B arrived. Without the rule it would run about half of them.
        using var pool = new WorkerPool(2);
        const int Count = 2000;
        using var aStarted = new ManualResetEventSlim();
        using var bInside = new ManualResetEventSlim();
        using var aDone = new ManualResetEventSlim();
        int aCaller = 0, workerAfterB = 0, aItems = 0, bItems = 0;
        Task a = Task.Run(() =>
        {
            aCaller = Environment.CurrentManagedThreadId;
            pool.For(Count, i =>
            {
                aStarted.Set();
                Assert.True(bInside.Wait(TimeSpan.FromSeconds(20)));
                if (Environment.CurrentManagedThreadId != aCaller)
                    Interlocked.Increment(ref workerAfterB);
                Interlocked.Increment(ref aItems);
            });
            aDone.Set();
        });
        Task b = Task.Run(() =>
        {
            Assert.True(aStarted.Wait(TimeSpan.FromSeconds(20)));
            int bThread = Environment.CurrentManagedThreadId;
            pool.For(4, j =>
            {
                Assert.Equal(bThread, Environment.CurrentManagedThreadId);
                bInside.Set();
                if (j == 0)
                    Assert.True(aDone.Wait(TimeSpan.FromSeconds(20)));
                Interlocked.Increment(ref bItems);
            });
        });
        await Task.WhenAll(a, b).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Count, aItems);
        Assert.Equal(4, bItems);
        // The worker's first item (claimed before B arrived) waits for B too, plus at most one claimed in the race.
        Assert.InRange(workerAfterB, 0, 2);
    }

    [Fact]
    public async Task ConcurrentCallersEachRunTheirOwnItemsExactlyOnce()
    {
        using var pool = new WorkerPool(3);
        const int Callers = 4, Calls = 300;
        int[][] hits = [.. Enumerable.Range(0, Callers).Select(_ => new int[Callers * Calls * 40])];
        var tasks = Enumerable.Range(0, Callers).Select(c => Task.Run(() =>
        {
            for (int r = 0; r < Calls; r++)
            {
                int count = 2 + (r * 7 + c) % 38, offset = r * 40;
                pool.For(count, i => Interlocked.Increment(ref hits[c][offset + i]));
            }
        })).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
        for (int c = 0; c < Callers; c++)
            for (int r = 0; r < Calls; r++)
            {
                int count = 2 + (r * 7 + c) % 38;
                for (int i = 0; i < 40; i++)
                    Assert.Equal(i < count ? 1 : 0, hits[c][r * 40 + i]);
            }
    }

    [Fact]
    public async Task DisposeStopsIdleAndBlockedWorkers()
    {
        foreach (int pause in new[] { 0, 5, 50 })
        {
            var pool = new WorkerPool(3);
            int sum = 0;
            pool.For(100, i => Interlocked.Add(ref sum, i));
            Assert.Equal(4950, sum);
            Thread.Sleep(pause); // workers polling (0 ms) or blocked (past the 1 ms poll window)
            await Task.Run(pool.Dispose).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Throws<ObjectDisposedException>(() => pool.For(4, _ => { }));
        }
    }

    [Fact]
    public void WholeRunsInPlaceOfTheItemsWheneverTheCallerRunsAlone()
    {
        int items = 0, wholes = 0;
        Action<int> body = _ => Interlocked.Increment(ref items);
        Action whole = () => Interlocked.Increment(ref wholes);

        // No workers: the whole, once.
        WorkerPool.Inline.For(3, body, whole);
        Assert.Equal((0, 1), (items, wholes));

        // One item is the item.
        using var pool = new WorkerPool(2);
        pool.For(1, body, whole);
        Assert.Equal((1, 1), (items, wholes));

        // A call from inside a body runs inline: the whole.
        pool.For(2, _ => pool.For(4, body, whole));
        Assert.Equal((1, 3), (items, wholes));

        // A whole that throws throws as an item would, and leaves the caller outside any body: a 2-thread pool's next
        // call (a new kind, so its probe starts with the workers) runs items, not the whole.
        var error = Assert.Throws<InvalidOperationException>(() => pool.For(2, i =>
        {
            if (i == 0)
                pool.For(2, body, () => throw new InvalidOperationException("boom"));
        }));
        Assert.Equal("boom", error.Message);
        Assert.Throws<ArgumentNullException>(() => pool.For(2, body, (Action)null!));
        Action<int> fresh = _ => Interlocked.Increment(ref items);
        pool.For(3, fresh, whole);
        Assert.Equal((4, 3), (items, wholes));
    }

    [Fact]
    public void WholeRunsWhenTheProbeLeavesTheWorkersOut()
    {
        // As WorkerThatKeepsTheCallerWaitingIsLeftOut: a worker's item takes 5 ms and the caller's 0.5 ms; the whole
        // spins 1 ms (half of the four items on the caller), so the probe runs most calls alone, and those run the whole.
        // The first call runs with the workers (a new probe starts with them), so its items run, not the whole.
        using var pool = new WorkerPool(2);
        int caller = Environment.CurrentManagedThreadId, wholes = 0;
        long itemTicks = System.Diagnostics.Stopwatch.Frequency / 2000;
        void Spin(long ticks)
        {
            long end = System.Diagnostics.Stopwatch.GetTimestamp() + ticks;
            while (System.Diagnostics.Stopwatch.GetTimestamp() < end) { }
        }

        Action<int> body = _ =>
        {
            if (Environment.CurrentManagedThreadId != caller)
                Thread.Sleep(5);
            else
                Spin(itemTicks);
        };
        Action whole = () =>
        {
            wholes++;
            Spin(2 * itemTicks);
        };
        pool.For(4, body, whole);
        Assert.Equal(0, wholes);
        for (int call = 1; call < 100; call++)
            pool.For(4, body, whole);
        wholes = 0;
        for (int call = 0; call < 100; call++)
            pool.For(4, body, whole);
        Assert.InRange(wholes, 76, 100);
    }

    [Fact]
    public void SingleIterationRunsInlineOnCaller()
    {
        using var pool = new WorkerPool(2);
        int caller = Environment.CurrentManagedThreadId, ran = -1;
        pool.For(1, _ => ran = Environment.CurrentManagedThreadId);
        Assert.Equal(caller, ran);
    }

    [Fact]
    public void SingleExceptionPropagatesAsIs()
    {
        using var pool = new WorkerPool(2);
        int done = 0;
        var error = Assert.Throws<InvalidOperationException>(() => pool.For(64, i =>
        {
            Interlocked.Increment(ref done);
            if (i == 17)
                throw new InvalidOperationException("boom");
        }));
        Assert.Equal("boom", error.Message);
        Assert.Equal(64, done);

        // The pool stays usable.
        int sum = 0;
        pool.For(10, i => Interlocked.Add(ref sum, i));
        Assert.Equal(45, sum);
    }

    [Fact]
    public void SeveralExceptionsPropagateAsAggregate()
    {
        using var pool = new WorkerPool(3);
        var error = Assert.Throws<AggregateException>(() => pool.For(20, i =>
        {
            if (i % 5 == 0)
                throw new ArgumentException(i.ToString());
        }));
        Assert.Equal(4, error.InnerExceptions.Count);
        Assert.All(error.InnerExceptions, e => Assert.IsType<ArgumentException>(e));
    }

    [Fact]
    public async Task NestedForRunsInlineWithoutDeadlock()
    {
        using var pool = new WorkerPool(2);
        int[] hits = new int[8 * 8];
        // WaitAsync throws TimeoutException if the nested call deadlocks.
        await Task.Run(() => pool.For(8, i => pool.For(8, j => Interlocked.Increment(ref hits[i * 8 + j]))))
            .WaitAsync(TimeSpan.FromSeconds(10));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public async Task ConcurrentCallersAllComplete()
    {
        using var pool = new WorkerPool(2);
        int total = 0;
        Action<int> body = _ => Interlocked.Increment(ref total);
        var tasks = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (int r = 0; r < 500; r++)
                pool.For(16, body);
        })).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(4 * 500 * 16, total);
    }

    [Fact]
    public void ForDoesNotAllocate()
    {
        using var pool = new WorkerPool(2);
        int[] sink = new int[32];
        Action<int> body = i => sink[i]++;
        for (int r = 0; r < 100; r++)
            pool.For(sink.Length, body);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int r = 0; r < 1000; r++)
            pool.For(sink.Length, body);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void ForAfterDisposeThrows()
    {
        var pool = new WorkerPool(2);
        pool.Dispose();
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.For(4, _ => { }));
    }
}
