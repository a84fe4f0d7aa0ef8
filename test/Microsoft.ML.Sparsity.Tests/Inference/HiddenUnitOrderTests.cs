using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Tests.Masks;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Inference;

/// <summary>Prediction networks' hidden units renumbered into tile order, and the ReLU a dense layer takes over at inference.</summary>
public sealed class HiddenUnitOrderTests
{
    [Fact]
    public void HiddenUnitsGoInTileOrderAndTheNetworkComputesTheSameFunction()
    {
        SequentialNetwork network = SparsityTestNetworks.LeNet();
        SparsityTestNetworks.PruneNow(network, new PruningOptions { TargetSparsity = 0.9 });
        var codes = new byte[network.Layers.OfType<DenseLayer>().First().Weight.Length];
        new Random(3).NextBytes(codes);
        network.Layers.OfType<DenseLayer>().First().Weight.LevelCodes = codes; // shared by clones: must not be moved in place
        float[][] values = [.. network.Parameters.Select(p => (float[])p.Value.Clone())];
        float[][] masks = [.. network.Parameters.Select(p => (float[])p.Mask?.Clone()! ?? [])];
        byte[] codesBefore = (byte[])codes.Clone();

        SequentialNetwork sorted = HiddenUnitOrder.Sorted(network);

        Assert.NotSame(network, sorted);
        DenseLayer[] before = [.. network.Layers.OfType<DenseLayer>()], after = [.. sorted.Layers.OfType<DenseLayer>()];
        for (int l = 0; l < 3; l++)
        {
            int[] order = SlicedEllMatrix.TileRowOrder(before[l].Weight.Value, before[l].Outputs, before[l].Inputs);
            Assert.NotEqual(Enumerable.Range(0, order.Length), order);
            int[] columnOrder = l == 0 ? [.. Enumerable.Range(0, before[0].Inputs)] : SlicedEllMatrix.TileRowOrder(before[l - 1].Weight.Value, before[l - 1].Outputs, before[l - 1].Inputs);
            int[] rowOrder = l == 2 ? [.. Enumerable.Range(0, before[2].Outputs)] : order; // the output layer keeps its units
            int cols = before[l].Inputs;
            for (int p = 0; p < rowOrder.Length; p++)
            {
                Assert.Equal(before[l].Bias!.Value[rowOrder[p]], after[l].Bias!.Value[p]);
                for (int q = 0; q < cols; q++)
                {
                    int from = rowOrder[p] * cols + columnOrder[q], to = p * cols + q;
                    Assert.Equal(before[l].Weight.Value[from], after[l].Weight.Value[to]);
                    Assert.Equal(before[l].Weight.Mask![from], after[l].Weight.Mask![to]);
                    if (l == 0)
                        Assert.Equal(codes[from], after[0].Weight.LevelCodes![to]);
                }
            }

            if (l < 2)
                Assert.Equal(Enumerable.Range(0, order.Length), SlicedEllMatrix.TileRowOrder(after[l].Weight.Value, after[l].Outputs, after[l].Inputs));
        }

        // The original is untouched, and the function is the same within float rounding (the next layers sum in a new order).
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(values[i], network.Parameters[i].Value);
            Assert.Equal(masks[i], network.Parameters[i].Mask ?? []);
        }

        Assert.Equal(codesBefore, codes);
        const int batch = 3;
        network.EnsureCapacity(batch);
        sorted.EnsureCapacity(batch);
        var random = new Random(5);
        for (int i = 0; i < batch * 784; i++)
            network.Input[i] = sorted.Input[i] = random.NextSingle();
        float[] expected = network.Forward(batch, training: false)[..(batch * 10)], actual = sorted.Forward(batch, training: false)[..(batch * 10)];
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], actual[i], 1e-5f * Math.Max(1f, Math.Abs(expected[i])));

        Assert.Same(sorted, HiddenUnitOrder.Sorted(sorted)); // already in tile order: nothing moves
    }

    [Fact]
    public void OnlyUnitsBetweenDenseLayersMove()
    {
        // dense → tanh → dropout → dense: the first layer's units move (through layers acting on each unit alone); the last keeps its order.
        SequentialNetwork network = SparsityTestNetworks.Build([12], 1, Layers.Dense(9), Layers.Activation(ActivationKind.Tanh), Layers.Dropout(0.5f), Layers.Dense(4));
        network.Layers.OfType<DenseLayer>().First().Weight.Value.AsSpan(0, 24).Clear(); // row 0 and 1 emptied: out of tile order
        SequentialNetwork sorted = HiddenUnitOrder.Sorted(network);
        Assert.NotSame(network, sorted);
        Assert.Equal(network.Layers[^1].OutputSize, sorted.Layers[^1].OutputSize);
        Assert.Equal(network.Layers.OfType<DenseLayer>().Last().Bias!.Value, sorted.Layers.OfType<DenseLayer>().Last().Bias!.Value);

        SequentialNetwork single = SparsityTestNetworks.Build([12], 1, Layers.Dense(9), Layers.ReLU());
        single.Layers.OfType<DenseLayer>().First().Weight.Value.AsSpan(0, 24).Clear();
        Assert.Same(single, HiddenUnitOrder.Sorted(single)); // no dense layer after it: its outputs are the network's
    }

    [Fact]
    public void ADenseLayerTakesOverTheReLUAfterItAtInferenceOnly()
    {
        SequentialNetwork network = SparsityTestNetworks.Build([6], 2, Layers.Dense(40), Layers.ReLU(), Layers.Dense(5), Layers.Activation(ActivationKind.Tanh), Layers.Dense(3));
        var dense = (DenseLayer)network.Layers[0];
        foreach (DenseLayer d in network.Layers.OfType<DenseLayer>())
            d.InferenceWeight = new DenseMatrix(d.Weight.Value, d.Outputs, d.Inputs);
        const int batch = 2;
        float[] x = [.. Enumerable.Range(0, batch * 6).Select(i => MathF.Sin(i) * 3)];
        float[] linear = new float[batch * 40], expected = new float[batch * 40], fused = new float[batch * 40];
        dense.Forward(x, linear, batch, training: false);
        Assert.Contains(linear, v => v < 0); // the ReLU has work to do
        network.Layers[1].Forward(linear, expected, batch, training: false);

        network.FuseForInference();
        Assert.Equal([1, 0, 0, 0, 0], Enumerable.Range(0, 5).Select(network.FusedAfter)); // not the tanh
        dense.Forward(x, fused, batch, training: false);
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), fused.Select(BitConverter.SingleToInt32Bits));
        dense.Forward(x, fused, batch, training: true);
        Assert.Equal(linear, fused); // a training forward leaves the ReLU to its layer
    }
}
