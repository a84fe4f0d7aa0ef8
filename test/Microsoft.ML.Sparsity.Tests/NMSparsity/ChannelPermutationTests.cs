using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.NMSparsity;
using Microsoft.ML.Sparsity.Masks;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.NMSparsity;

public class ChannelPermutationTests
{
    public static TheoryData<string> NetworkKinds => ["mlp", "mlp-bn-dropout", "conv-bn-relu-pool-conv", "conv-flatten-bn-dense", "conv-gap-dense"];

    private static SequentialNetwork Network(string kind, int seed = 3) => kind switch
    {
        "mlp" => Build([16], seed, Layers.Dense(12), Layers.ReLU(), Layers.Dense(8), Layers.Activation(ActivationKind.Tanh), Layers.Dense(4)),
        "mlp-bn-dropout" => Build([16], seed, Layers.Dense(12), Layers.BatchNorm(), Layers.ReLU(), Layers.Dropout(0.3f), Layers.Dense(8), Layers.Dense(4)),
        // The second convolution and the dense layer after the flatten of [2, 2, 8] are both permuted.
        "conv-bn-relu-pool-conv" => Build([8, 8, 3], seed, Layers.Conv2d(8, 3, padding: 1), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2),
            Layers.Conv2d(8, 3, padding: 1), Layers.Activation(ActivationKind.LeakyReLU), Layers.AvgPool2d(2), Layers.Flatten(), Layers.Dense(4)),
        // Batch norm after the flatten normalises 3·3·8 features: each spatial position's 8 channels move together.
        "conv-flatten-bn-dense" => Build([5, 5, 2], seed, Layers.Conv2d(8, 3), Layers.Flatten(), Layers.BatchNorm(), Layers.Dense(4)),
        "conv-gap-dense" => Build([6, 6, 2], seed, Layers.Conv2d(4, 3), Layers.ReLU(), Layers.GlobalAveragePool(), Layers.Dense(3)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Random biases and batch-norm parameters and statistics, so that a misplaced channel changes the output.</summary>
    private static void Randomize(SequentialNetwork network, int seed)
    {
        var random = new Random(seed);
        foreach (var parameter in network.Parameters.Where(p => p.Kind != ParameterKind.Weight))
            for (int i = 0; i < parameter.Length; i++) parameter.Value[i] = (float)(random.NextDouble() * 2 - 1);
        foreach (var norm in network.Layers.OfType<BatchNormLayer>())
        for (int c = 0; c < norm.Channels; c++)
        {
            norm.RunningMean[c] = (float)(random.NextDouble() - 0.5);
            norm.RunningVariance[c] = 0.5f + (float)random.NextDouble();
        }
    }

    private static float[] Outputs(SequentialNetwork network, float[] input, int batch)
    {
        network.EnsureCapacity(batch);
        input.CopyTo(network.Input, 0);
        return network.Forward(batch, training: false).AsSpan(0, batch * network.OutputSize).ToArray();
    }

    private static float[] RandomInput(SequentialNetwork network, int batch, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, batch * network.InputSize).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
    }

    private static int[] RandomPermutation(int count, int seed)
    {
        var permutation = Enumerable.Range(0, count).ToArray();
        new Random(seed).Shuffle(permutation);
        return permutation;
    }

    private static double MaxAbsDifference(float[] a, float[] b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max();

    [Theory]
    [MemberData(nameof(NetworkKinds))]
    public void PermutingAnyLayerAfterTheFirstLeavesTheNetworkFunctionUnchanged(string kind)
    {
        var network = Network(kind);
        Randomize(network, 11);
        var input = RandomInput(network, 5, 12);
        var expected = Outputs(network, input, 5);
        var layers = PrunableLayer.From(network);
        Assert.True(layers.Count >= 2);
        for (int i = 1; i < layers.Count; i++)
        {
            int channels = layers[i - 1].OutChannels;
            ChannelPermutation.Apply(network, i, RandomPermutation(channels, 20 + i));
            Assert.True(MaxAbsDifference(expected, Outputs(network, input, 5)) <= 1e-5, $"{kind}: after a random permutation of layer {i}");
            if (channels % 4 == 0) ChannelPermutation.Permute(network, i, 2, 4);
            Assert.True(MaxAbsDifference(expected, Outputs(network, input, 5)) <= 1e-5, $"{kind}: after the 2:4 search on layer {i}");
        }
    }

    [Theory]
    [MemberData(nameof(NetworkKinds))]
    public void KeptMagnitudeNeverDecreasesAndIsWhatTheNMPatternKeeps(string kind)
    {
        var network = Network(kind);
        Randomize(network, 5);
        var layers = PrunableLayer.From(network);
        var pattern = (SparsityPattern.NMPattern)SparsityPattern.NM(2, 4);
        foreach (var result in ChannelPermutation.PermuteAll(network, 2, 4))
        {
            Assert.True(result.KeptAfter >= result.KeptBefore, $"{result.Layer}: {result.KeptAfter} < {result.KeptBefore}");
            var layer = layers.Single(l => l.Name == result.Layer);
            var weight = layer.Weight.Value;
            var mask = new float[weight.Length];
            pattern.BuildMask(layer, weight.Select(Math.Abs).ToArray(), mask);
            double kept = weight.Zip(mask, (w, k) => (double)Math.Abs(w) * k).Sum();
            Assert.Equal(kept, result.KeptAfter, 1e-4);
            Assert.Equal(weight.Sum(w => (double)Math.Abs(w)), result.Total, 1e-4);
        }
    }

    [Fact]
    public void PermuteAllSkipsTheFirstLayerAndLayersWhoseChannelsDoNotFitTheGroups()
    {
        var network = Build([16], 4, Layers.Dense(12), Layers.ReLU(), Layers.Dense(6), Layers.ReLU(), Layers.Dense(3));
        var input = RandomInput(network, 3, 1);
        var expected = Outputs(network, input, 3);
        var results = ChannelPermutation.PermuteAll(network, 2, 4);
        Assert.Equal("dense1", Assert.Single(results).Layer);
        Assert.Equal("dense0", results[0].Producer);
        Assert.True(MaxAbsDifference(expected, Outputs(network, input, 3)) <= 1e-5);
    }

    /// <summary>Rows whose four large weights all sit in the first group of 4: 2:4 keeps only two of them.</summary>
    private static float[] LargeWeightsInOneGroup(int rows)
    {
        var random = new Random(9);
        var weight = new float[rows * 8];
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < 8; c++)
            weight[r * 8 + c] = (float)((c < 4 ? 5 : 0.1) * (1 + random.NextDouble()) * (random.Next(2) * 2 - 1));
        return weight;
    }

    [Fact]
    public void SearchSeparatesLargeWeightsThatShareAGroup()
    {
        var weight = LargeWeightsInOneGroup(6);
        var permutation = ChannelPermutationSearch.Find(weight, 8, 2, 4);
        double before = ChannelPermutationSearch.KeptMagnitude(weight, 2, 4);
        double after = ChannelPermutationSearch.KeptMagnitude(Permuted(weight, permutation), 2, 4);
        Assert.True(after > before * 1.5, $"{after} vs {before}");
        // Every group now holds two of the large channels.
        Assert.Equal(2, permutation.Take(4).Count(c => c < 4));
        Assert.Equal(BruteForceBest(weight, 8, 2, 4), after, 1e-9 * after);
    }

    [Fact]
    public void PermuteRaisesTheKeptMagnitudeOfALayerWhoseLargeInputsShareAGroup()
    {
        var network = Build([5], 2, Layers.Dense(8), Layers.ReLU(), Layers.Dense(6, useBias: false));
        var target = PrunableLayer.From(network)[1].Weight.Value;
        LargeWeightsInOneGroup(6).CopyTo(target, 0);
        var input = RandomInput(network, 4, 3);
        var expected = Outputs(network, input, 4);
        var result = ChannelPermutation.Permute(network, 1, 2, 4);
        Assert.True(result.KeptAfter > result.KeptBefore * 1.5, $"{result.KeptAfter} vs {result.KeptBefore}");
        Assert.True(MaxAbsDifference(expected, Outputs(network, input, 4)) <= 1e-5);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(2, 3)]
    [InlineData(3, 4)]
    public void OnEightChannelsTheStripePairSearchFindsTheOptimumOfAllPermutations(int n, int seed)
    {
        // 5 outputs × 2 kernel positions: runs of 8 channels sharing one permutation.
        var random = new Random(seed);
        var weight = Enumerable.Range(0, 5 * 2 * 8).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var permutation = ChannelPermutationSearch.Find(weight, 8, n, 4);
        double found = ChannelPermutationSearch.KeptMagnitude(Permuted(weight, permutation), n, 4);
        double best = BruteForceBest(weight, 8, n, 4);
        Assert.Equal(best, found, 1e-9 * best);
    }

    [Fact]
    public void SearchNeverKeepsLessThanTheIdentityAndIsDeterministic()
    {
        for (int seed = 0; seed < 6; seed++)
        {
            var random = new Random(seed);
            int channels = 8 * (seed + 1);
            // Per-channel scales, as in trained layers.
            var scale = Enumerable.Range(0, channels).Select(_ => Math.Exp(random.NextDouble() * 2 - 1)).ToArray();
            var weight = Enumerable.Range(0, 7 * channels).Select(i => (float)((random.NextDouble() * 2 - 1) * scale[i % channels])).ToArray();
            foreach (var (n, m) in new[] { (2, 4), (1, 2), (4, 8) })
            {
                var permutation = ChannelPermutationSearch.Find(weight, channels, n, m);
                Assert.Equal(Enumerable.Range(0, channels), permutation.Order());
                Assert.True(ChannelPermutationSearch.KeptMagnitude(Permuted(weight, permutation), n, m) >= ChannelPermutationSearch.KeptMagnitude(weight, n, m));
                Assert.Equal(permutation, ChannelPermutationSearch.Find(weight, channels, n, m));
            }
        }
        // Nothing to gain: the identity comes back.
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7], ChannelPermutationSearch.Find(new float[16], 8, 2, 4));
    }

    [Fact]
    public void PermutingTwoCopiesGivesBitIdenticalNetworks()
    {
        var a = Network("conv-bn-relu-pool-conv", 8);
        var b = Network("conv-bn-relu-pool-conv", 8);
        Randomize(a, 1);
        Randomize(b, 1);
        var resultsA = ChannelPermutation.PermuteAll(a, 2, 4);
        var resultsB = ChannelPermutation.PermuteAll(b, 2, 4);
        Assert.Equal(resultsA.Select(r => r.Permutation), resultsB.Select(r => r.Permutation));
        for (int i = 0; i < a.StateArrays.Count; i++) Assert.Equal(a.StateArrays[i], b.StateArrays[i]);
    }

    [Fact]
    public void MasksMoveWithTheirValues()
    {
        var network = Build([8], 6, Layers.Dense(8), Layers.ReLU(), Layers.Dense(4));
        var layers = PrunableLayer.From(network);
        foreach (var layer in layers)
            layer.ApplyMask(Enumerable.Range(0, layer.Count).Select(i => (float)(i % 3 == 0 ? 0 : 1)).ToArray());
        ChannelPermutation.Apply(network, 1, RandomPermutation(8, 2));
        foreach (var layer in layers)
            for (int i = 0; i < layer.Count; i++)
                if (layer.Weight.Mask![i] == 0) Assert.Equal(0f, layer.Weight.Value[i]);
    }

    [Fact]
    public void BadInputRaisesArgumentExceptionsNamingTheLayer()
    {
        var mlp = Build([16], 1, Layers.Dense(12), Layers.ReLU(), Layers.Dense(6), Layers.Dense(3));
        // The first layer's inputs are the network's input.
        Assert.Contains("'dense0'", Assert.ThrowsAny<ArgumentException>(() => ChannelPermutation.Permute(mlp, 0, 2, 4)).Message);
        Assert.Contains("'dense0'", Assert.ThrowsAny<ArgumentException>(() => ChannelPermutation.Apply(mlp, 0, [0])).Message);
        // dense2's 6 input channels do not fill groups of 4.
        Assert.Contains("'dense2'", Assert.ThrowsAny<ArgumentException>(() => ChannelPermutation.Permute(mlp, 2, 2, 4)).Message);
        // A permutation of the wrong length, or not a permutation.
        Assert.Contains("'dense1'", Assert.ThrowsAny<ArgumentException>(() => ChannelPermutation.Apply(mlp, 1, [0, 1, 2, 3])).Message);
        Assert.Contains("'dense1'", Assert.ThrowsAny<ArgumentException>(() => ChannelPermutation.Apply(mlp, 1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ChannelPermutation.Permute(mlp, 3, 2, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChannelPermutation.Permute(mlp, 1, 4, 4));
        // After a flatten of [2, 2, 6] the dense layer's 24 inputs hold 6 channels per position: groups of 4 would mix positions.
        var conv = Build([4, 4, 2], 1, Layers.Conv2d(6, 3), Layers.Flatten(), Layers.Dense(4));
        Assert.Contains("'dense0'", Assert.ThrowsAny<ArgumentException>(() => ChannelPermutation.Permute(conv, 1, 2, 4)).Message);
        Assert.Throws<ArgumentException>(() => ChannelPermutationSearch.Find(new float[12], 6, 2, 4));
    }

    private static float[] Permuted(float[] weight, int[] permutation)
    {
        int c = permutation.Length;
        return weight.Select((_, i) => weight[i - i % c + permutation[i % c]]).ToArray();
    }

    private static double BruteForceBest(float[] weight, int channels, int n, int m)
    {
        double best = 0;
        var permutation = Enumerable.Range(0, channels).ToArray();
        do best = Math.Max(best, ChannelPermutationSearch.KeptMagnitude(Permuted(weight, permutation), n, m));
        while (NextPermutation(permutation));
        return best;
    }

    private static bool NextPermutation(int[] p)
    {
        int i = p.Length - 2;
        while (i >= 0 && p[i] >= p[i + 1]) i--;
        if (i < 0) return false;
        int j = p.Length - 1;
        while (p[j] <= p[i]) j--;
        (p[i], p[j]) = (p[j], p[i]);
        Array.Reverse(p, i + 1, p.Length - i - 1);
        return true;
    }
}
