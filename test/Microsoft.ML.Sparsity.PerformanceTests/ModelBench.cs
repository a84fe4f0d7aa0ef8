using System.Diagnostics;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.PerformanceTests;

/// <summary>
/// Training and inference throughput of whole models on synthetic data, measured the way the PyTorch script measures
/// them: a few pre-made batches cycled through; a training step is forward, softmax cross-entropy, backward and an
/// SGD (momentum 0.9) update.
/// </summary>
internal sealed class ModelBench(WorkerPool pool, double seconds)
{
    public static readonly (string Name, Func<LayerDefinition[]> Layers, int[] Shape)[] Models =
    [
        ("lenet", () => [.. Layers.LeNet300100(), Layers.Dense(10)], [784]),
        ("cnn", () => [.. Layers.SmallCnn(), Layers.Dense(10)], [28, 28, 1]),
    ];

    /// <param name="layers">The network.</param>
    /// <param name="shape">One example's shape.</param>
    /// <param name="batch">Examples per step.</param>
    /// <param name="maskedSparsity">When set, every weight gets an unstructured magnitude mask of this sparsity first (masked training).</param>
    public (double SamplesPerSecond, double AllocatedBytesPerBatch) Train(LayerDefinition[] layers, int[] shape, int batch, double? maskedSparsity = null)
    {
        var (network, inputs, labels) = Setup(layers, shape, batch);
        if (maskedSparsity is double s)
        {
            var options = new PruningOptions { TargetSparsity = s, Schedule = PruningSchedule.AtInitialization() };
            new PruningPlan(options, network, 1).Prune(0, options.Schedule, null);
        }
        var optimizer = new SgdOptimizerOptions { LearningRate = 0.01f, Momentum = 0.9f }.Create(network.Parameters, pool);
        var loss = new SoftmaxCrossEntropyLoss();
        int i = 0;
        void Step()
        {
            inputs[i % inputs.Length].CopyTo(network.Input, 0);
            var output = network.Forward(batch, training: true);
            loss.Compute(output, labels[i % labels.Length], batch, 10, network.OutputGradient);
            network.Backward(batch);
            optimizer.Step(0.01f);
            i++;
        }
        return Measure(Step, batch);
    }

    public (double SamplesPerSecond, double MicrosecondsPerCall) Infer(LayerDefinition[] layers, int[] shape, int batch) =>
        Infer(new SequentialNetwork(layers, shape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 42)), batch);

    /// <summary>A trained model's prediction as applications call it: <c>Predict</c> at batch 1, the batched scoring behind <c>Transform</c> above.</summary>
    public (double SamplesPerSecond, double MicrosecondsPerCall) Infer(Models.NeuralNetworkMulticlassModel model, int batch)
    {
        var inputs = Inputs(model.Network, batch);
        var probabilities = new float[batch * model.ClassCount];
        var predicted = new int[batch];
        int i = 0;
        void Call()
        {
            float[] x = inputs[i++ % inputs.Length];
            if (batch == 1)
                model.Predict(x, probabilities);
            else
                model.Score(x, batch, probabilities, predicted);
        }
        var (sps, _) = Measure(Call, batch);
        return (sps, 1e6 * batch / sps);
    }

    public (double SamplesPerSecond, double MicrosecondsPerCall) Infer(SequentialNetwork network, int batch)
    {
        network.EnsureCapacity(batch);
        var inputs = Inputs(network, batch);
        int i = 0;
        void Call()
        {
            inputs[i++ % inputs.Length].CopyTo(network.Input, 0);
            network.Forward(batch, training: false);
        }
        var (sps, _) = Measure(Call, batch);
        return (sps, 1e6 * batch / sps);
    }

    /// <summary>Median µs of each layer's inference forward over repeated calls at <paramref name="batch"/> (0 for layers fused into the one before).</summary>
    public static double[] LayerMicroseconds(SequentialNetwork network, int batch, int calls)
    {
        network.EnsureCapacity(batch);
        var inputs = Inputs(network, batch);
        var buffers = new float[network.Layers.Count + 1][];
        buffers[0] = inputs[0];
        for (int l = 0; l < network.Layers.Count; l++)
            buffers[l + 1] = new float[batch * network.Layers[l].OutputSize];
        var samples = new double[network.Layers.Count, calls];
        for (int c = -calls; c < calls; c++) // the first half warms up
        {
            // A layer fused into the one before it (network.FusedAfter) is skipped: its time is in that layer's.
            for (int l = 0; l < network.Layers.Count; l += 1 + network.FusedAfter(l))
            {
                long t0 = Stopwatch.GetTimestamp();
                network.Layers[l].Forward(buffers[l], buffers[l + 1 + network.FusedAfter(l)], batch, training: false);
                if (c >= 0)
                    samples[l, c] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            }
        }

        return Enumerable.Range(0, network.Layers.Count)
            .Select(l => Statistics.Median(Enumerable.Range(0, calls).Select(c => samples[l, c]))).ToArray();
    }

    private (SequentialNetwork, float[][], float[][]) Setup(LayerDefinition[] layers, int[] shape, int batch)
    {
        var network = new SequentialNetwork(layers, shape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 42));
        network.EnsureCapacity(batch);
        var random = new Random(8);
        var labels = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, batch).Select(_ => (float)random.Next(10)).ToArray()).ToArray();
        return (network, Inputs(network, batch), labels);
    }

    private static float[][] Inputs(SequentialNetwork network, int batch)
    {
        var random = new Random(7);
        return Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, batch * network.InputSize).Select(_ => random.NextSingle()).ToArray()).ToArray();
    }

    /// <summary>Warms up, then runs <paramref name="call"/> for the configured time; returns samples/s and bytes allocated per call (all threads).</summary>
    private (double, double) Measure(Action call, int batch)
    {
        var warm = Stopwatch.StartNew();
        // Long enough for tiered JIT compilation to reach its optimised code.
        while (warm.Elapsed.TotalSeconds < Math.Max(1.5, seconds / 2)) call();
        long calls = 0;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds) { call(); calls++; }
        double elapsed = clock.Elapsed.TotalSeconds;
        double bytes = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / (double)calls;
        return (calls * batch / elapsed, bytes);
    }
}
