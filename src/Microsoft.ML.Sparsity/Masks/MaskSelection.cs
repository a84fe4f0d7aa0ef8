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
        // Keys come from the shared pool: a mask update selects among hundreds of thousands of units every ΔT steps.
        ulong[] keys = System.Buffers.ArrayPool<ulong>.Shared.Rent(scores.Length);
        try
        {
            int count = Candidates(scores, (int)k, keys);
            if (count < k)
            {
                count = scores.Length;
                for (int i = 0; i < scores.Length; i++) keys[i] = ((ulong)SortableBits(scores[i]) << 32) | (uint)i;
            }
            MoveLowestToFront(keys, count, (int)k);
            for (long j = 0; j < k; j++) pruned[(int)(uint)keys[j]] = true;
        }
        finally
        {
            System.Buffers.ArrayPool<ulong>.Shared.Return(keys);
        }
    }

    /// <summary>
    /// For a small <paramref name="k"/> (under an eighth of the units, as RigL's regrowth among a layer's inactive
    /// positions): writes into <paramref name="keys"/> the keys of the units scoring at most a threshold read off an
    /// evenly spaced sample and returns their count. When that is at least k, the k lowest are among them and the
    /// quickselect runs on a few times k keys instead of all. Returns 0 when k is not small, and a count below k when
    /// the threshold caught too few (then every key is used).
    /// </summary>
    private static int Candidates(ReadOnlySpan<float> scores, int k, ulong[] keys)
    {
        const int Sample = 1024;
        if (scores.Length < 16 * Sample || k > scores.Length / 8) return 0;
        Span<uint> sample = stackalloc uint[Sample];
        int stride = scores.Length / Sample;
        for (int i = 0; i < Sample; i++) sample[i] = SortableBits(scores[i * stride]);
        sample.Sort();
        // The sample's quantile at twice k's share, plus a margin: a few times k units lie at or below it.
        uint threshold = sample[Math.Min(Sample - 1, (int)(2L * k * Sample / scores.Length) + 16)];
        int count = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            uint bits = SortableBits(scores[i]);
            if (bits <= threshold) keys[count++] = ((ulong)bits << 32) | (uint)i;
        }
        return count;
    }

    /// <summary>
    /// Quickselect (Hoare partitions, median-of-three pivots): leaves the <paramref name="k"/> smallest of the first
    /// <paramref name="count"/> keys in <c>keys[0..k)</c>, in no particular order, in linear expected time. The keys are distinct (they hold the unit's
    /// position), so which keys end up there does not depend on the pivots.
    /// </summary>
    private static void MoveLowestToFront(ulong[] keys, int count, int k)
    {
        int target = k - 1, lo = 0, hi = count - 1;
        while (lo < hi)
        {
            ulong a = keys[lo], b = keys[lo + (hi - lo) / 2], c = keys[hi];
            ulong pivot = Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (keys[i] < pivot) i++;
                while (keys[j] > pivot) j--;
                if (i <= j) (keys[i], keys[j], i, j) = (keys[j], keys[i], i + 1, j - 1);
            }
            // keys[lo..j] ≤ pivot ≤ keys[i..hi]; anything between j and i equals the pivot and is in place.
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else return;
        }
    }

    /// <summary>Maps a float to an unsigned integer with the same order (−∞ lowest; NaN scores sort highest).</summary>
    public static uint SortableBits(float value)
    {
        if (float.IsNaN(value)) return uint.MaxValue;
        uint bits = BitConverter.SingleToUInt32Bits(value == 0 ? 0f : value); // −0 and +0 tie
        return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
    }
}
