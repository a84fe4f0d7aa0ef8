namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// Deterministic seed derivation. (<see cref="HashCode.Combine{T1, T2}"/> is randomised per process, so it must never
/// feed a seed: results would change from run to run.)
/// </summary>
internal static class Seeds
{
    /// <summary>One step of SplitMix64 (Steele et al., 2014): a bijective, well-mixed 64-bit map.</summary>
    public static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A seed for <see cref="Random"/> derived from a base seed and up to two more numbers (epoch, layer, step…).</summary>
    public static int Derive(int seed, long a, long b = 0)
    {
        ulong z = SplitMix((ulong)(uint)seed);
        z = SplitMix(z ^ (ulong)a);
        z = SplitMix(z ^ (ulong)b);
        return (int)(z >> 33);
    }
}
