using Microsoft.ML.Sparsity.FrequencyDomain;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.FrequencyDomain;

/// <summary>The block DCT-II, its inverse, the channel layout, the JFIF colour conversion and the padding.</summary>
public sealed class BlockDctTests
{
    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void The_basis_is_orthonormal(int b)
    {
        var c = BlockDct.Basis(b);
        for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++)
        {
            double dot = 0;
            for (int n = 0; n < b; n++) dot += (double)c[i * b + n] * c[j * b + n];
            Assert.Equal(i == j ? 1.0 : 0.0, dot, 1e-6);
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void A_constant_block_has_only_the_DC_coefficient(int b)
    {
        var block = Enumerable.Repeat(-37.5f, b * b).ToArray();
        var coefficients = Forward(b, block);
        // Orthonormal: F(0, 0) = (1/√B)² · B² · value = B · value.
        Assert.Equal(b * -37.5, coefficients[0], 1e-3);
        for (int i = 1; i < b * b; i++) Assert.True(Math.Abs(coefficients[i]) < 1e-4, $"coefficient {i} is {coefficients[i]}");
    }

    [Fact]
    public void A_known_8x8_block_gives_the_hand_computed_coefficients()
    {
        // The JPEG example block of Wikipedia's "JPEG" article (level-shifted by 128 before the transform); the published
        // coefficients, in the article's rounding, with u (the row) the vertical frequency.
        float[,] g =
        {
            { 52, 55, 61, 66, 70, 61, 64, 73 }, { 63, 59, 55, 90, 109, 85, 69, 72 }, { 62, 59, 68, 113, 144, 104, 66, 73 },
            { 63, 58, 71, 122, 154, 106, 70, 69 }, { 67, 61, 68, 104, 126, 88, 68, 70 }, { 79, 65, 60, 70, 77, 68, 58, 75 },
            { 85, 71, 64, 59, 55, 61, 65, 83 }, { 87, 79, 69, 68, 65, 76, 78, 94 },
        };
        var block = new float[64];
        for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) block[y * 8 + x] = g[y, x] - 128;
        var f = Forward(8, block);
        double[] row0 = [-415.38, -30.19, -61.20, 27.24, 56.12, -20.10, -2.39, 0.46];
        double[] row1 = [4.47, -21.86, -60.76, 10.25, 13.15, -7.09, -8.54, 4.88];
        double[] row2 = [-46.83, 7.37, 77.13, -24.56, -28.91, 9.93, 5.42, -5.65];
        for (int v = 0; v < 8; v++)
        {
            Assert.Equal(row0[v], f[v], 0.006);
            Assert.Equal(row1[v], f[8 + v], 0.006);
            Assert.Equal(row2[v], f[16 + v], 0.006);
        }
    }

    [Fact]
    public void A_single_cosine_pattern_lands_in_its_own_coefficient()
    {
        // f(y, x) = cos((2y+1)·2π/16)·cos((2x+1)·3π/16): Σ_n cos²((2n+1)kπ/16) = 4 for k ≠ 0, and α(k) = ½, so F(2, 3) = ½·½·4·4 = 4.
        var block = new float[64];
        for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            block[y * 8 + x] = (float)(Math.Cos((2 * y + 1) * 2 * Math.PI / 16) * Math.Cos((2 * x + 1) * 3 * Math.PI / 16));
        var f = Forward(8, block);
        for (int i = 0; i < 64; i++) Assert.Equal(i == 2 * 8 + 3 ? 4.0 : 0.0, f[i], 1e-5);
    }

    [Theory]
    [InlineData(8, 28, 28, 1)]
    [InlineData(4, 13, 10, 3)]
    [InlineData(8, 17, 9, 3)]
    [InlineData(4, 5, 7, 1)]
    public void Forward_then_inverse_returns_the_image(int b, int h, int w, int c)
    {
        var dct = new ImageDct([h, w, c], b, pixelRange: 1f);
        var random = new Random(h * w + c + b);
        var image = Enumerable.Range(0, h * w * c).Select(_ => (float)random.NextDouble()).ToArray();
        var coefficients = new float[dct.CoefficientLength];
        var back = new float[image.Length];
        var scratch = dct.CreateScratch();
        dct.Forward(image, coefficients, scratch);
        dct.Inverse(coefficients, back, scratch);
        for (int i = 0; i < image.Length; i++) Assert.True(Math.Abs(image[i] - back[i]) <= 1e-4, $"value {i}: {image[i]} became {back[i]}");
        Assert.Equal(dct.BlockRows * dct.BlockColumns * c * b * b, coefficients.Length);
    }

    [Fact]
    public void Channel_u_times_B_plus_v_of_a_block_holds_coefficient_u_v()
    {
        // A 16×24 grayscale image, B = 8: 2×3 blocks. Pixels are on the [0, 255] scale (PixelRange 255), so after the level
        // shift the value 128 is 0. Block (1, 2) holds the basis pattern of (u, v) = (5, 2) with amplitude 40: exactly one
        // coefficient in the whole output is non-zero, at block position (1, 2), channel 5·8 + 2 = 42.
        var dct = new ImageDct([16, 24, 1], 8, pixelRange: 255f);
        var basis = BlockDct.Basis(8);
        var image = Enumerable.Repeat(128f, 16 * 24).ToArray();
        for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            image[(8 + y) * 24 + 16 + x] += 40 * basis[5 * 8 + y] * basis[2 * 8 + x];
        var coefficients = new float[dct.CoefficientLength];
        dct.Forward(image, coefficients, dct.CreateScratch());
        int expected = (1 * 3 + 2) * 64 + 42;
        for (int i = 0; i < coefficients.Length; i++)
            Assert.True(Math.Abs(coefficients[i] - (i == expected ? 40 : 0)) < 1e-3, $"value {i} (position {i / 64}, channel {i % 64}) is {coefficients[i]}");
    }

    [Fact]
    public void RGB_uses_the_JFIF_YCbCr_coefficients_and_concatenates_Y_Cb_Cr()
    {
        // A constant 8×8 RGB image (200, 100, 50) on the [0, 255] scale: each component's block has only its DC,
        // F(0, 0) = 8·(component − 128), at channels 0 (Y), 64 (Cb), 128 (Cr).
        var dct = new ImageDct([8, 8, 3], 8, pixelRange: 255f);
        var image = new float[8 * 8 * 3];
        for (int p = 0; p < 64; p++) (image[3 * p], image[3 * p + 1], image[3 * p + 2]) = (200, 100, 50);
        var f = new float[dct.CoefficientLength];
        dct.Forward(image, f, dct.CreateScratch());
        double y = 0.299 * 200 + 0.587 * 100 + 0.114 * 50;
        double cb = 128 - 0.168736 * 200 - 0.331264 * 100 + 0.5 * 50;
        double cr = 128 + 0.5 * 200 - 0.418688 * 100 - 0.081312 * 50;
        Assert.Equal(8 * (y - 128), f[0], 1e-3);
        Assert.Equal(8 * (cb - 128), f[64], 1e-3);
        Assert.Equal(8 * (cr - 128), f[128], 1e-3);
        for (int i = 0; i < 192; i++)
            if (i % 64 != 0) Assert.True(Math.Abs(f[i]) < 1e-3, $"channel {i} is {f[i]}");
    }

    [Fact]
    public void Fashion_MNIST_size_is_centred_in_32x32_with_black_padding()
    {
        // A white 28×28 image (pixels 1 on the [0, 1] scale) padded to 32×32: the top-left block holds 6×6 white
        // pixels (255 − 128 = 127 after the level shift) and 28 black padding pixels (−128), so its DC is (36·127 − 28·128)/8.
        var dct = new ImageDct([28, 28, 1], 8, pixelRange: 1f);
        Assert.Equal((32, 32, 2, 2), (dct.PaddedHeight, dct.PaddedWidth, dct.PadTop, dct.PadLeft));
        var f = new float[dct.CoefficientLength];
        dct.Forward(Enumerable.Repeat(1f, 784).ToArray(), f, dct.CreateScratch());
        Assert.Equal(4 * 4 * 64, f.Length);
        Assert.Equal((36 * 127 - 28 * 128) / 8.0, f[0], 1e-3);
        // An interior block of a 4×4 grid (position (1, 1)) is all white: DC = 8·127, nothing else.
        Assert.Equal(8 * 127, f[(1 * 4 + 1) * 64], 1e-3);
    }

    private static float[] Forward(int b, float[] block)
    {
        var dct = new BlockDct(b);
        var coefficients = new float[b * b];
        dct.ForwardBand(block, b, new float[b * b], coefficients, b * b, 0);
        return coefficients;
    }
}
