using System.Globalization;
using Microsoft.ML.Sparsity.ChannelPruning;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Tests.Training;
using Microsoft.ML.Sparsity.Training;
using Microsoft.ML.Sparsity.Tests.Masks;
using Xunit;
using static Microsoft.ML.Sparsity.Tests.Masks.SparsityTestNetworks;

namespace Microsoft.ML.Sparsity.Tests.ChannelPruning;

/// <summary>CHEX: its schedule against the paper's formulas, exact masks, regrowth counts and most-recently-used restore, at every step.</summary>
public sealed class ChexTests
{
    private const int Batch = 8, StepsPerEpoch = 5, Epochs = 24;

    /// <summary>conv3×3-8 → BN → ReLU → pool → conv3×3-16 → BN → ReLU → flatten → dense 12 → BN → ReLU → dense 4, on 8×8×3 images.</summary>
    private static SequentialNetwork Net(bool batchNorm = true) => Build([8, 8, 3], 5,
    [
        Layers.Conv2d(8, 3, padding: 1), .. Norm(batchNorm), Layers.ReLU(), Layers.MaxPool2d(2),
        Layers.Conv2d(16, 3, padding: 1), .. Norm(batchNorm), Layers.ReLU(), Layers.Flatten(),
        Layers.Dense(12), .. Norm(batchNorm), Layers.ReLU(), Layers.Dense(4),
    ]);

    private static LayerDefinition[] Norm(bool on) => on ? [Layers.BatchNorm()] : [];

    /// <summary>Drives the controller through the training loop's hooks by hand, on seeded random batches.</summary>
    private sealed class Run
    {
        private readonly RandomBatches _batches = new(4, Batch);

        public Run(SequentialNetwork network, ChexOptions options)
        {
            Network = network;
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f, WeightDecay = 1e-3f }.Create(network.Parameters, Pool);
            Controller = (ChexController)options.CreateController(network, Optimizer, seed: 3, log: null);
            network.EnsureCapacity(Batch);
        }

        public SequentialNetwork Network { get; }
        public Optimizer Optimizer { get; }
        public ChexController Controller { get; }

        /// <summary>Forward, backward and the optimiser update of step <paramref name="t"/>; the test then calls the controller's AfterStep.</summary>
        public void Train(long t)
        {
            _batches.Next(Network);
            Controller.AfterBackward(t);
            Optimizer.Step(0.05f);
        }

        public float[] StateOf(Parameter parameter, int slot) =>
            Optimizer.State[Network.Parameters.ToList().IndexOf(parameter) * Optimizer.StateSlots + slot];
    }

    [Fact]
    public void TheRecordedDescriptionReadsTheSameInEveryCulture()
    {
        var culture = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = new CultureInfo("de-DE"); // decimal comma
            Assert.StartsWith("CHEX to 0.5 of the multiply-adds removed: δ₀ = 0.25, ΔT = 2 epochs, T_max = 0.72 of training",
                new ChexOptions { FlopsReduction = 0.5, InitialRegrowth = 0.25, UpdateEpochs = 2 }.ToString());
            Assert.StartsWith("CHEX to 0.4 channel sparsity:", new ChexOptions { ChannelSparsity = 0.4 }.ToString());
            Assert.EndsWith("orthogonality regrowth, channels kept in multiples of 16", new ChexOptions { ChannelMultiple = 16 }.ToString());
        }
        finally
        {
            CultureInfo.CurrentCulture = culture;
        }
    }

    /// <summary>Every parameter entry a channel owns: its weight row, bias, batch norm γ and β, and its columns in the next layer.</summary>
    private static IEnumerable<(Parameter Parameter, int Entry)> Owned(IReadOnlyList<PrunableLayer> layers, IReadOnlyList<BatchNormLayer?> norms, int p, int c)
    {
        var layer = layers[p];
        for (int j = 0; j < layer.Columns; j++) yield return (layer.Weight, c * layer.Columns + j);
        if (layer.Bias is { } bias) yield return (bias, c);
        if (norms[p] is { } norm) { yield return (norm.Gamma, c); yield return (norm.Beta, c); }
        var next = layers[p + 1];
        for (int e = 0; e < next.Count; e++)
            if (e % next.Columns % layer.OutChannels == c) yield return (next.Weight, e);
    }

    private static BatchNormLayer?[] NormsOf(SequentialNetwork network, IReadOnlyList<PrunableLayer> layers) =>
        [.. layers.Select(l =>
        {
            int i = network.Layers.ToList().IndexOf(l.Layer);
            return i + 1 < network.Layers.Count ? network.Layers[i + 1] as BatchNormLayer : null;
        })];

    [Theory]
    [InlineData(ChannelAllocation.BatchNormScale, ChannelRegrowth.Orthogonality)]
    [InlineData(ChannelAllocation.BatchNormScale, ChannelRegrowth.Uniform)]
    [InlineData(ChannelAllocation.Uniform, ChannelRegrowth.Orthogonality)]
    public void ScheduleMasksRegrowthAndRestoreAreExactAtEveryStep(ChannelAllocation allocation, ChannelRegrowth regrowth)
    {
        const double s = 0.5, delta0 = 0.3;
        var options = new ChexOptions { ChannelSparsity = s, InitialRegrowth = delta0, UpdateEpochs = 2, ExplorationEnd = 0.75, Allocation = allocation, Regrowth = regrowth };
        var network = Net();
        var layers = PrunableLayer.From(network);
        var norms = NormsOf(network, layers);
        int[] channels = [.. layers.Select(l => l.OutChannels)];
        int explored = channels[..^1].Sum();

        // The initial pruning: S − δ₀ of every explored layer's channels, those of smallest filter L1 norm.
        var initialNorms = layers.Select(l => Enumerable.Range(0, l.OutChannels).Select(c => l.Weight.Value.Skip(c * l.Columns).Take(l.Columns).Sum(MathF.Abs)).ToArray()).ToArray();
        var run = new Run(network, options);
        // The values each entry had when it was last unmasked (what a regrown channel must get back): a channel
        // pruned from the start comes back with its initial values.
        var lastUsed = network.Parameters.ToDictionary(q => q, q => (float[])q.Value.Clone());
        var statistics = norms.Select(n => n is null ? ((float[] Mean, float[] Variance)?)null : ((float[])n.RunningMean.Clone(), (float[])n.RunningVariance.Clone())).ToArray();
        run.Controller.Start(StepsPerEpoch, (long)StepsPerEpoch * Epochs);
        Assert.Equal((2, 18), run.Controller.Schedule);
        for (int p = 0; p + 1 < layers.Count; p++)
        {
            int prune = (int)Math.Round((s - delta0) * channels[p]);
            var expected = Enumerable.Range(0, channels[p]).OrderBy(c => initialNorms[p][c]).ThenByDescending(c => c).Take(prune).ToHashSet();
            Assert.Equal(expected.Order(), Enumerable.Range(0, channels[p]).Where(c => !run.Controller.Active[p][c]));
        }

        int updates = 0, regrownChannels = 0;
        for (long t = 0; t < StepsPerEpoch * Epochs; t++)
        {
            run.Train(t);
            var activeBefore = run.Controller.Active.Select(a => (bool[])a.Clone()).ToArray();
            foreach (var q in network.Parameters)
                for (int e = 0; e < q.Length; e++)
                    if (q.Mask is null || q.Mask[e] != 0) lastUsed[q][e] = q.Value[e];
            for (int p = 0; p < norms.Length; p++)
                if (norms[p] is { } n)
                    for (int c = 0; c < n.Channels; c++)
                        if (activeBefore[p][c]) (statistics[p]!.Value.Mean[c], statistics[p]!.Value.Variance[c]) = (n.RunningMean[c], n.RunningVariance[c]);

            run.Controller.AfterStep(t + 1);
            int epoch = (int)((t + 1) / StepsPerEpoch);
            bool updateNow = (t + 1) % StepsPerEpoch == 0 && (epoch == 18 || (epoch < 18 && epoch % 2 == 0));
            var active = run.Controller.Active;
            if (!updateNow)
            {
                for (int p = 0; p < layers.Count; p++) Assert.Equal(activeBefore[p], active[p]);
            }
            else
            {
                updates++;
                // Pruned to S, then g regrown: the explored layers keep round(S·C) − round((S − δ_t)·C) more than S leaves.
                double delta = epoch == 18 ? 0 : delta0 * (1 + Math.Cos(Math.PI * epoch / 18)) / 2;
                int pruned = Enumerable.Range(0, layers.Count - 1).Sum(p => active[p].Count(a => !a));
                // (S·C is whole for every layer here, so S itself is the allocated sparsity.)
                int[] down;
                if (allocation == ChannelAllocation.Uniform)
                {
                    down = [.. channels.Select((c, p) => p + 1 < layers.Count ? (int)Math.Round(s * c) : 0)];
                    for (int p = 0; p + 1 < layers.Count; p++) Assert.Equal((int)Math.Round((s - delta) * channels[p]), active[p].Count(a => !a));
                }
                else
                {
                    Assert.Equal((int)Math.Round((s - delta) * explored), pruned);
                    // Each layer's share ranks every channel by the |γ| it last had, a pruned channel's too (not its masked 0).
                    var ranking = new ChexAllocation(channels, [.. layers.Select(l => l.Layer.MultiplyAdds)], [.. layers.Select(l => l.Index + 1 < layers.Count)]);
                    float[][] gammas = [.. norms.Select((n, p) => p + 1 < layers.Count ? lastUsed[n!.Gamma].Select(MathF.Abs).ToArray() : [])];
                    down = ranking.AtSparsity(s, gammas);
                    int[] up = delta > 0 ? ranking.AtSparsity((double)down.Sum() / explored * (1 - delta / s), gammas) : down;
                    for (int p = 0; p + 1 < layers.Count; p++) Assert.Equal(up[p], active[p].Count(a => !a));
                }

                // Column subset selection reads each filter as it will compute: its last used values, with the columns of
                // input channels pruned by this update at 0. The filters it keeps are all active (regrowth adds the rest).
                for (int p = 0; p + 1 < layers.Count; p++)
                {
                    var layer = layers[p];
                    float[] filters = (float[])lastUsed[layer.Weight].Clone();
                    for (int e = 0; p > 0 && e < filters.Length; e++)
                        if (!active[p - 1][e % layer.Columns % channels[p - 1]]) filters[e] = 0;
                    foreach (int c in ChexController.ColumnSubsetSelection(filters, channels[p], channels[p] - down[p]))
                        Assert.True(active[p][c], $"update at epoch {epoch}: layer {p} lost channel {c}, which column subset selection keeps");
                }

                // A regrown channel gets back every value it last had (and zero optimiser state).
                for (int p = 0; p + 1 < layers.Count; p++)
                {
                    for (int c = 0; c < channels[p]; c++)
                    {
                        if (activeBefore[p][c] || !active[p][c]) continue;
                        regrownChannels++;
                        foreach (var (q, e) in Owned(layers, norms, p, c))
                        {
                            bool rowAndColumnKept = q.Mask![e] != 0;
                            if (rowAndColumnKept) Assert.Equal(lastUsed[q][e], q.Value[e]);
                        }
                        if (norms[p] is { } n)
                        {
                            Assert.Equal(statistics[p]!.Value.Mean[c], n.RunningMean[c]);
                            Assert.Equal(statistics[p]!.Value.Variance[c], n.RunningVariance[c]);
                        }
                    }
                }
            }

            // Pruned channels own exactly zero everywhere, with zero optimiser state.
            for (int p = 0; p + 1 < layers.Count; p++)
                for (int c = 0; c < channels[p]; c++)
                    if (!active[p][c])
                        foreach (var (q, e) in Owned(layers, norms, p, c))
                        {
                            Assert.Equal(0f, q.Value[e]);
                            Assert.Equal(0f, run.StateOf(q, 0)[e]);
                        }
        }

        Assert.Equal(9, updates);
        Assert.True(regrownChannels > 0, "no channel was ever regrown");
        // After T_max the explored layers hold exactly S of their channels pruned.
        int final = Enumerable.Range(0, layers.Count - 1).Sum(p => run.Controller.Active[p].Count(a => !a));
        Assert.Equal(allocation == ChannelAllocation.Uniform ? channels[..^1].Sum(c => (int)Math.Round(s * c)) : (int)Math.Round(s * explored), final);
        Assert.True(run.Controller.MasksFinal(18 * StepsPerEpoch));
        Assert.False(run.Controller.MasksFinal(18 * StepsPerEpoch - 1));
    }

    [Fact]
    public void ColumnSubsetSelectionKeepsTheLeverageTopKAndFallsBackToL1()
    {
        // Columns f0 = f1 = e0 and f2 = e1: XᵀX has eigenvectors (1,1,0)/√2 (2), (0,0,1) (1), (1,−1,0)/√2 (0), so the
        // top-2 leverages are 0.5, 0.5, 1: keep f2 and one duplicate (the lower index), never both duplicates.
        var tall = Build([3], 1, Layers.Dense(3), Layers.Dense(2));
        var layer = PrunableLayer.From(tall)[0];
        float[] filters = [1, 0, 0, /**/ 1, 0, 0, /**/ 0, 1, 0];
        filters.CopyTo(layer.Weight.Value, 0);
        Assert.Equal([0, 2], ChexController.ColumnSubsetSelection(layer.Weight.Value, 3, 2));
        Assert.Equal([0], ChexController.ColumnSubsetSelection(layer.Weight.Value, 3, 1));   // the top singular direction is the duplicates'

        // More channels (4) than a filter has weights (2): the filters of largest L1 norm.
        var wide = Build([2], 1, Layers.Dense(4), Layers.Dense(2));
        var w = PrunableLayer.From(wide)[0];
        float[] rows = [0.1f, 0.1f, /**/ -2, 0, /**/ 0.5f, 0.6f, /**/ 0, 0.3f];
        rows.CopyTo(w.Weight.Value, 0);
        Assert.Equal([1, 2], ChexController.ColumnSubsetSelection(w.Weight.Value, 4, 2));
    }

    [Fact]
    public void OrthogonalityIsTheDistanceFromTheKeptSpanAndDrawsAreDistinct()
    {
        float[][] kept = [[1, 0, 0], [1, 0, 0]];   // dependent: the span is the first axis
        double[] scores = ChexRegrowth.Orthogonality(kept, [[3, 4, 0], [2, 0, 0], [0, 0, -2]]);
        Assert.Equal([4, 0, 2], scores.Select(x => Math.Round(x, 9)));
        Assert.Equal([5, 2, 2], ChexRegrowth.Orthogonality([], [[3, 4, 0], [2, 0, 0], [0, 0, -2]]));

        for (int seed = 0; seed < 50; seed++)
        {
            int[] drawn = ChexRegrowth.Draw([0, 0, 60, 0], 4, 3, new Random(seed));
            Assert.Equal(2, drawn[0]);                       // e^60 outweighs the rest
            Assert.Equal(3, drawn.Distinct().Count());
            Assert.Equal(4, ChexRegrowth.Draw(null, 4, 4, new Random(seed)).Distinct().Count());
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void AtAFlopsTargetRegrowthKeepsThePapersShareOfThePrunedChannels(int multiple)
    {
        // Half the multiply-adds with the default δ₀ = 3/7 of S. The global ranking meets the target at a channel
        // sparsity S′ of its own, and each update regrows the paper's share of its pruned channels: r_up = r_down·(1 − δ_t/S),
        // with δ_t/S = 3/7·(1 + cos(π·t/T_max))/2 whatever S is. With a channel multiple (5, which none of the layers' 8, 16
        // and 12 channels is), every count the allocation gives keeps whole multiples or all of a layer's channels.
        var network = Net();
        var layers = PrunableLayer.From(network);
        var norms = NormsOf(network, layers);
        int[] channels = [.. layers.Select(l => l.OutChannels)];
        var ranking = new ChexAllocation(channels, [.. layers.Select(l => l.Layer.MultiplyAdds)], [.. layers.Select(l => l.Index + 1 < layers.Count)], multiple);
        double full = ranking.MultiplyAdds(new int[layers.Count]);
        int explored = channels[..^1].Sum();
        var run = new Run(network, new ChexOptions { FlopsReduction = 0.5, UpdateEpochs = 2, ExplorationEnd = 0.75, ChannelMultiple = multiple });
        // Each channel's |γ| when it was last active (a channel pruned at the start: its initial γ).
        float[][] lastGamma = [.. norms.Select((n, p) => p + 1 < layers.Count ? n!.Gamma.Value.Select(MathF.Abs).ToArray() : [])];
        run.Controller.Start(StepsPerEpoch, (long)StepsPerEpoch * Epochs);

        int updates = 0, regrown = 0;
        for (long t = 0; t < StepsPerEpoch * Epochs; t++)
        {
            run.Train(t);
            for (int p = 0; p + 1 < layers.Count; p++)
                for (int c = 0; c < channels[p]; c++)
                    if (run.Controller.Active[p][c]) lastGamma[p][c] = MathF.Abs(norms[p]!.Gamma.Value[c]);
            run.Controller.AfterStep(t + 1);
            int epoch = (int)((t + 1) / StepsPerEpoch);
            if ((t + 1) % StepsPerEpoch != 0 || !(epoch == 18 || (epoch < 18 && epoch % 2 == 0))) continue;
            updates++;
            int[] pruned = [.. run.Controller.Active.Select((a, p) => p + 1 < layers.Count ? a.Count(x => !x) : 0)];
            int[] down = ranking.AtFlopsReduction(0.5, lastGamma, "FlopsReduction");
            double share = epoch == 18 ? 0 : 3.0 / 7 * (1 + Math.Cos(Math.PI * epoch / 18)) / 2;
            int[] up = share > 0 ? ranking.AtSparsity((double)down.Sum() / explored * (1 - share), lastGamma) : down;
            Assert.Equal(up, pruned);
            if (multiple == 1) Assert.Equal((int)Math.Round(down.Sum() * (1 - share)), pruned.Sum());
            for (int p = 0; p + 1 < layers.Count; p++)
            {
                int kept = channels[p] - pruned[p];
                Assert.True(kept > 0 && (kept % multiple == 0 || kept == channels[p]), $"update at epoch {epoch}: layer {p} keeps {kept} of {channels[p]} channels");
            }
            regrown += down.Sum() - pruned.Sum();
        }
        Assert.Equal(9, updates);
        Assert.True(regrown > 0, "no channel was ever regrown");
        // After T_max the masks meet the target.
        int[] final = [.. run.Controller.Active.Select((a, p) => p + 1 < layers.Count ? a.Count(x => !x) : 0)];
        Assert.True(ranking.MultiplyAdds(final) <= 0.5 * full, $"the final masks keep {ranking.MultiplyAdds(final) / full:P1} of the multiply-adds");
    }

    [Fact]
    public void AllocationsMeetTheirTargetsExactly()
    {
        // Three layers of 4, 4, 2 channels; the last is the output and never loses channels.
        var allocation = new ChexAllocation([4, 4, 2], [400, 1600, 80], [true, true, false]);
        float[][] gamma = [[0.9f, 0.1f, 0.5f, 0.05f], [0.2f, 0.01f, 0.02f, 0.03f], []];
        Assert.Equal([1, 3, 0], allocation.AtSparsity(0.5, gamma));          // the 4 smallest |γ|: 0.01, 0.02, 0.03 (layer 1), 0.05 (layer 0)
        // 6 of 8: layer 1's last channel is skipped (a layer never loses every channel), so layer 0 gives 3.
        Assert.Equal([3, 3, 0], allocation.AtSparsity(0.75, [[0.9f, 0.8f, 0.7f, 0.6f], [0.01f, 0.01f, 0.02f, 0.03f], []]));
        Assert.Equal([2, 2, 0], allocation.AtSparsity(0.5, null));

        // Multiply-adds: layer 1 costs 1600 at full width, scaled by its kept outputs and kept inputs (layer 0's channels).
        Assert.Equal(400 * 0.5 + 1600 * 0.5 * 0.25 + 80 * 0.25, allocation.MultiplyAdds([2, 3, 0]));
        foreach (var scores in new[] { gamma, null })
        {
            int[] pruned = allocation.AtFlopsReduction(0.5, scores, "FlopsReduction");
            double full = allocation.MultiplyAdds([0, 0, 0]);
            Assert.True(allocation.MultiplyAdds(pruned) <= 0.5 * full);
            Assert.All(pruned.Take(2), x => Assert.InRange(x, 0, 3));
        }
        // In multiples of 2 the ranking goes on until the rounded counts meet the target. At S = 0.5 (4 channels): the
        // 0.01, 0.02, 0.03 channels of layer 1 round to 2 pruned, 0.05 leaves layer 0 at 1 (rounded 0), and 0.1 makes it 2.
        var inTwos = new ChexAllocation([4, 4, 2], [400, 1600, 80], [true, true, false], multiple: 2);
        Assert.Equal([2, 2, 0], inTwos.AtSparsity(0.5, gamma));
        // Half of 2080 multiply-adds: one channel at a time [0, 3] would do (820), but rounded it is [0, 2] (1240) until
        // layer 0 loses two channels: [2, 2] costs 200 + 400 + 40 = 640.
        Assert.Equal([0, 3, 0], allocation.AtFlopsReduction(0.5, gamma, "FlopsReduction"));
        Assert.Equal([2, 2, 0], inTwos.AtFlopsReduction(0.5, gamma, "FlopsReduction"));
        Assert.Equal([0, 0, 0], inTwos.AtSparsity(0.25, null));   // one channel of 4 rounds to none
        Assert.Equal([2, 2, 0], inTwos.AtSparsity(0.5, null));
        // At least 2 channels each: 640 of 2080, so 69.2% is the most that can go.
        var pastTwos = Assert.Throws<ArgumentOutOfRangeException>(() => inTwos.AtFlopsReduction(0.7, gamma, "FlopsReduction"));
        Assert.Contains("ChannelMultiple = 2", pastTwos.Message);
        Assert.Contains((1 - 640.0 / 2080).ToString("P1", CultureInfo.CurrentCulture), pastTwos.Message);

        var tooMuch = Assert.Throws<ArgumentOutOfRangeException>(() => allocation.AtFlopsReduction(0.99, gamma, "FlopsReduction"));
        Assert.Equal("FlopsReduction", tooMuch.ParamName);
        Assert.Contains("every channel", tooMuch.Message);
    }

    [Fact]
    public void BadOptionsAndNetworksAreRefusedNamingTheOptionOrLayer()
    {
        Assert.Equal("ChannelSparsity", Assert.Throws<ArgumentOutOfRangeException>(() => new ChexOptions { ChannelSparsity = 1 }.Validate()).ParamName);
        Assert.Equal("FlopsReduction", Assert.Throws<ArgumentOutOfRangeException>(() => new ChexOptions { FlopsReduction = 0 }.Validate()).ParamName);
        Assert.Equal("InitialRegrowth", Assert.Throws<ArgumentOutOfRangeException>(() => new ChexOptions { ChannelSparsity = 0.3, InitialRegrowth = 0.3 }.Validate()).ParamName);
        Assert.Equal("UpdateEpochs", Assert.Throws<ArgumentOutOfRangeException>(() => new ChexOptions { UpdateEpochs = 0 }.Validate()).ParamName);
        Assert.Equal("ExplorationEnd", Assert.Throws<ArgumentOutOfRangeException>(() => new ChexOptions { ExplorationEnd = 1.5 }.Validate()).ParamName);
        Assert.Equal("ChannelMultiple", Assert.Throws<ArgumentOutOfRangeException>(() => new ChexOptions { ChannelMultiple = 0 }.Validate()).ParamName);

        var net = Net(batchNorm: false);
        var optimizer = new SgdOptimizerOptions().Create(net.Parameters, Pool);
        var noNorm = Assert.Throws<ArgumentException>(() => new ChexOptions().CreateController(net, optimizer, 1, null));
        Assert.Equal("Allocation", noNorm.ParamName);
        Assert.Contains("conv", noNorm.Message);   // names the first explored layer without a batch norm
        Assert.NotNull(new ChexOptions { Allocation = ChannelAllocation.Uniform }.CreateController(net, optimizer, 1, null));

        var unknown = Assert.Throws<ArgumentException>(() => new ChexOptions { ExcludedLayers = { "nope" } }.CreateController(Net(), optimizer, 1, null));
        Assert.Equal("ExcludedLayers", unknown.ParamName);

        // A network that already has masked weights (a model trained with a sparsity method, continued): a masked
        // channel would come back with zeros.
        var masked = Net();
        var second = PrunableLayer.From(masked)[1];
        second.Weight.Mask = Enumerable.Repeat(1f, second.Weight.Length).ToArray();
        second.Weight.Mask[7] = 0;
        var premasked = Assert.Throws<ArgumentException>(() => new ChexOptions().CreateController(masked, new SgdOptimizerOptions().Create(masked.Parameters, Pool), 1, null));
        Assert.Equal("network", premasked.ParamName);
        Assert.Contains($"'{second.Name}'", premasked.Message);
        second.Weight.Mask[7] = 1;   // a mask of ones masks nothing
        Assert.NotNull(new ChexOptions().CreateController(masked, new SgdOptimizerOptions().Create(masked.Parameters, Pool), 1, null));

        var flops = new ChexOptions { FlopsReduction = 0.999 }.CreateController(Net(), optimizer, 1, null);
        Assert.Equal("FlopsReduction", Assert.Throws<ArgumentOutOfRangeException>(() => flops.Start(5, 100)).ParamName);
        // In multiples of 8, the 8-, 16- and 12-channel layers can lose at most 0, 8 and 4 channels: 12 of 36, where
        // S = 0.9 asks for 32.
        var coarse = new ChexOptions { ChannelSparsity = 0.9, InitialRegrowth = 0.1, ChannelMultiple = 8 }.CreateController(Net(), optimizer, 1, null);
        var unreachable = Assert.Throws<ArgumentOutOfRangeException>(() => coarse.Start(5, 100));
        Assert.Equal("ChannelSparsity", unreachable.ParamName);
        Assert.Contains("ChannelMultiple = 8", unreachable.Message);
        Assert.Contains("at most 12 can go", unreachable.Message);
    }

    [FashionMnistFact]
    public void TrainsAChannelSparseCnnThatLearnsAndRecordsItself()
    {
        var ml = new MLContext(seed: 2);
        var train = TrainingData.FashionTrain.Take(3000).AsDataView();
        var test = TrainingData.FashionTest.Take(1000).AsDataView();
        var options = new NeuralNetworkMulticlassTrainer.Options
        {
            Layers = [Layers.Conv2d(16, 3, padding: 1, useBias: false), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2),
                      Layers.Conv2d(32, 3, padding: 1, useBias: false), Layers.BatchNorm(), Layers.ReLU(), Layers.MaxPool2d(2),
                      Layers.Flatten(), Layers.Dense(32), Layers.BatchNorm(), Layers.ReLU()],
            Epochs = 8,
            BatchSize = 32,
            Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
            LearningRateSchedule = LearningRateSchedule.Cosine(),
            Sparsity = ml.Sparsity().ChannelExploration(channelSparsity: 0.5),
        };
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        Assert.True(metrics.MicroAccuracy >= 0.78, $"micro accuracy {metrics.MicroAccuracy:F4} is below the floor 0.78.");

        // Half of the 80 explored channels are gone: their filters are exactly zero.
        var layers = PrunableLayer.From(model.Network);
        int zeroFilters = layers.Take(3).Sum(l => Enumerable.Range(0, l.OutChannels).Count(c => l.Weight.Value.AsSpan(c * l.Columns, l.Columns).IndexOfAnyExcept(0f) < 0));
        Assert.Equal(40, zeroFilters);
        Assert.StartsWith("CHEX to 0.5 channel sparsity: δ₀ = 3/7 of S, ΔT = auto", model.Options!["sparsity"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("CHEX", model.GetSparsityReport().Layers[0].Pattern, StringComparison.Ordinal);
        Assert.True(model.TrainingHistory.Sum(h => h.PruningEvents) >= 2);

        // A CHEX channel owns its bias, γ and β too, so every pruned channel leaves when compacted, even before the
        // padded second convolution, and the compact model predicts what the masked one does.
        var compact = ml.Sparsity().Compact(model);
        var active = layers.Take(3).Select(l => Enumerable.Range(0, l.OutChannels).Count(c => l.Weight.Value.AsSpan(c * l.Columns, l.Columns).IndexOfAnyExcept(0f) >= 0)).ToArray();
        Assert.Equal(active, PrunableLayer.From(compact.Network).Take(3).Select(l => l.OutChannels));
        var masked = TrainingData.Scores(model.Transform(test));
        var small = TrainingData.Scores(compact.Transform(test));
        for (int r = 0; r < masked.Length; r++)
            for (int k = 0; k < masked[r].Length; k++) Assert.Equal(masked[r][k], small[r][k], 1e-5f);
    }
}
