using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.GrowAndPrune;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// One copy's round of P-GaP as a worker receives it: the round's starting model (state arrays and masks), the partition
/// the copy grows, the round and seeds, P-GaP's options as JSON, and its context.
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record GapCopyWorkItem(
    [property: Id(0)] WorkContext Context,
    [property: Id(1)] string Options,
    [property: Id(2)] float[][] State,
    [property: Id(3)] float[]?[] Masks,
    [property: Id(4)] int Partition,
    [property: Id(5)] int Round,
    [property: Id(6)] int Seed,
    [property: Id(7)] int ClassCount,
    [property: Id(8)] int[] InputShape)
{
    public static GapCopyWorkItem Create(GapCopyWork work, string options, WorkContext context) =>
        new(context, options, work.Start.State, work.Start.Masks, work.Partition, work.Round, work.Seed, work.ClassCount, work.InputShape);

    public GapCopyWork Work() => new(new GapModelState(State, Masks), Partition, Round, Seed, ClassCount, InputShape);
}

/// <summary>What a worker sends back for a copy's round: the arrays of its partition, by index.</summary>
[GenerateSerializer, Immutable]
internal sealed record GapCopyWorkResult(
    [property: Id(0)] int Partition,
    [property: Id(1)] int[] StateIndices,
    [property: Id(2)] float[][] States,
    [property: Id(3)] int[] MaskIndices,
    [property: Id(4)] float[]?[] Masks)
{
    public static GapCopyWorkResult From(GapCopyResult result) => new(result.Partition,
        [.. result.State.Keys], [.. result.State.Values], [.. result.Masks.Keys], [.. result.Masks.Values]);

    public GapCopyResult ToResult() => new(Partition,
        StateIndices.Zip(States).ToDictionary(p => p.First, p => p.Second), MaskIndices.Zip(Masks).ToDictionary(p => p.First, p => p.Second));
}

/// <summary>A worker's side of a copy: the same <see cref="GapCopy.Train"/> a machine alone runs.</summary>
internal static class GapCopyWorker
{
    public static GapCopyWorkResult Run(GapCopyWorkItem item, WorkerData data, string worker)
    {
        var (train, _) = item.Context.Load(data, worker);
        var options = GapOptionsJson.Read(item.Options);
        if (!train.FeatureShapeArray.SequenceEqual(item.InputShape)) train = train.Reshape(item.InputShape); // the options' InputShape
        data.Log($"P-GaP round {item.Round}, copy {item.Partition} started");
        var result = GapCopy.Train(item.Work(), options, train, WorkerPool.Shared(item.Context.Threads), CancellationToken.None);
        data.Log($"P-GaP round {item.Round}, copy {item.Partition} done");
        return GapCopyWorkResult.From(result);
    }
}
