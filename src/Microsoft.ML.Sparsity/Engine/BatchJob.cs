namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// One parallel call of a weight matrix's multiply: its pinned input and output pointers and batch size, stored as
/// fields so that a cached item delegate reaches the pool's threads without a closure. Rented per thread (a
/// re-entrant call gets a fresh one), so concurrent callers never share one.
/// </summary>
internal sealed unsafe class BatchJob
{
    [ThreadStatic] private static BatchJob? t_job;

    private readonly Action<int> _item;
    private Action<BatchJob, int>? _work;
    private bool _inUse;

    private BatchJob() => _item = item => _work!(this, item);

    public object? Owner { get; private set; }
    public float* X { get; private set; }
    public float* Y { get; private set; }
    public int Batch { get; private set; }

    /// <summary>The number of items the call was split into.</summary>
    public int Items { get; private set; }

    /// <summary>Runs <paramref name="work"/>(job, item) for item in [0, <paramref name="items"/>) over the pool.</summary>
    /// <param name="pool">Runs the items.</param>
    /// <param name="items">How many items the call is split into.</param>
    /// <param name="work">A static (cached) delegate; the job carries the call's state.</param>
    /// <param name="owner">The matrix whose multiply this is.</param>
    /// <param name="x">The pinned input.</param>
    /// <param name="y">The pinned output.</param>
    /// <param name="batch">The number of input rows.</param>
    public static void Run(WorkerPool pool, int items, Action<BatchJob, int> work, object owner, float* x, float* y, int batch)
    {
        BatchJob? job = t_job;
        if (job is null || job._inUse)
        {
            job = new BatchJob();
            t_job ??= job;
        }

        job._inUse = true;
        (job._work, job.Owner, job.Batch, job.Items) = (work, owner, batch, items);
        job.X = x;
        job.Y = y;
        try
        {
            pool.For(items, job._item, owner);
        }
        finally
        {
            (job._work, job.Owner) = (null, null);
            job.X = job.Y = null;
            job._inUse = false;
        }
    }
}
