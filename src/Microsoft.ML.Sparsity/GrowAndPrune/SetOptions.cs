using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>
/// Sparse Evolutionary Training (Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
/// connectivity inspired by network science", Nature Communications, 2018): an ER random mask; after every epoch each
/// layer drops ζ = 0.3 of its active weights closest to zero and grows as many at uniformly random positions that were
/// inactive before the update.
/// </summary>
/// <remarks>
/// The paper drops ζ of the smallest positive and ζ of the largest negative weights; this drops the ζ·active weights of
/// smallest |w| whatever their sign, the rule RigL uses, so SET and RigL differ only in where they grow (with balanced
/// signs the two rules remove nearly the same weights). Defaults are the paper's: ER allocation, updates every epoch
/// until the last, ζ constant, grown weights at 0 as in the authors' code (set <see cref="DynamicSparseOptions.GrowInitializer"/>
/// for the paper's random initialisation).
/// </remarks>
public sealed class SetOptions : DynamicSparseOptions
{
    /// <summary>The paper's settings: 90% sparsity, ER, every epoch, ζ = 0.3 constant, T_end = the whole run, grown weights at 0.</summary>
    public SetOptions()
    {
        Allocation = LayerAllocation.ErdosRenyi;
        UpdateEveryEpoch = true;
        DropFractionSchedule = DropFractionSchedule.Constant;
        EndFraction = 1;
    }

    internal override string Name => "SET";

    /// <summary>k positions drawn uniformly without replacement (a partial Fisher–Yates shuffle of the candidates).</summary>
    internal override int[] Grow(PrunableLayer layer, int[] inactive, int k, Random random)
    {
        for (int j = 0; j < k; j++)
        {
            int r = random.Next(j, inactive.Length);
            (inactive[j], inactive[r]) = (inactive[r], inactive[j]);
        }
        return inactive[..k];
    }
}
