using Microsoft.ML.Sparsity.Masks;

namespace Microsoft.ML.Sparsity.GrowAndPrune;

/// <summary>
/// RigL (Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020): an ERK random mask; every
/// ΔT = 100 steps until T_end = 75% of training, each layer drops f(t) = α·(1 + cos(π·t/T_end))/2 (α = 0.3) of its
/// active weights with the smallest |w| and grows as many at the inactive positions with the largest |∂L/∂w| of the
/// dense gradient on the current batch. Grown weights start at 0 with zero optimiser state.
/// </summary>
/// <remarks>
/// The engine's backward pass computes every weight's gradient, masked or not (the mask is applied by the optimiser's
/// update), so the dense gradient of the batch just trained on is at hand at an update step at no extra cost; RigL
/// reads it in place of the paper's extra dense backward pass. The update follows that step's optimiser update, so the
/// drop uses the weights after it.
/// </remarks>
public sealed class RigLOptions : DynamicSparseOptions
{
    /// <summary>The paper's settings: 90% sparsity, ERK, every 100 steps, α = 0.3 with cosine decay, T_end = 75% of training, grown weights at 0.</summary>
    public RigLOptions()
    {
        Allocation = LayerAllocation.ErdosRenyiKernel;
        UpdateEveryEpoch = false;
        UpdateFrequency = 100;
        DropFractionSchedule = DropFractionSchedule.Cosine;
        EndFraction = 0.75;
    }

    internal override string Name => "RigL";

    /// <summary>The k inactive positions with the largest |gradient| (ties: the lower position).</summary>
    internal override int[] Grow(PrunableLayer layer, int[] inactive, int k, Random random)
    {
        return DropAndGrow.Smallest(inactive, k, layer.Weight.Gradient, largest: true);
    }
}
