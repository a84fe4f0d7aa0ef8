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
