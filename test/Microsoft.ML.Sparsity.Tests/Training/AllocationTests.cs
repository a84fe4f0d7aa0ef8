using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Microsoft.ML.Sparsity.FrequencyDomain;
using Xunit;
using Xunit.Abstractions;

namespace Microsoft.ML.Sparsity.Tests.Training;

/// <summary>Tests that measure process-wide allocation run alone (after the parallel tests).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationCollection
{
    public const string Name = "Allocation (not parallel)";
}

[Collection(AllocationCollection.Name)]
public sealed class AllocationTests(ITestOutputHelper output)
{
    private const int Batch = 32;
    private const int MeasuredSteps = 50;
    private const double BudgetPerBatch = 1024;

    private static LayerDefinition[] Network() =>
    [
        Layers.Conv2d(4, 3, padding: 1), Layers.ReLU(), Layers.MaxPool2d(2), Layers.Conv2d(6, 3), Layers.BatchNorm(),
        Layers.Activation(ActivationKind.LeakyReLU), Layers.AvgPool2d(2), Layers.Flatten(), Layers.Dense(32), Layers.Activation(ActivationKind.Tanh),
        Layers.Dropout(0.2f), Layers.Dense(10),
    ];

    private static (long Thread, long Total) Allocated() => (GC.GetAllocatedBytesForCurrentThread(), GC.GetTotalAllocatedBytes(precise: true));

    private void AssertBudget(string what, (long Thread, long Total) before, (long Thread, long Total) after, int batches)
    {
        double thread = (double)(after.Thread - before.Thread) / batches, total = (double)(after.Total - before.Total) / batches;
        output.WriteLine($"{what}: {thread:F1} B/batch on the calling thread, {total:F1} B/batch process-wide");
        Assert.True(thread < BudgetPerBatch, $"{what}: {thread:F0} bytes per batch allocated on the calling thread.");
        Assert.True(total < BudgetPerBatch, $"{what}: {total:F0} bytes per batch allocated process-wide (worker threads included).");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void A_warm_training_step_allocates_almost_nothing(bool adam, bool channelGate)
    {
        using var pool = new WorkerPool(2);
        LayerDefinition[] layers = channelGate ? [new ChannelGateDefinition(0.5f), .. Network()] : Network();
        var net = new SequentialNetwork(layers, [12, 12, 1], new LayerBuildContext(pool, WeightInitializer.HeNormal, 1));
        OptimizerOptions options = adam ? new AdamOptimizerOptions { WeightDecay = 1e-4f } : new SgdOptimizerOptions { Nesterov = true, WeightDecay = 1e-4f };
        var optimizer = options.Create(net.Parameters, pool);
        var loss = new SoftmaxCrossEntropyLoss();
        var random = new Random(2);
        net.EnsureCapacity(Batch);
        for (int i = 0; i < Batch * net.InputSize; i++) net.Input[i] = (float)random.NextDouble();
        var labels = Enumerable.Range(0, Batch).Select(i => (float)(i % 10)).ToArray();

        void Step()
        {
            var y = net.Forward(Batch, training: true);
            _ = loss.Compute(y, labels, Batch, 10, net.OutputGradient) + net.AuxiliaryLoss;
            net.Backward(Batch);
            optimizer.Step(0.01f);
        }

        for (int i = 0; i < 30; i++) Step();
        // Other threads of the process (the test runner, the JIT's background compiler) may allocate during a window,
        // but an allocation of ours happens in every window: the quietest of five windows is the one to judge.
        (long Thread, long Total) quietestBefore = default, quietestAfter = default;
        long quietest = long.MaxValue;
        for (int window = 0; window < 5; window++)
        {
            var before = Allocated();
            for (int i = 0; i < MeasuredSteps; i++) Step();
            var after = Allocated();
            if (after.Total - before.Total < quietest) (quietest, quietestBefore, quietestAfter) = (after.Total - before.Total, before, after);
        }
        AssertBudget((adam ? "Adam step" : "SGD step") + (channelGate ? " with a channel gate" : ""), quietestBefore, quietestAfter, MeasuredSteps);
    }

    [Fact]
    public void The_training_loop_allocates_almost_nothing_per_extra_batch()
    {
        // Two runs of one warm loop that differ only by 50 batches: the difference is the per-batch cost.
        using var pool = new WorkerPool(2);
        var net = new SequentialNetwork(Network(), [12, 12, 1], new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 1));
        var optimizer = new SgdOptimizerOptions().Create(net.Parameters, pool);
        var loop = new TrainingLoop(net, new SoftmaxCrossEntropyLoss(), optimizer, LearningRateSchedule.Cosine().WithWarmup(3), 0.01f,
            Batch, epochs: 1, seed: 1, shuffle: true, earlyStoppingPatience: 0, isClassifier: true);
        var random = new Random(3);
        Dataset Data(int batches)
        {
            int n = batches * Batch;
            var x = new float[n * 144];
            for (int i = 0; i < x.Length; i++) x[i] = (float)random.NextDouble();
            return new Dataset(x, [12, 12, 1], Enumerable.Range(0, n).Select(i => (float)(i % 10)).ToArray());
        }
        var small = Data(5);
        var large = Data(5 + MeasuredSteps);
        loop.Run(small, null, null, null, CancellationToken.None);
        loop.Run(large, null, null, null, CancellationToken.None);

        // As above, the quietest of several windows is judged: other threads of the process may allocate in any one.
        ((long, long) Small, (long, long) Large) quietest = default;
        long quietestExtra = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            var b0 = Allocated();
            loop.Run(small, null, null, null, CancellationToken.None);
            var b1 = Allocated();
            loop.Run(large, null, null, null, CancellationToken.None);
            var b2 = Allocated();
            long extra = (b2.Total - b1.Total) - (b1.Total - b0.Total);
            if (extra < quietestExtra)
                (quietestExtra, quietest) = (extra, ((b1.Thread - b0.Thread, b1.Total - b0.Total), (b2.Thread - b1.Thread, b2.Total - b1.Total)));
        }
        AssertBudget("TrainingLoop.Run, extra batches", quietest.Small, quietest.Large, MeasuredSteps);
    }
}
