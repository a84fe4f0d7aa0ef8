using System.Buffers;
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
    public static int[] Drop(PrunableLayer layer, int[] active, int k) => Smallest(active, k, layer.Weight.Value, largest: false);

    /// <summary>
    /// The <paramref name="k"/> of <paramref name="positions"/> whose |<paramref name="values"/>| are smallest (or
    /// <paramref name="largest"/>), ties to the earlier position. The scratch comes from the shared pools: an update
    /// scores every position of a layer.
    /// </summary>
    public static int[] Smallest(int[] positions, int k, float[] values, bool largest)
    {
        float[] scores = ArrayPool<float>.Shared.Rent(positions.Length);
        bool[] selected = ArrayPool<bool>.Shared.Rent(positions.Length);
        try
        {
            float sign = largest ? -1 : 1;
            for (int j = 0; j < positions.Length; j++) scores[j] = sign * MathF.Abs(values[positions[j]]);
            MaskSelection.SelectLowest(scores.AsSpan(0, positions.Length), k, selected.AsSpan(0, positions.Length));
            var result = new int[k];
            for (int j = 0, n = 0; j < positions.Length; j++) if (selected[j]) result[n++] = positions[j];
            return result;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scores);
            ArrayPool<bool>.Shared.Return(selected);
        }
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
