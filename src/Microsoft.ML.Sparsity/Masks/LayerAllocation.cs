namespace Microsoft.ML.Sparsity.Masks;

/// <summary>How a target sparsity is shared among the pruned layers.</summary>
public abstract class LayerAllocation
{
    private protected LayerAllocation() { }

    /// <summary>Every pruned layer gets the target sparsity.</summary>
    public static LayerAllocation Uniform { get; } = new FixedAllocation(null, "uniform");

    /// <summary>One threshold over the units of all pruned layers together, so layers end at whatever sparsity their scores give.</summary>
    public static LayerAllocation Global { get; } = new GlobalAllocation();

    /// <summary>
    /// Erdős–Rényi: density ∝ (n_in + n_out) / (n_in · n_out) (Mocanu et al., "Scalable training of artificial neural
    /// networks with adaptive sparse connectivity inspired by network science", 2018).
    /// </summary>
    public static LayerAllocation ErdosRenyi { get; } = new FixedAllocation(includeKernel: false, "ER");

    /// <summary>
    /// Erdős–Rényi-Kernel: density ∝ (n_in + n_out + kh + kw) / (n_in · n_out · kh · kw) (Evci et al., "Rigging the
    /// Lottery: Making All Tickets Winners", 2020). Layers that would exceed density 1 are made dense and the factor is
    /// re-solved so the total matches.
    /// </summary>
    public static LayerAllocation ErdosRenyiKernel { get; } = new FixedAllocation(includeKernel: true, "ERK");

    /// <summary>The allocation a name stands for, as <see cref="object.ToString"/> writes it: "uniform", "global", "ER" or "ERK" (any case).</summary>
    /// <exception cref="ArgumentException">The name is none of these.</exception>
    public static LayerAllocation Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return new[] { Uniform, Global, ErdosRenyi, ErdosRenyiKernel }.FirstOrDefault(a => string.Equals(a.ToString(), name.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"'{name}' is not a layer allocation: use uniform, global, ER or ERK.", nameof(name));
    }

    internal virtual bool IsGlobal => false;

    /// <summary>True when the allocation promises a total (ER, ERK): per-layer counts are then rounded so they add up exactly.</summary>
    internal virtual bool MatchesTotal => false;

    /// <summary>
    /// Per-layer sparsities for the free layers such that the pruned weights of all given layers total
    /// round(target · Σ count); <paramref name="fixedSparsity"/> holds the layers whose sparsity is set (NaN = free).
    /// </summary>
    internal abstract double[] Allocate(IReadOnlyList<PrunableLayer> layers, double target, double[] fixedSparsity);

    private sealed class GlobalAllocation : LayerAllocation
    {
        internal override bool IsGlobal => true;

        internal override double[] Allocate(IReadOnlyList<PrunableLayer> layers, double target, double[] fixedSparsity) =>
            throw new InvalidOperationException("A global allocation selects units across layers; it has no per-layer sparsities.");

        public override string ToString() => "global";
    }

    /// <summary>Uniform (no shape factor), ER or ERK.</summary>
    private sealed class FixedAllocation(bool? includeKernel, string name) : LayerAllocation
    {
        internal override bool MatchesTotal => includeKernel is not null;

        internal override double[] Allocate(IReadOnlyList<PrunableLayer> layers, double target, double[] fixedSparsity)
        {
            var sparsity = (double[])fixedSparsity.Clone();
            if (includeKernel is null)
            {
                for (int l = 0; l < layers.Count; l++) if (double.IsNaN(sparsity[l])) sparsity[l] = target;
                return sparsity;
            }
            // Solve ε: Σ_free min(1, ε·raw_l)·N_l = kept budget − Σ_fixed kept; layers capped at density 1 leave the free set.
            double total = layers.Sum(l => (double)l.Count);
            double keptBudget = (1 - target) * total;
            for (int l = 0; l < layers.Count; l++)
                if (!double.IsNaN(fixedSparsity[l])) keptBudget -= (1 - fixedSparsity[l]) * layers[l].Count;
            var raw = layers.Select(l => includeKernel.Value
                ? (double)(l.InChannels + l.OutChannels + l.KernelH + l.KernelW) / ((double)l.InChannels * l.OutChannels * l.KernelH * l.KernelW)
                : (double)(l.InChannels + l.OutChannels) / ((double)l.InChannels * l.OutChannels)).ToArray();
            var dense = new bool[layers.Count];
            while (true)
            {
                double denseKept = 0, weighted = 0;
                for (int l = 0; l < layers.Count; l++)
                {
                    if (!double.IsNaN(fixedSparsity[l])) continue;
                    if (dense[l]) denseKept += layers[l].Count;
                    else weighted += raw[l] * layers[l].Count;
                }
                if (weighted == 0) break;
                double epsilon = (keptBudget - denseKept) / weighted;
                bool changed = false;
                for (int l = 0; l < layers.Count; l++)
                {
                    if (!double.IsNaN(fixedSparsity[l]) || dense[l]) continue;
                    if (epsilon * raw[l] > 1) { dense[l] = true; changed = true; }
                }
                if (changed) continue;
                for (int l = 0; l < layers.Count; l++)
                    if (double.IsNaN(fixedSparsity[l])) sparsity[l] = dense[l] ? 0 : Math.Clamp(1 - epsilon * raw[l], 0, 1);
                break;
            }
            for (int l = 0; l < layers.Count; l++) if (double.IsNaN(sparsity[l])) sparsity[l] = 0;
            return sparsity;
        }

        public override string ToString() => name;
    }

    /// <summary>
    /// Units to prune per layer: round(s_l · units_l) each, or, when <paramref name="total"/> is given, the floors plus
    /// one more for the largest remainders (ties to the earlier layer) so the counts add up to <paramref name="total"/>.
    /// </summary>
    internal static long[] PrunedCounts(double[] sparsity, int[] units, long? total)
    {
        var counts = new long[units.Length];
        if (total is null)
        {
            for (int l = 0; l < units.Length; l++) counts[l] = MaskSelection.PrunedCount(sparsity[l], units[l]);
            return counts;
        }
        long sum = 0;
        var remainder = new double[units.Length];
        for (int l = 0; l < units.Length; l++)
        {
            double exact = sparsity[l] * units[l];
            counts[l] = (long)Math.Floor(exact + 1e-9);
            remainder[l] = counts[l] < units[l] ? exact - counts[l] : double.NegativeInfinity;
            sum += counts[l];
        }
        foreach (int l in Enumerable.Range(0, units.Length).OrderByDescending(l => remainder[l]).ThenBy(l => l))
        {
            if (sum >= total) break;
            if (counts[l] >= units[l]) continue;
            counts[l]++;
            sum++;
        }
        return counts;
    }
}
