using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Sparsity.ChannelPruning;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.ChannelPruning;

/// <summary>CHEX's column subset selection: leverage scores of hand-made filter matrices, the L1 fallback, its use in pruning.</summary>
public sealed class ColumnSubsetSelectionCriterionTests
{
    /// <summary>Leverage scores for keeping <paramref name="kept"/> of the filters (rows) of <paramref name="filters"/>.</summary>
    private static float[] Scores(float[][] filters, int kept)
    {
        var scores = new float[filters.Length];
        ColumnSubsetSelection.Scores(filters.SelectMany(f => f).ToArray(), filters.Length, kept, scores);
        return scores;
    }

    [Fact]
    public void Two_identical_filters_share_their_direction_and_an_orthogonal_one_keeps_its_own()
    {
        // X = [a a b] with a = (3, 0, 0), b = (0, 1, 0): σ₁ = 3√2 with v₁ = (1, 1, 0)/√2, σ₂ = 1 with v₂ = (0, 0, 1),
        // σ₃ = 0. Keeping 2: leverage = squared row norms of [v₁ v₂] = (1/2, 1/2, 1).
        float[][] filters = [[3, 0, 0], [3, 0, 0], [0, 1, 0]];
        var two = Scores(filters, 2);
        Assert.Equal(0.5, two[0], 1e-6);
        Assert.Equal(0.5, two[1], 1e-6);
        Assert.Equal(1.0, two[2], 1e-6);
        // Keeping 1: only v₁, so (1/2, 1/2, 0).
        var one = Scores(filters, 1);
        Assert.Equal(0.5, one[0], 1e-6);
        Assert.Equal(0.5, one[1], 1e-6);
        Assert.Equal(0.0, one[2], 1e-6);
        // With b = (0, 5, 0), σ(b) = 5 > 3√2 ≈ 4.24 comes first: keeping 1 scores (0, 0, 1).
        var larger = Scores([[3, 0, 0], [3, 0, 0], [0, 5, 0]], 1);
        Assert.Equal(0.0, larger[0], 1e-6);
        Assert.Equal(0.0, larger[1], 1e-6);
        Assert.Equal(1.0, larger[2], 1e-6);
    }

    [Fact]
    public void Only_the_top_k_singular_directions_count()
    {
        // Filters 1.5·e₁ (twice), 2·e₂ and e₃ in R⁴: singular values 1.5√2 ≈ 2.12 (v = (1, 1, 0, 0)/√2), 2 (v = e₃) and
        // 1 (v = e₄). Keeping 2 uses the first two: (1/2, 1/2, 1, 0); keeping 3 adds the last: (1/2, 1/2, 1, 1).
        float[][] filters = [[1.5f, 0, 0, 0], [1.5f, 0, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0]];
        Assert.Equal(new[] { 0.5, 0.5, 1, 0 }, Scores(filters, 2).Select(s => Math.Round(s, 6)).ToArray());
        Assert.Equal(new[] { 0.5, 0.5, 1, 1 }, Scores(filters, 3).Select(s => Math.Round(s, 6)).ToArray());
        Assert.All(Scores(filters, 0), s => Assert.Equal(0f, s));
    }

    [Fact]
    public void Leverage_scores_are_the_diagonal_of_the_projection_onto_the_top_right_singular_vectors()
    {
        // An independent route: the eigenvectors of XᵀX are X's right singular vectors, ordered by eigenvalue.
        var random = new Random(5);
        const int channels = 12, length = 30, kept = 5;
        var weights = Enumerable.Range(0, channels * length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var scores = new float[channels];
        ColumnSubsetSelection.Scores(weights, channels, kept, scores);

        var x = Matrix<double>.Build.Dense(length, channels, weights.Select(w => (double)w).ToArray());
        var evd = (x.TransposeThisAndMultiply(x)).Evd(Symmetricity.Symmetric);
        var order = Enumerable.Range(0, channels).OrderByDescending(i => evd.EigenValues[i].Real).Take(kept).ToArray();
        for (int j = 0; j < channels; j++)
        {
            double expected = order.Sum(i => evd.EigenVectors[j, i] * evd.EigenVectors[j, i]);
            Assert.Equal(expected, scores[j], 1e-5);
            Assert.InRange(scores[j], 0f, 1f + 1e-6f);
        }
        // k orthonormal vectors: the scores add up to k.
        Assert.Equal(kept, scores.Sum(s => (double)s), 1e-5);
    }

    [Fact]
    public void Pruning_keeps_the_leverage_top_k_where_magnitude_keeps_both_duplicates()
    {
        SequentialNetwork Network()
        {
            var network = Build([3], 1, Layers.Dense(3));
            new float[] { 3, 0, 0, 3, 0, 0, 0, 1, 0 }.CopyTo(PrunableLayer.From(network)[0].Weight.Value, 0);
            return network;
        }

        bool[] Kept(SequentialNetwork network) =>
            Enumerable.Range(0, 3).Select(c => PrunableLayer.From(network)[0].Weight.Value.AsSpan(c * 3, 3).ContainsAnyExcept(0f)).ToArray();

        var css = Network();
        PruneNow(css, new PruningOptions { TargetSparsity = 1.0 / 3, Pattern = SparsityPattern.OutputChannels, Criterion = ImportanceCriterion.ColumnSubsetSelection });
        var kept = Kept(css);
        Assert.True(kept[2], "the filter orthogonal to the others must be kept");
        Assert.Equal(1, kept.Take(2).Count(k => k));

        var magnitude = Network();
        PruneNow(magnitude, new PruningOptions { TargetSparsity = 1.0 / 3, Pattern = SparsityPattern.OutputChannels });
        Assert.Equal(new[] { true, true, false }, Kept(magnitude));
    }

    [Fact]
    public void More_channels_than_filter_values_falls_back_to_the_filter_L1_norm()
    {
        // Dense 4 → 6: X is 4 × 6, wider than tall.
        var network = Build([4], 3, Layers.Dense(6));
        var layer = PrunableLayer.From(network)[0];
        var w = layer.Weight.Value;
        var scores = new float[6];
        ColumnSubsetSelection.Scores(w, 6, 3, scores);
        for (int c = 0; c < 6; c++)
            Assert.Equal(Enumerable.Range(0, 4).Sum(i => Math.Abs((double)w[c * 4 + i])), scores[c], 1e-6);

        // So pruning picks the same channels as magnitude (whose channel score is the mean |w|).
        var magnitude = Build([4], 3, Layers.Dense(6));
        PruneNow(network, new PruningOptions { TargetSparsity = 0.5, Pattern = SparsityPattern.OutputChannels, Criterion = ImportanceCriterion.ColumnSubsetSelection });
        PruneNow(magnitude, new PruningOptions { TargetSparsity = 0.5, Pattern = SparsityPattern.OutputChannels });
        Assert.Equal(PrunableLayer.From(magnitude)[0].Weight.Mask, layer.Weight.Mask);
        Assert.Equal(12, Zeros(layer.Weight.Mask!));
    }

    [Fact]
    public void Convolutions_keep_the_leverage_top_k_of_their_flattened_filters_in_every_layer()
    {
        // conv 3×3×4 → 8 (X: 36 × 8) and conv 3×3×8 → 16 (X: 72 × 16); the dense output layer (X: 64 × 10) too.
        var network = SmallConv(seed: 4);
        var layers = PrunableLayer.From(network);
        var expectedKept = layers.Select(l =>
        {
            int keep = l.OutChannels - (int)Math.Round(0.5 * l.OutChannels, MidpointRounding.AwayFromZero);
            var scores = new float[l.OutChannels];
            ColumnSubsetSelection.Scores(l.Weight.Value, l.OutChannels, keep, scores);
            return Enumerable.Range(0, l.OutChannels).OrderByDescending(c => scores[c]).Take(keep).Order().ToArray();
        }).ToArray();
        PruneNow(network, new PruningOptions { TargetSparsity = 0.5, Pattern = SparsityPattern.OutputChannels, Criterion = ImportanceCriterion.ColumnSubsetSelection });
        for (int l = 0; l < layers.Count; l++)
        {
            var layer = layers[l];
            var kept = Enumerable.Range(0, layer.OutChannels).Where(c => layer.Weight.Mask![c * layer.Columns] == 1).ToArray();
            Assert.Equal(expectedKept[l], kept);
        }
    }

    [Fact]
    public void Scores_do_not_depend_on_MathNets_thread_count()
    {
        // 256 channels: MathNet's QR splits its column updates over threads above 200 columns.
        var random = new Random(9);
        const int channels = 256, length = 288;
        var weights = Enumerable.Range(0, channels * length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] Run(int threads)
        {
            int before = MathNet.Numerics.Control.MaxDegreeOfParallelism;
            MathNet.Numerics.Control.MaxDegreeOfParallelism = threads;
            try
            {
                var scores = new float[channels];
                ColumnSubsetSelection.Scores(weights, channels, 128, scores);
                return scores;
            }
            finally { MathNet.Numerics.Control.MaxDegreeOfParallelism = before; }
        }
        Assert.Equal(Run(1), Run(4));
    }

    [Fact]
    public void Bad_combinations_and_counts_are_rejected_with_what_was_expected()
    {
        var unstructured = Assert.Throws<ArgumentException>(() => PruneNow(SmallConv(), new PruningOptions { Criterion = ImportanceCriterion.ColumnSubsetSelection }));
        Assert.Equal(nameof(PruningOptions.Criterion), unstructured.ParamName);
        Assert.Contains("OutputChannels", unstructured.Message);
        var global = Assert.Throws<ArgumentException>(() => PruneNow(SmallConv(), new PruningOptions
        {
            Pattern = SparsityPattern.OutputChannels, Criterion = ImportanceCriterion.ColumnSubsetSelection, Allocation = LayerAllocation.Global,
        }));
        Assert.Contains("per-layer allocation", global.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnSubsetSelection.Scores(new float[12], 3, 4, new float[3]));
        Assert.Throws<ArgumentException>(() => ColumnSubsetSelection.Scores(new float[10], 3, 1, new float[3]));
    }
}
