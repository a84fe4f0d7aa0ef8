using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>GaP's partitions of the pruned layers: the user's, checked, or balanced runs of consecutive layers.</summary>
internal static class GapPartitions
{
    /// <summary>
    /// The partitions as positions in <paramref name="pruned"/> (ascending within a partition). Keys in
    /// <see cref="GapOptions.Partitions"/> are resolved against <paramref name="all"/>, the network's prunable layers.
    /// </summary>
    public static int[][] Resolve(GapOptions options, IReadOnlyList<PrunableLayer> all, IReadOnlyList<PrunableLayer> pruned)
    {
        string names = string.Join(", ", pruned.Select(l => $"'{l.Name}'"));
        if (options.Partitions.Count == 0)
        {
            int k = options.PartitionCount ?? Math.Min(4, pruned.Count);
            if (k > pruned.Count)
                throw new ArgumentOutOfRangeException(nameof(GapOptions.PartitionCount), k,
                    $"κ = {k} partitions need at least {k} pruned layers; the network has {pruned.Count} ({names}).");
            return Balanced(pruned.Select(l => (long)l.Count).ToArray(), k);
        }
        if (options.Partitions.Count > pruned.Count)
            throw new ArgumentException(
                $"Partitions lists {options.Partitions.Count} partitions; there are only {pruned.Count} pruned layers ({names}).", nameof(GapOptions.Partitions));
        var position = pruned.Select((l, i) => (l.Index, i)).ToDictionary(p => p.Index, p => p.i);
        var owner = Enumerable.Repeat(-1, pruned.Count).ToArray();
        for (int p = 0; p < options.Partitions.Count; p++)
        {
            var keys = options.Partitions[p];
            if (keys is null || keys.Count == 0)
                throw new ArgumentException($"Partitions: partition {p} is empty; every partition needs at least one layer.", nameof(GapOptions.Partitions));
            foreach (string key in keys)
            {
                int index = LayerSelection.Resolve(all, key, nameof(GapOptions.Partitions));
                if (!position.TryGetValue(index, out int i))
                    throw new ArgumentException(
                        $"Partitions: layer '{all[index].Name}' (partition {p}) is not pruned (it is excluded, the pattern does not fit it, or its target sparsity is 0); the pruned layers are {names}.",
                        nameof(GapOptions.Partitions));
                if (owner[i] >= 0)
                    throw new ArgumentException(
                        $"Partitions: layer '{pruned[i].Name}' is in partition {owner[i]} and again in partition {p}; every pruned layer must be in exactly one.",
                        nameof(GapOptions.Partitions));
                owner[i] = p;
            }
        }
        int missing = Array.IndexOf(owner, -1);
        if (missing >= 0)
            throw new ArgumentException(
                $"Partitions: layer '{pruned[missing].Name}' is in no partition; every pruned layer ({names}) must be in exactly one.", nameof(GapOptions.Partitions));
        return Enumerable.Range(0, options.Partitions.Count).Select(p => Enumerable.Range(0, pruned.Count).Where(i => owner[i] == p).ToArray()).ToArray();
    }

    /// <summary>
    /// Splits layers 0..n−1, in order, into <paramref name="k"/> non-empty runs whose largest total size is as small
    /// as possible (ties: the earliest cut points).
    /// </summary>
    public static int[][] Balanced(long[] sizes, int k)
    {
        int n = sizes.Length;
        var prefix = new long[n + 1];
        for (int i = 0; i < n; i++) prefix[i + 1] = prefix[i] + sizes[i];
        // best[j, i]: the smallest largest run when the first i layers form j runs; cut[j, i]: where the last run starts.
        var best = new long[k + 1, n + 1];
        var cut = new int[k + 1, n + 1];
        for (int j = 0; j <= k; j++) for (int i = 0; i <= n; i++) best[j, i] = long.MaxValue;
        best[0, 0] = 0;
        for (int j = 1; j <= k; j++)
        for (int i = j; i <= n; i++)
        for (int c = j - 1; c < i; c++)
        {
            if (best[j - 1, c] == long.MaxValue) continue;
            long largest = Math.Max(best[j - 1, c], prefix[i] - prefix[c]);
            if (largest < best[j, i]) (best[j, i], cut[j, i]) = (largest, c);
        }
        var runs = new int[k][];
        for (int j = k, end = n; j >= 1; j--)
        {
            int start = cut[j, end];
            runs[j - 1] = Enumerable.Range(start, end - start).ToArray();
            end = start;
        }
        return runs;
    }

    /// <summary>
    /// The partition each network layer belongs to, for P-GaP's merge: a pruned layer's own partition; any other layer
    /// (activations, normalisation, excluded layers) that of the nearest pruned layer before it, or after it if none precedes.
    /// </summary>
    public static int[] LayerOwners(Network.SequentialNetwork network, IReadOnlyList<PrunableLayer> pruned, int[][] partitions)
    {
        var ownerOf = new Dictionary<Network.Layer, int>();
        for (int p = 0; p < partitions.Length; p++) foreach (int i in partitions[p]) ownerOf[pruned[i].Layer] = p;
        var owners = new int[network.Layers.Count];
        int current = -1;
        for (int i = 0; i < owners.Length; i++)
        {
            if (ownerOf.TryGetValue(network.Layers[i], out int p)) current = p;
            owners[i] = current;
        }
        int first = owners.First(o => o >= 0);
        for (int i = 0; i < owners.Length && owners[i] < 0; i++) owners[i] = first;
        return owners;
    }
}

/// <summary>
/// Which partition C-GaP grows at each step: step k of round r = k / κ grows partition k mod κ (cyclic), or entry
/// k mod κ of round r's permutation (random). <see cref="Steps"/> = κ·rounds; the prune after the last step ends it.
/// </summary>
internal sealed class GapSchedule(int partitions, int rounds, GapPartitionOrder order, int seed)
{
    /// <summary>Mixed into the training seed so the order's random stream is GaP's own.</summary>
    public const long SeedTag = 0x6A9;

    public int Partitions => partitions;
    public int Rounds => rounds;
    public int Steps => partitions * rounds;

    /// <summary>The partition grown during step <paramref name="step"/> (0-based, below <see cref="Steps"/>).</summary>
    public int PartitionAt(int step) => RoundOrder(step / partitions)[step % partitions];

    /// <summary>The order of round <paramref name="round"/>: 0..κ−1, shuffled by Random(Derive(seed, tag, round)) for the random order.</summary>
    public int[] RoundOrder(int round)
    {
        var result = Enumerable.Range(0, partitions).ToArray();
        if (order == GapPartitionOrder.Random) new Random(Engine.Seeds.Derive(seed, SeedTag, round)).Shuffle(result);
        return result;
    }
}
