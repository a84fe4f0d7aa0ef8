using Microsoft.ML.Sparsity.FrequencyDomain;
using static Microsoft.ML.Sparsity.Export.OnnxGraphBuilder;

namespace Microsoft.ML.Sparsity.Export;

/// <summary>
/// The frequency-domain transform as ONNX nodes: the flat features reshaped to NCHW images, one convolution with
/// kernel B and stride B whose fixed kernels are the DCT basis functions of the selected channels (the colour
/// conversion, the rescaling to [0, 255] and the level shift folded into its weights and bias, the padding into its
/// pads), then the normalisation: subtract the channel means, divide by the standard deviations.
/// </summary>
internal static class FrequencyDomainOnnx
{
    /// <summary>Adds the nodes reading <paramref name="input"/> (float [batch, H·W·C], interleaved or planar as the transform reads it); returns the NCHW output [batch, K, H'/B, W'/B].</summary>
    public static string Add(OnnxGraphBuilder builder, FrequencyDomainTransformer transform, string input)
    {
        var dct = transform.Dct;
        int b = dct.B, components = dct.Components, k = transform.Channels.Length;
        string images = components == 1 || transform.Planar
            ? builder.AddNode("Reshape", builder.UniqueName("dct.nchw"), [input, builder.AddInt64Initializer("dct.nchw.shape", -1, components, dct.Height, dct.Width)])
            : builder.AddNode("Transpose", builder.UniqueName("dct.nchw"),
                [builder.AddNode("Reshape", builder.UniqueName("dct.nhwc"), [input, builder.AddInt64Initializer("dct.nhwc.shape", -1, dct.Height, dct.Width, components)])],
                Ints("perm", 0, 3, 1, 2));

        var basis = dct.Dct.BasisMatrix.ToArray();
        double scale = 255.0 / dct.PixelRange;
        var weights = new float[k * components * b * b];
        var bias = new float[k];
        for (int j = 0; j < k; j++)
        {
            int channel = transform.Channels[j], component = channel / (b * b), u = channel % (b * b) / b, v = channel % b;
            double basisSum = 0;
            for (int y = 0; y < b; y++)
            for (int x = 0; x < b; x++)
            {
                double kernel = (double)basis[u * b + y] * basis[v * b + x];
                basisSum += kernel;
                for (int c = 0; c < components; c++)
                {
                    double colour = components == 1 ? 1 : YCbCr.Matrix[component * 3 + c];
                    weights[((j * components + c) * b + y) * b + x] = (float)(scale * colour * kernel);
                }
            }
            // Every pixel of a block carries the component's level-shifted offset (−128 for Y, 0 for Cb and Cr).
            bias[j] = (float)(YCbCr.ShiftedOffset(components, component) * basisSum);
        }
        int padBottom = dct.PaddedHeight - dct.Height - dct.PadTop, padRight = dct.PaddedWidth - dct.Width - dct.PadLeft;
        string coefficients = builder.AddNode("Conv", builder.UniqueName("dct.coefficients"),
            [images, builder.AddInitializer("dct.basis", weights, k, components, b, b), builder.AddInitializer("dct.offset", bias, k)],
            Ints("kernel_shape", b, b), Ints("strides", b, b), Ints("pads", dct.PadTop, dct.PadLeft, padBottom, padRight), Ints("dilations", 1, 1), Int("group", 1));
        string centred = builder.AddNode("Sub", builder.UniqueName("dct.centred"), [coefficients, builder.AddInitializer("dct.mean", transform.Mean, 1, k, 1, 1)]);
        return builder.AddNode("Div", builder.UniqueName("dct.normalized"), [centred, builder.AddInitializer("dct.std", transform.Std, 1, k, 1, 1)]);
    }
}
