namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// A worker refused work because it differs from the coordinator: another package version, or data whose SHA-256 is
/// not the coordinator's. The message names both sides. The coordinator runs the work on other workers.
/// </summary>
[GenerateSerializer]
public sealed class WorkerMismatchException : Exception
{
    /// <summary>A refusal with no details.</summary>
    public WorkerMismatchException() : this("The worker refused the work.") { }

    /// <summary>A refusal that says what differs.</summary>
    public WorkerMismatchException(string message) : base(message) { }

    /// <summary>A refusal that says what differs, caused by <paramref name="inner"/>.</summary>
    public WorkerMismatchException(string message, Exception inner) : base(message, inner) { }
}
