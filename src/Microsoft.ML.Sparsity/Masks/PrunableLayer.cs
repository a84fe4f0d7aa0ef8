using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Masks;

/// <summary>
/// A layer whose weight can be pruned, seen as a matrix [Rows = outputs, Columns = inputs × kernel positions].
/// Dense weights are [out, in]; convolution weights are [out, kh, kw, in], so the input channels are the fastest
/// axis of a row and an N:M group of M consecutive columns spans input channels at one kernel position.
/// </summary>
internal sealed class PrunableLayer
{
    private PrunableLayer(int index, Layer layer, IReadOnlyList<Layer> following, Parameter weight, Parameter? bias, int inChannels, int kernelH, int kernelW)
    {
        Index = index;
        Layer = layer;
        Following = following;
        Weight = weight;
        Bias = bias;
        Rows = weight.Shape[0];
        Columns = weight.Length / Rows;
        InChannels = inChannels;
        KernelH = kernelH;
        KernelW = kernelW;
    }

    /// <summary>The position among the network's prunable layers (0 = first).</summary>
    public int Index { get; }
    public Layer Layer { get; }

    /// <summary>The network's layers after this one, in order (e.g. the batch norm that scales its channels).</summary>
    public IReadOnlyList<Layer> Following { get; }
    public string Name => Layer.Name;
    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    public int Rows { get; }
    public int Columns { get; }
    public int InChannels { get; }
    public int KernelH { get; }
    public int KernelW { get; }
    public int Count => Weight.Length;
    public int OutChannels => Rows;

    /// <summary>The network's dense and convolution layers, in order.</summary>
    public static IReadOnlyList<PrunableLayer> From(SequentialNetwork network)
    {
        var result = new List<PrunableLayer>();
        for (int i = 0; i < network.Layers.Count; i++)
        {
            var following = network.Layers.Skip(i + 1).ToArray();
            switch (network.Layers[i])
            {
                case DenseLayer d: result.Add(new PrunableLayer(result.Count, d, following, d.Weight, d.Bias, d.Inputs, 1, 1)); break;
                case Conv2dLayer c: result.Add(new PrunableLayer(result.Count, c, following, c.Weight, c.Bias, c.Weight.Shape[3], c.KernelSize, c.KernelSize)); break;
            }
        }
        return result;
    }

    /// <summary>Sets the mask (allocating it on first use) and zeroes the pruned weights.</summary>
    public void ApplyMask(ReadOnlySpan<float> mask)
    {
        Weight.Mask ??= new float[Count];
        mask.CopyTo(Weight.Mask);
        System.Numerics.Tensors.TensorPrimitives.Multiply(Weight.Value, Weight.Mask, Weight.Value);
    }
}
