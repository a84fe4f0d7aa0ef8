namespace Microsoft.ML.Sparsity.NestedSparsity;

/// <summary>
/// Nested masks as one code per weight: how many of the levels (densest first) keep it. Level i keeps the weights whose
/// code exceeds i, so a sparser level's kept weights are always a subset of a denser level's.
/// </summary>
internal static class NestedLevelCodes
{
    /// <summary>
    /// Ranks the units by (score, position) and gives each the number of levels that keep it: level i prunes the
    /// <paramref name="prunedCounts"/>[i] lowest (the counts must not decrease with i).
    /// </summary>
    public static void Assign(ReadOnlySpan<float> scores, ReadOnlySpan<long> prunedCounts, Span<byte> codes)
    {
        for (int i = 1; i < prunedCounts.Length; i++)
            if (prunedCounts[i] < prunedCounts[i - 1])
                throw new ArgumentException($"Level {i} prunes {prunedCounts[i]} units, fewer than the denser level {i - 1}'s {prunedCounts[i - 1]}.", nameof(prunedCounts));
        ulong[] keys = new ulong[scores.Length];
        for (int u = 0; u < scores.Length; u++) keys[u] = ((ulong)Masks.MaskSelection.SortableBits(scores[u]) << 32) | (uint)u;
        Array.Sort(keys);
        int level = 0;
        for (int rank = 0; rank < keys.Length; rank++)
        {
            while (level < prunedCounts.Length && prunedCounts[level] <= rank) level++;
            codes[(int)(uint)keys[rank]] = (byte)level;
        }
    }

    /// <summary>Writes level <paramref name="level"/>'s mask (1 kept, 0 pruned).</summary>
    public static void Mask(ReadOnlySpan<byte> codes, int level, Span<float> mask)
    {
        for (int i = 0; i < codes.Length; i++) mask[i] = codes[i] > level ? 1f : 0f;
    }

    /// <summary>Multiplies <paramref name="values"/> by level <paramref name="level"/>'s mask in place.</summary>
    public static void ApplyMask(ReadOnlySpan<byte> codes, int level, Span<float> values)
    {
        for (int i = 0; i < codes.Length; i++)
            if (codes[i] <= level) values[i] = 0;
    }

    /// <summary>How many units level <paramref name="level"/> keeps.</summary>
    public static long Kept(ReadOnlySpan<byte> codes, int level)
    {
        long kept = 0;
        for (int i = 0; i < codes.Length; i++)
            if (codes[i] > level) kept++;
        return kept;
    }
}
