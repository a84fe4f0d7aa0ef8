using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Tests.Masks;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Inference;

/// <summary>
/// <see cref="WeightFormat.Auto"/>'s calibration with an injected timer (so the choice is deterministic), its cache,
/// its fallback to the fixed rule, and the format report. Its speed is measured by the harness, not here.
/// </summary>
public sealed class FormatCalibrationTests
{
    private static readonly Dictionary<string, WeightFormat> NoRequest = [];

    /// <summary>A timer that charges each format a fixed number of ticks per run at batch 1 and at larger batches, and records what it timed.</summary>
    private sealed class FakeTimer(Func<WeightFormat, int, long> ticksPerRun)
    {
        public List<(WeightFormat Format, int Batch, int Rows)> Timed { get; } = [];

        /// <summary>The threads each timed run was given, by batch size.</summary>
        public HashSet<(int Batch, int Threads)> Threads { get; } = [];

        public long Time(IWeightMatrix matrix, WorkerPool pool, float[] x, int batch, float[] y, int runs)
        {
            Assert.Equal(batch * matrix.Cols, x.Length);
            Assert.Equal(batch * matrix.Rows, y.Length);
            WeightFormat format = FormatOf(matrix);
            Timed.Add((format, batch, matrix.Rows));
            Threads.Add((batch, pool.ThreadCount));
            return ticksPerRun(format, batch) * runs;
        }

        public FormatCalibration Calibration(long ticksPerSecond = 1_000_000_000) => new(ticksPerSecond, Time);
    }

    private static WeightFormat FormatOf(IWeightMatrix matrix) => matrix switch
    {
        DenseMatrix => WeightFormat.Dense,
        CsrMatrix => WeightFormat.Csr,
        SlicedEllMatrix => WeightFormat.SlicedEll,
        NMMatrix => WeightFormat.NM,
        _ => throw new InvalidOperationException(matrix.GetType().Name),
    };

    /// <summary>Ticks per run: <paramref name="single"/> costs 1000 at batch 1, <paramref name="batched"/> 1000 at batch 64, everything else 3000.</summary>
    private static Func<WeightFormat, int, long> Fastest(WeightFormat single, WeightFormat batched) =>
        (format, batch) => format == (batch == 1 ? single : batched) ? 1000 : 3000;

    private static IReadOnlyList<LayerWeightFormat> Compile(SequentialNetwork network, FormatCalibration calibration, VectorIsa isa = VectorIsa.Avx512) =>
        WeightFormatRule.Compile(network, NoRequest, isa, calibration).Formats;

    [Theory]
    [InlineData(WeightFormat.SlicedEll, WeightFormat.Csr)]
    [InlineData(WeightFormat.Csr, WeightFormat.SlicedEll)]
    [InlineData(WeightFormat.Dense, WeightFormat.Dense)]
    [InlineData(WeightFormat.Dense, WeightFormat.Csr)]
    public void CalibrationPicksTheFastestFormatAtEachBatchSize(WeightFormat single, WeightFormat batched)
    {
        var timer = new FakeTimer(Fastest(single, batched));
        SequentialNetwork network = WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9).Network;

        var formats = Compile(network, timer.Calibration());

        Assert.All(formats, f => Assert.Equal((single, batched, FormatChoice.Calibrated), (f.SingleExample, f.Batched, f.ChosenBy)));
        Assert.All(formats, f => Assert.DoesNotContain("calibration", f.Note)); // only scalar fallbacks may be noted
        // Unstructured weights: dense, CSR and sliced ELLPACK are the candidates, each timed at both batch sizes.
        var timed = timer.Timed.Where(t => t.Rows == 300).ToList();
        Assert.Equal([WeightFormat.Dense, WeightFormat.Csr, WeightFormat.SlicedEll], timed.Select(t => t.Format).Distinct().Order());
        Assert.Equal([1, FormatCalibration.SmallBatchRows, FormatCalibration.BatchedRows], timed.Select(t => t.Batch).Distinct().Order());
        // Every candidate gets the same number of timed blocks per batch size (one to warm, one to size, then one per round).
        Assert.All(timed.GroupBy(t => (t.Format, t.Batch)), g => Assert.Equal(2 + FormatCalibration.Rounds, g.Count()));
    }

    [Fact]
    public void AFarSlowerCandidateLeavesAfterWarmingAndSizing()
    {
        // Sliced ELLPACK 10× slower than dense (as a scalar fallback is): warmed and sized, no rounds, never chosen.
        var timer = new FakeTimer((format, _) => format switch { WeightFormat.Dense => 1000, WeightFormat.Csr => 2000, _ => 10_000 });
        var formats = Compile(WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9).Network, timer.Calibration());
        Assert.All(formats, f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        var slow = timer.Timed.Where(t => t.Rows == 300 && t.Format == WeightFormat.SlicedEll).ToList();
        Assert.Equal(2, slow.Count(t => t.Batch == 1));
        Assert.Equal(2, slow.Count(t => t.Batch == FormatCalibration.SmallBatchRows));
        Assert.Equal(2, slow.Count(t => t.Batch == FormatCalibration.BatchedRows));
        Assert.Equal(2 + FormatCalibration.Rounds, timer.Timed.Count(t => t.Rows == 300 && t.Format == WeightFormat.Csr && t.Batch == 1));
    }

    [Fact]
    public void ACandidateThatFallsFarBehindInTheRoundsLeavesThem()
    {
        // Sliced ELLPACK sizes as fast as dense, then runs 10× slower: one round, then no more.
        var ellCalls = new Dictionary<int, int> { [1] = 0, [FormatCalibration.SmallBatchRows] = 0, [FormatCalibration.BatchedRows] = 0 };
        var timer = new FakeTimer((format, batch) => format switch
        {
            WeightFormat.Dense => 1000,
            WeightFormat.Csr => 2000,
            _ => ++ellCalls[batch] <= 2 ? 1000 : 10_000, // the first layer's warm-up and sizing runs are fast
        });
        var formats = Compile(WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9).Network, timer.Calibration());
        Assert.All(formats, f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), (f.SingleExample, f.Batched)));
        Assert.Equal(3, timer.Timed.Count(t => t.Rows == 300 && t.Format == WeightFormat.SlicedEll && t.Batch == 1));
    }

    [Fact]
    public void ASparseFormatIsNotTimedForANearlyDenseWeight()
    {
        // At 80% density no sparse kernel can win (it does most of the dense multiply-adds plus index work): dense, untimed.
        var timer = new FakeTimer(Fastest(WeightFormat.Csr, WeightFormat.Csr));
        var formats = Compile(WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.2).Network, timer.Calibration());
        Assert.All(formats, f => Assert.Equal((WeightFormat.Dense, WeightFormat.Dense, FormatChoice.Calibrated), (f.SingleExample, f.Batched, f.ChosenBy)));
        Assert.Empty(timer.Timed);
    }

    [Fact]
    public void NMWeightsAlsoTimeTheNMFormat()
    {
        var timer = new FakeTimer(Fastest(WeightFormat.NM, WeightFormat.NM));
        var formats = Compile(WeightFormatTests.LeNetModel(SparsityPattern.NM(2, 4)).Network, timer.Calibration());
        Assert.All(formats, f => Assert.Equal((WeightFormat.NM, WeightFormat.NM, "2:4"), (f.SingleExample, f.Batched, f.Pattern)));
        Assert.Contains(timer.Timed, t => t.Format == WeightFormat.NM);

        // An unstructured weight never has N:M timed: it cannot take it.
        var unstructured = new FakeTimer(Fastest(WeightFormat.NM, WeightFormat.NM));
        Compile(WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.5).Network, unstructured.Calibration());
        Assert.DoesNotContain(unstructured.Timed, t => t.Format == WeightFormat.NM);
    }

    [Fact]
    public void ConvolutionsAreTimedAtTheBatchedSizeOnly()
    {
        var timer = new FakeTimer(Fastest(WeightFormat.SlicedEll, WeightFormat.Csr));
        var formats = Compile(WeightFormatTests.ConvModel(SparsityPattern.Unstructured).Network, timer.Calibration());
        LayerWeightFormat conv = formats.Single(f => f.LayerName == "conv1");
        Assert.Equal((WeightFormat.Csr, WeightFormat.Csr), (conv.SingleExample, conv.Batched));
        int convRows = WeightFormatTests.ConvModel(SparsityPattern.Unstructured).Network.Layers.OfType<Conv2dLayer>().Single(l => l.Name == "conv1").OutChannels;
        Assert.All(timer.Timed.Where(t => t.Rows == convRows), t => Assert.Equal(FormatCalibration.BatchedRows, t.Batch));
    }

    [Fact]
    public void TheSameWeightSignatureIsMeasuredOnce()
    {
        var timer = new FakeTimer(Fastest(WeightFormat.SlicedEll, WeightFormat.Csr));
        FormatCalibration calibration = timer.Calibration();
        Compile(WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9, seed: 1).Network, calibration);
        int first = timer.Timed.Count;
        Assert.True(first > 0);

        // Another LeNet of the same shapes and sparsity (other weights, other mask): the cache answers.
        var again = Compile(WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9, seed: 7).Network, calibration);
        Assert.Equal(first, timer.Timed.Count);
        Assert.All(again, f => Assert.Equal((WeightFormat.SlicedEll, WeightFormat.Csr, FormatChoice.Calibrated), (f.SingleExample, f.Batched, f.ChosenBy)));

        // Another density is another signature.
        Compile(WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.5).Network, calibration);
        Assert.True(timer.Timed.Count > first);
    }

    [Fact]
    public void ACalibrationThatCannotMeasureFallsBackToTheFixedRuleAndSaysSo()
    {
        SequentialNetwork network = WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9).Network;
        var fixedRule = WeightFormatRule.Compile(network, new Dictionary<string, WeightFormat> { ["*"] = WeightFormat.FixedRule }, VectorIsa.Avx2).Formats;

        // A timer ticking every millisecond: nothing is timed.
        var coarse = new FakeTimer(Fastest(WeightFormat.SlicedEll, WeightFormat.SlicedEll));
        var formats = Compile(network, coarse.Calibration(ticksPerSecond: 1000), VectorIsa.Avx2);
        Assert.Empty(coarse.Timed);
        AssertFixedRuleWithNote(fixedRule, formats, "the timer ticks every 1000 µs, too coarse");

        // A timer that reads zero.
        var zero = new FakeTimer((_, _) => 0);
        AssertFixedRuleWithNote(fixedRule, Compile(network, zero.Calibration(), VectorIsa.Avx2), "read zero ticks");

        // A timer that goes backwards.
        var backwards = new FakeTimer((_, _) => -5);
        AssertFixedRuleWithNote(fixedRule, Compile(network, backwards.Calibration(), VectorIsa.Avx2), "the timer went backwards");
    }

    private static void AssertFixedRuleWithNote(IReadOnlyList<LayerWeightFormat> fixedRule, IReadOnlyList<LayerWeightFormat> formats, string reason)
    {
        Assert.Equal(fixedRule.Select(f => (f.SingleExample, f.Batched)), formats.Select(f => (f.SingleExample, f.Batched)));
        Assert.All(formats, f => Assert.Equal(FormatChoice.FixedRule, f.ChosenBy));
        Assert.All(formats, f => Assert.StartsWith("The calibration could not measure (", f.Note));
        Assert.All(formats, f => Assert.Contains(reason, f.Note));
        Assert.All(formats, f => Assert.Contains("the fixed rule chose.", f.Note));
    }

    public static TheoryData<WeightFormat> ForcedFormats() => [WeightFormat.Dense, WeightFormat.Csr, WeightFormat.SlicedEll, WeightFormat.NM];

    [Theory]
    [MemberData(nameof(ForcedFormats))]
    public void ForcedFormatsAreHonouredAndTheReportNamesTheirKernelsTier(WeightFormat format)
    {
        var model = WeightFormatTests.LeNetModel(SparsityPattern.NM(2, 4)).WithWeightFormats(format);
        foreach (LayerWeightFormat f in model.WeightFormats)
        {
            Assert.Equal((format, format, FormatChoice.Requested), (f.SingleExample, f.Batched, f.ChosenBy));
            // The kernel this process runs for the format, as the matrix itself reports it.
            VectorIsa isa = model.PredictionNetwork(SparsityTestNetworks.Pool).Layers.OfType<DenseLayer>().Single(l => l.Name == f.LayerName).InferenceWeight!.KernelIsa;
            Assert.Equal(VectorIsas.Describe(isa), f.SingleExampleKernel);
            Assert.Equal(f.SingleExampleKernel, f.BatchedKernel);
            if (isa == VectorIsa.Scalar && VectorIsas.Best > VectorIsa.Scalar)
                Assert.Equal($"{format} runs a scalar fallback on this CPU ({VectorIsas.Describe(VectorIsas.Best)}).", f.Note);
            else
                Assert.Equal("", f.Note);
        }
    }

    [Fact]
    public void ADenseLayersBatchedFormatsAreTimedOnOneThreadAsBatchesAreScored()
    {
        // Batches are scored in chunks, each on one thread: timing them on the pool favoured formats that split rows
        // over threads (LeNet at 90% then scored batches 2.3× slower). Single examples run on the model's pool.
        using var pool = new WorkerPool(2);
        var timer = new FakeTimer(Fastest(WeightFormat.SlicedEll, WeightFormat.Csr));
        SequentialNetwork network = WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9).Network.Clone(pool);
        Compile(network, timer.Calibration());
        Assert.Equal(new[] { (1, 2), (FormatCalibration.SmallBatchRows, 1), (FormatCalibration.BatchedRows, 1) }, timer.Threads.Order().ToArray());
    }

    [Theory]
    [InlineData(3000, 7500, WeightFormat.Dense)] // CSR 6% ahead at 64 rows, 3× behind at 8: 10,500 against dense's 9,000
    [InlineData(1500, 7000, WeightFormat.Csr)] // 12% ahead at 64, 1.5× behind at 8: 8,500 against 9,000
    public void TheBatchedFormatScoresAChunkOfEachSizeInTheLeastTime(long csrAtSmall, long csrAtLarge, WeightFormat expected)
    {
        // Dense takes 1,000 ticks a run at 8 rows and 8,000 at 64; sliced ELLPACK is far behind at both.
        var timer = new FakeTimer((format, batch) => (format, batch) switch
        {
            (WeightFormat.Dense, FormatCalibration.BatchedRows) => 8000,
            (WeightFormat.Dense, _) => 1000,
            (WeightFormat.Csr, FormatCalibration.BatchedRows) => csrAtLarge,
            (WeightFormat.Csr, FormatCalibration.SmallBatchRows) => csrAtSmall,
            _ => 7000,
        });
        var formats = Compile(WeightFormatTests.LeNetModel(SparsityPattern.Unstructured, 0.9).Network, timer.Calibration());
        Assert.All(formats, f => Assert.Equal((WeightFormat.Dense, expected, FormatChoice.Calibrated), (f.SingleExample, f.Batched, f.ChosenBy)));
    }

    [Fact]
    public void AConvolutionTheDirectKernelServesGoesByTheFixedRule()
    {
        // The calibration times the dense GEMM, not the direct kernel (fused with the ReLU and pooling) that serves the
        // dense convolution, so it would compare the sparse formats with the wrong dense time.
        if (!DirectConvolution.Supports(VectorIsas.Best, 9, 16))
            return; // no vector unit: no direct kernel
        SequentialNetwork network = SparsityTestNetworks.Build([8, 8, 1], 3, Layers.Conv2d(16, 3, padding: 1), Layers.ReLU(), Layers.Flatten(), Layers.Dense(10));
        SparsityTestNetworks.PruneNow(network, new PruningOptions { Pattern = SparsityPattern.Unstructured, TargetSparsity = 0.5 });
        var timer = new FakeTimer(Fastest(WeightFormat.Csr, WeightFormat.Csr));
        LayerWeightFormat conv = Compile(network, timer.Calibration()).Single(f => f.LayerName == "conv0");
        Assert.Equal(FormatChoice.FixedRule, conv.ChosenBy);
        Assert.Contains("direct convolution", conv.Note, StringComparison.Ordinal);
        Assert.Equal((WeightFormat.Dense, WeightFormat.Dense), (conv.SingleExample, conv.Batched)); // density 0.5: dense by the rule
        Assert.DoesNotContain(timer.Timed, t => t.Rows == 16); // the convolution was not timed
    }
}
