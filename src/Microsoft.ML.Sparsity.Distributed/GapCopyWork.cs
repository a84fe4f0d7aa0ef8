namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>One copy's round of P-GaP as a worker receives it.</summary>
[GenerateSerializer, Immutable]
internal sealed record GapCopyWorkItem([property: Id(0)] string PackageVersion);

/// <summary>What a worker sends back for a copy's round.</summary>
[GenerateSerializer, Immutable]
internal sealed record GapCopyWorkResult([property: Id(0)] int Partition);

internal static class GapCopyWork
{
    public static GapCopyWorkResult Run(GapCopyWorkItem item, WorkerData data, string worker) => throw new NotImplementedException();
}
