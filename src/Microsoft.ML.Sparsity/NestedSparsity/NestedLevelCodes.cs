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

    /// <summary>
    /// N:M levels: ranks each group's units by score (ties: the earlier position wins) and gives each unit the number of
    /// levels that keep it, level i keeping the best <paramref name="keptPerGroup"/>[i] of a full group of
    /// <paramref name="m"/> (non-increasing with i). Runs of <paramref name="run"/> units are cut into groups from their
    /// start; a ragged last group of r keeps ⌈k·r/M⌉, as <see cref="Masks.NMSelection"/> does.
    /// </summary>
    public static void AssignInGroups(ReadOnlySpan<float> scores, ReadOnlySpan<int> keptPerGroup, int m, int run, Span<byte> codes)
    {
        for (int i = 1; i < keptPerGroup.Length; i++)
            if (keptPerGroup[i] > keptPerGroup[i - 1])
                throw new ArgumentException($"Level {i} keeps {keptPerGroup[i]} of {m}, more than the denser level {i - 1}'s {keptPerGroup[i - 1]}.", nameof(keptPerGroup));
        for (int start = 0; start < scores.Length; start += run)
            for (int g = start; g < start + run; g += m)
            {
                int size = Math.Min(m, start + run - g);
                for (int a = g; a < g + size; a++)
                {
                    int rank = 0;
                    for (int b = g; b < g + size; b++)
                        if (scores[b] > scores[a] || (scores[b] == scores[a] && b < a)) rank++;
                    int level = 0;
                    while (level < keptPerGroup.Length && Masks.NMSelection.KeptInGroup(keptPerGroup[level], m, size) > rank) level++;
                    codes[a] = (byte)level;
                }
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
