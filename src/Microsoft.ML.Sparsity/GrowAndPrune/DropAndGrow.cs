using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>
/// One layer's mask update of dynamic sparse training: pick the weights to drop and the positions to grow, then move
/// the mask entries. Positions are picked from the mask as it was before the update, so nothing is dropped and grown at once.
/// </summary>
internal static class DropAndGrow
{
    /// <summary>The mask's active and inactive positions, each ascending.</summary>
    public static (int[] Active, int[] Inactive) Positions(float[] mask)
    {
        int active = 0;
        foreach (float m in mask) if (m != 0) active++;
        var (on, off) = (new int[active], new int[mask.Length - active]);
        for (int i = 0, a = 0, b = 0; i < mask.Length; i++)
        {
            if (mask[i] != 0) on[a++] = i;
            else off[b++] = i;
        }
        return (on, off);
    }

    /// <summary>How many entries an update moves: round(<paramref name="fraction"/> · active), at most the inactive count (positions to grow into).</summary>
    public static int MoveCount(double fraction, int active, int inactive) =>
        (int)Math.Min(MaskSelection.PrunedCount(fraction, active), inactive);

    /// <summary>The <paramref name="k"/> active positions whose weights are closest to zero (ties: the lower position).</summary>
    public static int[] Drop(PrunableLayer layer, int[] active, int k)
    {
        var w = layer.Weight.Value;
        var scores = new float[active.Length];
        for (int j = 0; j < active.Length; j++) scores[j] = MathF.Abs(w[active[j]]);
        return Lowest(active, scores, k);
    }

    /// <summary>The <paramref name="k"/> of <paramref name="positions"/> with the lowest scores, ties to the earlier one.</summary>
    public static int[] Lowest(int[] positions, float[] scores, int k)
    {
        var selected = new bool[positions.Length];
        MaskSelection.SelectLowest(scores, k, selected);
        var result = new int[k];
        for (int j = 0, n = 0; j < positions.Length; j++) if (selected[j]) result[n++] = positions[j];
        return result;
    }

    /// <summary>
    /// Clears the mask and the weight at <paramref name="dropped"/>; sets the mask at <paramref name="grown"/> and its
    /// weights to <paramref name="grownValues"/> (null: they stay 0, as pruned weights are).
    /// </summary>
    public static void Apply(PrunableLayer layer, int[] dropped, int[] grown, float[]? grownValues)
    {
        var (mask, w) = (layer.Weight.Mask!, layer.Weight.Value);
        foreach (int i in dropped) (mask[i], w[i]) = (0, 0);
        for (int j = 0; j < grown.Length; j++) (mask[grown[j]], w[grown[j]]) = (1, grownValues?[j] ?? 0);
    }
}
