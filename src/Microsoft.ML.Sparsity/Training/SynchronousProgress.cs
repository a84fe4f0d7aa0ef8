namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// An <see cref="IProgress{T}"/> that reports on the caller's thread, at once (<see cref="Progress{T}"/> posts to
/// another thread, too late for a report that decides whether training goes on).
/// </summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
