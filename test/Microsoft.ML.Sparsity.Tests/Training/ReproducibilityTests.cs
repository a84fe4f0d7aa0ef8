using System.Diagnostics;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Training;

/// <summary>
/// "With a fixed seed, training is bit-for-bit reproducible" must hold across processes, not only within one:
/// nothing may depend on per-process randomness such as string/HashCode seeding.
/// </summary>
public sealed class ReproducibilityTests
{
    private const string ProbeVariable = "SPARSITY_TESTS_EPOCH_ORDER_FILE";

    /// <summary>A loss that records the labels of every batch it sees (the labels are row numbers).</summary>
    private sealed class RecordingLoss : Loss
    {
        public List<int> Seen { get; } = [];

        public override double Compute(float[] outputs, float[] labels, int batch, int outputSize, float[] gradient)
        {
            for (int b = 0; b < batch; b++) Seen.Add((int)labels[b]);
            Array.Clear(gradient, 0, batch * outputSize);
            return 0;
        }
    }

    /// <summary>The order in which a seeded training loop visits 20 examples over 3 epochs.</summary>
    private static int[] EpochOrders(int seed)
    {
        using var pool = new WorkerPool(1);
        var net = new SequentialNetwork([Layers.Dense(1)], [1], new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 1));
        var optimizer = new SgdOptimizerOptions { Momentum = 0 }.Create(net.Parameters, pool);
        var loss = new RecordingLoss();
        var loop = new TrainingLoop(net, loss, optimizer, LearningRateSchedule.Constant(), 0.01f, batchSize: 5, epochs: 3, seed,
            shuffle: true, earlyStoppingPatience: 0, isClassifier: false);
        var data = new Dataset(new float[20], [1], Enumerable.Range(0, 20).Select(i => (float)i).ToArray());
        loop.Run(data, null, null, null, CancellationToken.None);
        return [.. loss.Seen];
    }

    [Fact]
    public void Shuffling_visits_every_example_once_per_epoch_and_depends_on_seed_and_epoch()
    {
        var order = EpochOrders(17);
        Assert.Equal(60, order.Length);
        for (int e = 0; e < 3; e++) Assert.Equal(Enumerable.Range(0, 20), order.Skip(e * 20).Take(20).Order());
        Assert.NotEqual(order.Take(20), order.Skip(20).Take(20));            // epochs differ
        Assert.NotEqual(Enumerable.Range(0, 20), order.Take(20));            // it is shuffled
        Assert.Equal(order, EpochOrders(17));                                // same seed, same order
        Assert.NotEqual(order, EpochOrders(18));                             // another seed, another order

        // When the parent test below asks, report this process's order.
        if (Environment.GetEnvironmentVariable(ProbeVariable) is { Length: > 0 } path)
            File.WriteAllText(path, string.Join(",", order));
    }

    [Fact]
    public async Task Shuffling_is_the_same_in_another_process()
    {
        // Runs the test above in a fresh test host and compares the order it saw with this process's.
        string file = Path.Combine(Path.GetTempPath(), $"sparsity-epoch-order-{Guid.NewGuid():N}.txt");
        string assembly = typeof(ReproducibilityTests).Assembly.Location;
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "test", assembly, "--filter", $"FullyQualifiedName={typeof(ReproducibilityTests).FullName}.{nameof(Shuffling_visits_every_example_once_per_epoch_and_depends_on_seed_and_epoch)}" })
            start.ArgumentList.Add(arg);
        start.Environment[ProbeVariable] = file;
        try
        {
            using var child = Process.Start(start)!;
            var stdout = child.StandardOutput.ReadToEndAsync();
            var stderr = child.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            await child.WaitForExitAsync(timeout.Token);
            string output = await stdout, errors = await stderr;
            Assert.True(child.ExitCode == 0 && File.Exists(file), $"the child test run failed (exit {child.ExitCode}):\n{output}\n{errors}");
            int[] childOrder = File.ReadAllText(file).Split(',').Select(int.Parse).ToArray();
            Assert.True(EpochOrders(17).SequenceEqual(childOrder),
                "the same seed shuffled the data differently in another process: the epoch order depends on per-process state " +
                $"(this process: {string.Join(",", EpochOrders(17).Take(20))}; other: {string.Join(",", childOrder.Take(20))}).");
        }
        finally
        {
            File.Delete(file);
        }
    }
}
