namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// How many channels each prunable layer loses: at a channel sparsity (a fraction of the explored layers' channels) or
/// at a fraction of the network's multiply-adds, ranked globally by a score per channel (CHEX's batch-norm |γ|) or
/// uniformly. No explored layer ever loses its last channel.
/// </summary>
/// <param name="channels">Output channels of every prunable layer, in order.</param>
/// <param name="multiplyAdds">Every prunable layer's multiply-adds per example with all channels.</param>
/// <param name="explored">Which prunable layers lose channels (the last never does).</param>
/// <param name="multiple">
/// Every explored layer keeps a multiple of this many channels, or all of them (<see cref="Pruning.PruningOptions.ChannelMultiple"/>,
/// <see cref="ChexOptions.ChannelMultiple"/>): each count is rounded to keep more, and a ranked allocation goes on down
/// the ranking until the rounded counts meet its target.
/// </param>
/// <param name="names">The prunable layers' names, for messages (null: layers by index).</param>
internal sealed class ChexAllocation(int[] channels, long[] multiplyAdds, bool[] explored, int multiple = 1, string[]? names = null)
{
    public int Layers => channels.Length;

    /// <summary>The explored layers' channels together.</summary>
    public int ExploredChannels => Enumerable.Range(0, Layers).Where(p => explored[p]).Sum(p => channels[p]);

    /// <summary>The multiply-adds per example with <paramref name="pruned"/> channels gone from each layer (a layer's inputs are the previous prunable layer's channels).</summary>
    public double MultiplyAdds(int[] pruned)
    {
        double total = 0;
        for (int p = 0; p < Layers; p++)
        {
            double inputs = p == 0 ? 1 : 1 - (double)pruned[p - 1] / channels[p - 1];
            total += multiplyAdds[p] * inputs * (1 - (double)pruned[p] / channels[p]);
        }
        return total;
    }

    /// <summary>
    /// Pruned counts at channel sparsity <paramref name="sparsity"/>: the round(s·total) lowest-scoring channels (scores
    /// null: every layer at s); with a multiple, the lowest-scoring channels whose rounded counts reach that total.
    /// </summary>
    public int[] AtSparsity(double sparsity, float[][]? scores)
    {
        if (scores is null)
            return Rounded([.. Enumerable.Range(0, Layers).Select(p => explored[p] ? Math.Min((int)Math.Round(sparsity * channels[p]), channels[p] - 1) : 0)]);
        int target = (int)Math.Round(sparsity * ExploredChannels);
        var pruned = new int[Layers];
        foreach (var (p, _) in Ranked(scores))
        {
            if (Rounded(pruned).Sum() >= target) break;
            if (pruned[p] < channels[p] - 1) pruned[p]++;
        }
        return Rounded(pruned);
    }

    /// <summary>
    /// Pruned counts removing at least <paramref name="reduction"/> of the multiply-adds: the lowest-scoring channels
    /// one at a time (scores null: the smallest uniform fraction that does).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Not even one channel left in every explored layer removes that much.</exception>
    public int[] AtFlopsReduction(double reduction, float[][]? scores, string option)
    {
        double goal = Goal(reduction, option);
        if (scores is null)
            return AtSparsity(UniformSparsity(goal), null);

        var pruned = new int[Layers];
        foreach (var (p, _) in Ranked(scores))
        {
            if (MultiplyAdds(Rounded(pruned)) <= goal) break;
            if (pruned[p] < channels[p] - 1) pruned[p]++;
        }
        return Rounded(pruned);
    }

    /// <summary>The channel sparsity at which the uniform allocation (no scores) removes at least <paramref name="reduction"/> of the multiply-adds.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not even one channel left in every explored layer removes that much.</exception>
    public double UniformSparsityAt(double reduction, string option) => UniformSparsity(Goal(reduction, option));

    /// <summary>
    /// Checks that round(<paramref name="sparsity"/>·total) channels can be pruned while every explored layer keeps at
    /// least one channel, or one multiple.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">It cannot; <paramref name="option"/> names the sparsity's option.</exception>
    public void CheckReachable(double sparsity, string option)
    {
        int target = (int)Math.Round(sparsity * ExploredChannels), most = MostPruned().Sum();
        if (target > most)
            throw new ArgumentOutOfRangeException(option, sparsity,
                $"A channel sparsity of {sparsity:0.###} prunes {target} of the explored layers' {ExploredChannels} channels ({Explored()}), but with " +
                (multiple > 1 ? $"a multiple of ChannelMultiple = {multiple} channels (or all of them)" : "one channel") +
                $" left in each, at most {most} can go.");
    }

    /// <summary>The most channels each explored layer can lose: all but one, rounded to keep a multiple.</summary>
    private int[] MostPruned() => Rounded([.. Enumerable.Range(0, Layers).Select(p => explored[p] ? channels[p] - 1 : 0)]);

    /// <summary>The multiply-adds left after removing <paramref name="reduction"/>, checked to be reachable.</summary>
    private double Goal(double reduction, string option)
    {
        double full = MultiplyAdds(new int[Layers]), goal = (1 - reduction) * full;
        int[] most = MostPruned();
        if (MultiplyAdds(most) > goal)
            throw new ArgumentOutOfRangeException(option, reduction,
                (multiple > 1
                    ? $"Removing {reduction:P0} of the multiply-adds is more than ChannelMultiple = {multiple} allows: with the fewest channels it lets each explored layer ({Explored()}) keep, "
                    : $"Removing {reduction:P0} of the multiply-adds would take every channel of some layer: with one channel left in each explored layer ({Explored()}), ") +
                $"{1 - MultiplyAdds(most) / full:P1} is the most that can go.");
        return goal;
    }

    /// <summary>The explored layers, by name, for messages.</summary>
    private string Explored() => string.Join(", ", Enumerable.Range(0, Layers).Where(p => explored[p]).Select(p => names is null ? $"#{p}" : $"'{names[p]}'"));

    /// <summary>The smallest uniform channel sparsity whose multiply-adds are at most <paramref name="goal"/> (bisection).</summary>
    private double UniformSparsity(double goal)
    {
        double low = 0, high = 1;
        for (int i = 0; i < 60; i++)
        {
            double mid = (low + high) / 2;
            if (MultiplyAdds(AtSparsity(mid, null)) <= goal) high = mid; else low = mid;
        }
        return high;
    }

    /// <summary>Each layer's pruned count lowered so that it keeps a multiple of <c>multiple</c> channels (<see cref="KeepMultiple"/>).</summary>
    private int[] Rounded(int[] pruned) => [.. pruned.Select((n, p) => KeepMultiple(channels[p], n, multiple))];

    /// <summary>
    /// How many of a layer's <paramref name="channels"/> to prune instead of <paramref name="pruned"/> so that it keeps a
    /// multiple of <paramref name="multiple"/> (or all of them): the kept count rounded up.
    /// </summary>
    public static int KeepMultiple(int channels, int pruned, int multiple)
    {
        int over = (channels - pruned) % multiple; // kept channels past the last multiple (no overflow for any multiple)
        return over == 0 ? pruned : Math.Max(0, pruned - (multiple - over));
    }

    /// <summary>The explored layers' channels by ascending score; ties by layer, then channel.</summary>
    private IEnumerable<(int Layer, int Channel)> Ranked(float[][] scores) =>
        Enumerable.Range(0, Layers).Where(p => explored[p])
            .SelectMany(p => Enumerable.Range(0, channels[p]).Select(c => (Layer: p, Channel: c)))
            .OrderBy(x => scores[x.Layer][x.Channel]).ThenBy(x => x.Layer).ThenBy(x => x.Channel);
}
