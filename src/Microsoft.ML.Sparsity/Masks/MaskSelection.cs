namespace Microsoft.ML.Sparsity.Masks;

/// <summary>
/// Picks exactly k lowest-scoring units with deterministic tie-breaking: units are ordered by (score, position), where
/// position runs over layers in network order and then over the units of a layer in storage order.
/// </summary>
internal static class MaskSelection
{
    /// <summary>The number of units pruned for a sparsity: round(sparsity · count), halves away from zero.</summary>
    public static long PrunedCount(double sparsity, long count) => (long)Math.Round(sparsity * count, MidpointRounding.AwayFromZero);

    /// <summary>Marks in <paramref name="pruned"/> the <paramref name="k"/> units with the lowest (score, index).</summary>
    public static void SelectLowest(ReadOnlySpan<float> scores, long k, Span<bool> pruned)
    {
        pruned.Clear();
        if (k <= 0) return;
        if (k >= scores.Length) { pruned.Fill(true); return; }
        var keys = new ulong[scores.Length];
        for (int i = 0; i < scores.Length; i++) keys[i] = ((ulong)SortableBits(scores[i]) << 32) | (uint)i;
        Array.Sort(keys);
        for (long j = 0; j < k; j++) pruned[(int)(uint)keys[j]] = true;
    }

    /// <summary>Maps a float to an unsigned integer with the same order (−∞ lowest; NaN scores sort highest).</summary>
    public static uint SortableBits(float value)
    {
        if (float.IsNaN(value)) return uint.MaxValue;
        uint bits = BitConverter.SingleToUInt32Bits(value == 0 ? 0f : value); // −0 and +0 tie
        return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
    }
}
