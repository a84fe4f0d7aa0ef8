using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>
/// The masks of iterative magnitude pruning: how many weights each level keeps, magnitude pruning of a trained ticket
/// to that many, and the random mask of the control.
/// </summary>
internal static class TicketMasks
{
    /// <summary>round(n·(1 − p)^level), halves away from zero.</summary>
    public static long Kept(long count, double rate, int level) =>
        (long)Math.Round(count * Math.Pow(1 - rate, level), MidpointRounding.AwayFromZero);

    /// <summary>The layers pruned: all prunable layers, but the output layer when it is excluded.</summary>
    public static IReadOnlyList<PrunableLayer> Pruned(IReadOnlyList<PrunableLayer> all, IterativeMagnitudePruningOptions options) =>
        options.ExcludeOutputLayer ? all.Take(all.Count - 1).ToArray() : all;

    /// <summary>
    /// The masks of <paramref name="level"/> from the trained weights of the level before (their masks mark the
    /// weights already pruned): the smallest |w| of the survivors are removed, per layer or with one global threshold;
    /// ties go to the earlier layer and position. Returns one mask per pruned layer.
    /// </summary>
    public static float[][] Magnitude(IReadOnlyList<PrunableLayer> layers, IterativeMagnitudePruningOptions options, int level)
    {
        var scores = layers.Select(Scores).ToArray();
        var pruned = layers.Select(l => new bool[l.Count]).ToArray();
        if (options.Global)
        {
            long total = layers.Sum(l => (long)l.Count);
            var all = scores.SelectMany(s => s).ToArray();
            var selected = new bool[all.Length];
            MaskSelection.SelectLowest(all, total - Kept(total, options.PruningRate, level), selected);
            int offset = 0;
            foreach (var p in pruned)
            {
                selected.AsSpan(offset, p.Length).CopyTo(p);
                offset += p.Length;
            }
        }
        else
        {
            for (int l = 0; l < layers.Count; l++)
            {
                long kept = Kept(layers[l].Count, options.RateOf(l, layers.Count), level);
                MaskSelection.SelectLowest(scores[l], layers[l].Count - kept, pruned[l]);
            }
        }
        return pruned.Select(ToMask).ToArray();
    }

    /// <summary>Random masks with the same number of kept weights per layer as <paramref name="masks"/>, seeded by (seed, level).</summary>
    public static float[][] Random(float[][] masks, int seed, int level)
    {
        var result = new float[masks.Length][];
        for (int l = 0; l < masks.Length; l++)
        {
            var random = new System.Random(Seeds.Derive(seed, level, l));
            var scores = new float[masks[l].Length];
            for (int i = 0; i < scores.Length; i++) scores[i] = random.NextSingle();
            long kept = (long)System.Numerics.Tensors.TensorPrimitives.Sum(masks[l]);
            var pruned = new bool[scores.Length];
            MaskSelection.SelectLowest(scores, scores.Length - kept, pruned);
            result[l] = ToMask(pruned);
        }
        return result;
    }

    /// <summary>|w| for surviving weights, −∞ for pruned ones (so they stay pruned).</summary>
    private static float[] Scores(PrunableLayer layer)
    {
        var scores = new float[layer.Count];
        System.Numerics.Tensors.TensorPrimitives.Abs(layer.Weight.Value, scores);
        if (layer.Weight.Mask is { } mask)
            for (int i = 0; i < scores.Length; i++) if (mask[i] == 0) scores[i] = float.NegativeInfinity;
        return scores;
    }

    private static float[] ToMask(bool[] pruned) => pruned.Select(p => p ? 0f : 1f).ToArray();
}
