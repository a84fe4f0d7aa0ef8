using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Tests.Masks;
using Microsoft.ML.Sparsity.Tests.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Inference;

/// <summary>The trained model's per-layer prediction formats: the rule, forcing, results, model files.</summary>
public sealed class WeightFormatTests
{
    /// <summary>The formats every weight can take.</summary>
    private static readonly WeightFormat[] Forced = [WeightFormat.Dense, WeightFormat.Csr, WeightFormat.SlicedEll];

    /// <summary>LeNet-300-100 (784-300-100-10) pruned once with the given pattern, as a model.</summary>
    internal static NeuralNetworkMulticlassModel LeNetModel(SparsityPattern? pattern, double sparsity = 0.9, int seed = 1)
    {
        SequentialNetwork network = SparsityTestNetworks.LeNet(seed);
        if (pattern is not null)
            SparsityTestNetworks.PruneNow(network, new PruningOptions { Pattern = pattern, TargetSparsity = sparsity, LeaveMisfitLayersDense = true });
        return new NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
    }

    internal static NeuralNetworkMulticlassModel ConvModel(SparsityPattern pattern)
    {
        SequentialNetwork network = SparsityTestNetworks.SmallConv();
        SparsityTestNetworks.PruneNow(network, new PruningOptions { Pattern = pattern, TargetSparsity = 0.9, LeaveMisfitLayersDense = true });
        return new NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
    }

    /// <summary>The formats <see cref="WeightFormat.FixedRule"/> gives LeNet pruned so, by the rule of <paramref name="isa"/>.</summary>
    private static IReadOnlyList<LayerWeightFormat> Fixed(SparsityPattern? pattern, double sparsity, VectorIsa isa) =>
        WeightFormatRule.Compile(LeNetModel(pattern, sparsity).Network, new Dictionary<string, WeightFormat> { ["*"] = WeightFormat.FixedRule }, isa).Formats;

    [Fact]
    public void TheAvx512FixedRulePicksFormatsByPatternAndDensity()
    {
        var dense = Fixed(null, 0, VectorIsa.Avx512);
        Assert.All(dense, f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense, "dense"), (f.SingleExample, f.Batched, f.Pattern)));
        Assert.All(dense, f => Assert.Equal(1.0, f.Density));
        Assert.All(dense, f => Assert.Equal(FormatChoice.FixedRule, f.ChosenBy));

        var unstructured = Fixed(SparsityPattern.Unstructured, 0.9, VectorIsa.Avx512);
        Assert.All(unstructured, f => Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Csr, "unstructured"), (f.SingleExample, f.Batched, f.Pattern)));
        Assert.All(unstructured, f => Assert.Equal(0.1, f.Density, 3));

        var moderate = Fixed(SparsityPattern.Unstructured, 0.72, VectorIsa.Avx512); // density 0.28: sliced ELL alone, batches dense
        Assert.All(moderate, f => Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        var half = Fixed(SparsityPattern.Unstructured, 0.5, VectorIsa.Avx512); // density 0.5: sliced ELL still wins alone
        Assert.All(half, f => Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        var most = Fixed(SparsityPattern.Unstructured, 0.3, VectorIsa.Avx512); // density 0.7: dense is faster
        Assert.All(most, f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), (f.SingleExample, f.Batched)));

        // 97% unstructured fits 2:8 or so, but N:M would store mostly zeros: it stays unstructured.
        var veryFew = Fixed(SparsityPattern.Unstructured, 0.97, VectorIsa.Avx512);
        Assert.All(veryFew, f => Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Csr, "unstructured"), (f.SingleExample, f.Batched, f.Pattern)));

        // 2:4 serves batches from the dense weight (the packed GEMM is faster there); 1:4 and sparser from N:M.
        var twoOfFour = Fixed(SparsityPattern.NM(2, 4), 0.9, VectorIsa.Avx512);
        Assert.All(twoOfFour, f => Assert.Equal((WeightFormat.NM, WeightFormat.Dense, "2:4"), (f.SingleExample, f.Batched, f.Pattern)));
        var oneOfEight = Fixed(SparsityPattern.NM(1, 8), 0.9, VectorIsa.Avx512)[0];
        Assert.Equal((WeightFormat.NM, WeightFormat.NM, "1:8"), (oneOfEight.SingleExample, oneOfEight.Batched, oneOfEight.Pattern));
    }

    [Theory]
    [InlineData(nameof(VectorIsa.Avx2))]
    [InlineData(nameof(VectorIsa.Vector128))]
    public void OnAvx2AndVector128TheFixedRuleServesSingleExamplesFromSlicedEllAndNM(string tier)
    {
        VectorIsa isa = Enum.Parse<VectorIsa>(tier);
        // Both tiers have sliced-ELLPACK and N:M kernels of their own since issue 15.
        Assert.All(Fixed(null, 0, isa), f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.Unstructured, 0.95, isa), f => Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Csr), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.Unstructured, 0.8, isa), f => Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Csr), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.Unstructured, 0.5, isa), f => Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.Unstructured, 0.3, isa), f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.NM(2, 4), 0.9, isa), f => Assert.Equal((WeightFormat.NM, WeightFormat.Dense, "2:4"), (f.SingleExample, f.Batched, f.Pattern)));
        LayerWeightFormat oneOfEight = Fixed(SparsityPattern.NM(1, 8), 0.9, isa)[0];
        Assert.Equal((WeightFormat.NM, WeightFormat.NM, "1:8"), (oneOfEight.SingleExample, oneOfEight.Batched, oneOfEight.Pattern));
    }

    [Fact]
    public void WithoutVectorsTheFixedRuleServesByDensityFromCsrOrDense()
    {
        // Plain loops everywhere: the format with the fewest stored values wins once the weight is sparse enough.
        Assert.All(Fixed(null, 0, VectorIsa.Scalar), f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.Unstructured, 0.95, VectorIsa.Scalar), f => Assert.Equal((WeightFormat.Csr, WeightFormat.Csr), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.Unstructured, 0.8, VectorIsa.Scalar), f => Assert.Equal((WeightFormat.Dense, WeightFormat.Csr), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.Unstructured, 0.5, VectorIsa.Scalar), f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        Assert.All(Fixed(SparsityPattern.NM(2, 4), 0.9, VectorIsa.Scalar), f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense, "2:4"), (f.SingleExample, f.Batched, f.Pattern)));
        LayerWeightFormat oneOfEight = Fixed(SparsityPattern.NM(1, 8), 0.9, VectorIsa.Scalar)[0]; // density 1/8
        Assert.Equal((WeightFormat.Dense, WeightFormat.Csr, "1:8"), (oneOfEight.SingleExample, oneOfEight.Batched, oneOfEight.Pattern));
    }

    [Fact]
    public void FixedRuleThresholdsArePerTierParameters()
    {
        // A rule is its thresholds: the harness's measurements become parameters, testable on any machine.
        var rule = new FixedFormatRule(SlicedEllSingleDensity: 0.2, CsrSingleDensity: 0.4, CsrBatchedDensity: 0.3, NMSingle: false, NMBatchedMaxRatio: 0);
        Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Csr), rule.Choose(0.2, 0, 0));
        Assert.Equal((WeightFormat.Csr, WeightFormat.Csr), rule.Choose(0.3, 0, 0));
        Assert.Equal((WeightFormat.Csr, WeightFormat.Dense), rule.Choose(0.4, 0, 0));
        Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), rule.Choose(0.41, 0, 0));
        Assert.Equal((WeightFormat.Csr, WeightFormat.Dense), rule.Choose(0.375, 3, 8)); // N:M without N:M kernels: by density
        // Zero thresholds never pick their format, not even for an all-zero weight.
        Assert.Equal((WeightFormat.Csr, WeightFormat.Csr), FixedFormatRule.Scalar.Choose(0, 0, 0));
        Assert.Equal((WeightFormat.NM, WeightFormat.NM), FixedFormatRule.Avx512.Choose(0.25, 1, 4));
        Assert.Equal((WeightFormat.NM, WeightFormat.Dense), FixedFormatRule.Avx512.Choose(0.375, 3, 8));
        Assert.Same(FixedFormatRule.Avx512, FixedFormatRule.For(VectorIsa.Avx512));
        Assert.Same(FixedFormatRule.Avx2, FixedFormatRule.For(VectorIsa.Avx2));
        Assert.Same(FixedFormatRule.Vector128, FixedFormatRule.For(VectorIsa.Vector128));
        Assert.Same(FixedFormatRule.Scalar, FixedFormatRule.For(VectorIsa.Scalar));
    }

    public static TheoryData<string> Models() => ["lenet dense", "lenet 90%", "lenet 2:4", "lenet 1:8", "lenet ragged 1:8", "conv 90%", "conv 2:4", "ragged 2:4"];

    /// <summary>
    /// 2:4 on layers whose group axis 4 does not divide: convolutions with 5 and 6 input channels (9 runs per filter),
    /// dense layers with 80 and 21 inputs; each run's last group is ragged.
    /// </summary>
    internal static NeuralNetworkMulticlassModel RaggedModel(int n, int m)
    {
        SequentialNetwork network = SparsityTestNetworks.Build([6, 6, 5], 2, Layers.Conv2d(6, 3, padding: 1), Layers.ReLU(), Layers.Conv2d(5, 3),
            Layers.Flatten(), Layers.Dense(21), Layers.ReLU(), Layers.Dense(10));
        SparsityTestNetworks.PruneNow(network, new PruningOptions { Pattern = SparsityPattern.NM(n, m) });
        return new NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
    }

    /// <summary>LeNet pruned 1:8 on every layer: 300 and 100 inputs end in ragged groups of 4.</summary>
    internal static NeuralNetworkMulticlassModel RaggedLeNet()
    {
        SequentialNetwork network = SparsityTestNetworks.LeNet(1);
        SparsityTestNetworks.PruneNow(network, new PruningOptions { Pattern = SparsityPattern.NM(1, 8) });
        return new NeuralNetworkMulticlassModel(network, 10, null, "Features", []);
    }

    private static NeuralNetworkMulticlassModel Model(string name) => name switch
    {
        "lenet dense" => LeNetModel(null),
        "lenet 90%" => LeNetModel(SparsityPattern.Unstructured, 0.9),
        "lenet 2:4" => LeNetModel(SparsityPattern.NM(2, 4)),
        "lenet 1:8" => LeNetModel(SparsityPattern.NM(1, 8)),
        "lenet ragged 1:8" => RaggedLeNet(),
        "conv 90%" => ConvModel(SparsityPattern.Unstructured),
        "ragged 2:4" => RaggedModel(2, 4),
        _ => ConvModel(SparsityPattern.NM(2, 4)),
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void EveryFormatGivesTheDenseMaskedResults(string name)
    {
        NeuralNetworkMulticlassModel model = Model(name);
        int features = model.InputShape.Aggregate(1, (a, d) => a * d);
        var data = TrainingData.Blobs(37, features, classes: 10, seed: 4).Reshape([.. model.InputShape]);
        float[] reference = Scores(model.WithWeightFormats(WeightFormat.Dense), data);

        var formatted = Forced.Append(WeightFormat.Auto).Append(WeightFormat.FixedRule).Select(f => (f.ToString(), model.WithWeightFormats(f))).ToList();
        // N:M on the layers that are N:M sparse (LeNet's 300-input layer stays dense under 1:8 with LeaveMisfitLayersDense).
        var nm = model.WeightFormats.Where(f => f.Pattern.Contains(':')).ToDictionary(f => f.LayerName, _ => WeightFormat.NM);
        if (nm.Count > 0)
            formatted.Add(("NM", model.WithWeightFormats(nm)));
        foreach ((string format, NeuralNetworkMulticlassModel formattedModel) in formatted)
        {
            float[] batched = Scores(formattedModel, data);
            AssertClose(reference, batched, $"{name} {format} batches");

            // One example at a time takes the single-example formats.
            float[] single = new float[10];
            for (int row = 0; row < data.Count; row += 6)
            {
                formattedModel.Predict(data.GetFeatures(row), single);
                AssertClose(reference.AsSpan(row * 10, 10).ToArray(), single, $"{name} {format} row {row}");
            }
        }
    }

    [Fact]
    public void RaggedNMLayersAreDetectedForcedAndChosenByTheFixedRule()
    {
        // Every layer of the ragged model is 2:4 with ragged last groups: the report says so, forcing N:M builds it.
        NeuralNetworkMulticlassModel ragged = RaggedModel(2, 4).WithWeightFormats(WeightFormat.NM);
        Assert.All(ragged.WeightFormats, f => Assert.Equal((WeightFormat.NM, WeightFormat.NM, "2:4"), (f.SingleExample, f.Batched, f.Pattern)));
        var matrices = ragged.PredictionNetwork(SparsityTestNetworks.Pool).Layers.Select(l => l switch
        {
            DenseLayer d => d.InferenceWeight,
            Conv2dLayer c => c.InferenceWeight,
            _ => null,
        }).OfType<NMMatrix>().ToList();
        Assert.Equal([5, 6, 80, 21], matrices.Select(w => w.Run));
        Assert.Equal([9 * 2 * 2, 9 * 2 * 2, 20 * 2, 6 * 2], matrices.Select(w => w.KeptPerRow));

        // LeNet at 1:8 on every layer: the AVX-512 fixed rule serves all three N:M, the ragged 300- and 100-input layers included.
        var formats = WeightFormatRule.Compile(RaggedLeNet().Network, new Dictionary<string, WeightFormat> { ["*"] = WeightFormat.FixedRule }, VectorIsa.Avx512).Formats;
        Assert.All(formats, f => Assert.Equal((WeightFormat.NM, WeightFormat.NM, "1:8"), (f.SingleExample, f.Batched, f.Pattern)));
        Assert.Equal(38.0 / 300, formats[1].Density, 12);
    }

    [Fact]
    public void ConvolutionsTakeTheirBatchedFormatOnly()
    {
        // A convolution multiplies one row per pixel, never a single row: at 2:4 its batched format (dense) serves
        // it through the layer's own dense path (no prediction matrix), while the dense layer serves single examples N:M.
        NeuralNetworkMulticlassModel model = ConvModel(SparsityPattern.NM(2, 4)).WithWeightFormats(WeightFormat.FixedRule);
        LayerWeightFormat conv = model.WeightFormats.Single(f => f.LayerName == "conv1");
        Assert.Equal((WeightFormat.Dense, WeightFormat.Dense, "2:4"), (conv.SingleExample, conv.Batched, conv.Pattern));
        Assert.Null(model.PredictionNetwork(SparsityTestNetworks.Pool).Layers.OfType<Conv2dLayer>().Single(l => l.Name == "conv1").InferenceWeight);
        Assert.Equal(VectorIsas.Best >= VectorIsa.Vector128 ? WeightFormat.NM : WeightFormat.Dense, model.WeightFormats.Single(f => f.LayerName == "dense0").SingleExample);
    }

    [Fact]
    public void SavingRefusesAMaskedValueThatIsNotZeroAndDenseModelsStayFormatOne()
    {
        NeuralNetworkMulticlassModel sparse = LeNetModel(SparsityPattern.Unstructured, 0.9);
        Parameter weight = sparse.Network.Parameters[0];
        int pruned = Array.IndexOf(weight.Mask!, 0f);
        weight.Value[pruned] = 0.5f;
        var e = Assert.Throws<InvalidOperationException>(() => ModelFile.Save(sparse, new MemoryStream()));
        Assert.Contains($"'dense0.weight' value {pruned} is 0.5 where its mask prunes it", e.Message);

        var stream = new MemoryStream();
        ModelFile.Save(LeNetModel(null), stream);
        using var zip = new System.IO.Compression.ZipArchive(new MemoryStream(stream.ToArray()));
        using var manifest = zip.GetEntry("manifest.json")!.Open();
        Assert.Equal(1, System.Text.Json.JsonDocument.Parse(manifest).RootElement.GetProperty("formatVersion").GetInt32());
    }

    [Fact]
    public void AModelLeavesTheNetworkItWrapsUntouched()
    {
        // Training code may wrap a network it is still training (checkpoints do): prediction formats must not reach it.
        SequentialNetwork network = SparsityTestNetworks.LeNet();
        SparsityTestNetworks.PruneNow(network, new PruningOptions { TargetSparsity = 0.9 });
        var model = new NeuralNetworkMulticlassModel(network, 10, null, "Features", []);

        Assert.All(network.Layers.OfType<DenseLayer>(), d => Assert.Null(d.InferenceWeight));
        Assert.All(model.PredictionNetwork(SparsityTestNetworks.Pool).Layers.OfType<DenseLayer>(), d => Assert.NotNull(d.InferenceWeight));
    }

    [Fact]
    public void ForcingAFormatALayerCannotTakeNamesTheLayer()
    {
        // Half sparse: some group of 4 (and of 8) consecutive inputs keeps all its weights.
        NeuralNetworkMulticlassModel unstructured = LeNetModel(SparsityPattern.Unstructured, 0.5);
        var e = Assert.Throws<ArgumentException>(() => unstructured.WithWeightFormats(WeightFormat.NM));
        Assert.Contains("Layer 'dense0' cannot take the N:M format", e.Message);

        NeuralNetworkMulticlassModel twoOfFour = LeNetModel(SparsityPattern.NM(2, 4));
        var perLayer = twoOfFour.WithWeightFormats(new Dictionary<string, WeightFormat> { ["dense1"] = WeightFormat.Csr, ["*"] = WeightFormat.NM });
        Assert.Equal([WeightFormat.NM, WeightFormat.Csr, WeightFormat.NM], perLayer.WeightFormats.Select(f => f.SingleExample));

        var unknown = Assert.Throws<ArgumentException>(() => twoOfFour.WithWeightFormats(new Dictionary<string, WeightFormat> { ["dense7"] = WeightFormat.Csr }));
        Assert.Contains("no dense or convolution layer 'dense7'", unknown.Message);
        Assert.Contains("dense0, dense1, output", unknown.Message);
    }

    [Fact]
    public void ModelFilesKeepFormatsAndStoreMaskedWeightsCompactly()
    {
        NeuralNetworkMulticlassModel dense = LeNetModel(null), sparse = LeNetModel(SparsityPattern.Unstructured, 0.9);
        NeuralNetworkMulticlassModel forced = sparse.WithWeightFormats(new Dictionary<string, WeightFormat> { ["dense1"] = WeightFormat.Csr });
        long denseBytes = Saved(dense).Length;
        byte[] file = Saved(forced);

        // 10% of the values plus a bit each per weight: the bound is 0.2 of the dense file.
        Assert.InRange((double)file.Length / denseBytes, 0.1, 0.2);
        var loaded = (NeuralNetworkMulticlassModel)ModelFile.Load(new MemoryStream(file), SparsityTestNetworks.Pool);
        Assert.Equal(forced.WeightFormats, loaded.WeightFormats);
        Assert.Equal(WeightFormat.Csr, loaded.WeightFormats[1].SingleExample);
        var data = TrainingData.Blobs(20, 784, classes: 10, seed: 2);
        Assert.Equal(Scores(forced, data), Scores(loaded, data));
    }

    private static byte[] Saved(NeuralNetworkMulticlassModel model)
    {
        var stream = new MemoryStream();
        ModelFile.Save(model, stream);
        return stream.ToArray();
    }

    private static float[] Scores(NeuralNetworkMulticlassModel model, Microsoft.ML.Sparsity.Data.Dataset data) =>
        ScoredRows.Transform(model, data, model.ClassCount).Scores;

    private static void AssertClose(float[] expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f, $"{what}: [{i}] {actual[i]} vs {expected[i]}");
    }
}
