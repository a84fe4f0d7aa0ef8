namespace Microsoft.ML.Sparsity.FrequencyDomain;

/// <summary>
/// The full, unnormalised frequency-domain image of "Learning in the Frequency Domain" (Xu et al., CVPR 2020):
/// pixels → (RGB only) YCbCr with the JFIF coefficients → level shift by 128 → zero padding to a multiple of B →
/// B×B block DCT-II. The result is channels-last, <c>[paddedHeight/B, paddedWidth/B, components·B²]</c>: channel
/// <c>k·B² + u·B + v</c> holds coefficient (u, v) of component k (Y, then Cb, then Cr).
/// </summary>
/// <remarks>
/// Pixels are first scaled by 255 / <see cref="PixelRange"/>, so the colour formulas and the level shift work on the
/// JPEG scale [0, 255] whatever the data's scale. Padding: the image is centred in the padded plane (the extra row or
/// column of an odd padding goes to the bottom or right) and padded pixels are 0 (black) before the colour conversion,
/// so Fashion-MNIST's 28×28 becomes 32×32 with its own background colour all around.
/// </remarks>
internal sealed class ImageDct
{
    private readonly BlockDct _dct;

    public ImageDct(int[] imageShape, int blockSize, float pixelRange)
    {
        _dct = new BlockDct(blockSize);
        (Height, Width, Components) = (imageShape[0], imageShape[1], imageShape[2]);
        PixelRange = pixelRange;
        PaddedHeight = (Height + blockSize - 1) / blockSize * blockSize;
        PaddedWidth = (Width + blockSize - 1) / blockSize * blockSize;
        PadTop = (PaddedHeight - Height) / 2;
        PadLeft = (PaddedWidth - Width) / 2;
    }

    public int B => _dct.B;
    public int Height { get; }
    public int Width { get; }
    /// <summary>1 (grayscale: Y only) or 3 (RGB: Y, Cb, Cr).</summary>
    public int Components { get; }
    public float PixelRange { get; }
    public int PaddedHeight { get; }
    public int PaddedWidth { get; }
    public int PadTop { get; }
    public int PadLeft { get; }
    public int BlockRows => PaddedHeight / B;
    public int BlockColumns => PaddedWidth / B;
    public int Channels => Components * B * B;
    public int ImageLength => Height * Width * Components;
    public int CoefficientLength => BlockRows * BlockColumns * Channels;
    public BlockDct Dct => _dct;

    /// <summary>The scratch one thread needs for <see cref="Forward"/> and <see cref="Inverse"/>.</summary>
    public float[] CreateScratch() => new float[PaddedHeight * PaddedWidth + B * PaddedWidth];

    /// <summary>Writes every channel of one image into <paramref name="coefficients"/> (<see cref="CoefficientLength"/> values).</summary>
    public void Forward(ReadOnlySpan<float> image, Span<float> coefficients, float[] scratch)
    {
        var plane = scratch.AsSpan(0, PaddedHeight * PaddedWidth);
        var columns = scratch.AsSpan(plane.Length, B * PaddedWidth);
        int stride = Channels, bandLength = B * PaddedWidth, blocksPerBand = BlockColumns * stride;
        for (int k = 0; k < Components; k++)
        {
            FillPlane(image, k, plane);
            for (int by = 0; by < BlockRows; by++)
                _dct.ForwardBand(plane.Slice(by * bandLength, bandLength), PaddedWidth, columns,
                    coefficients.Slice(by * blocksPerBand, blocksPerBand), stride, k * B * B);
        }
    }

    /// <summary>Reconstructs the image from all of its channels (the inverse of <see cref="Forward"/>, cropping the padding).</summary>
    public void Inverse(ReadOnlySpan<float> coefficients, Span<float> image, float[] scratch)
    {
        var plane = scratch.AsSpan(0, PaddedHeight * PaddedWidth);
        int b = B, stride = Channels;
        float toPixels = PixelRange / 255f;
        for (int k = 0; k < Components; k++)
        {
            for (int by = 0; by < BlockRows; by++)
            for (int bx = 0; bx < BlockColumns; bx++)
                _dct.InverseBlock(coefficients.Slice((by * BlockColumns + bx) * stride + k * b * b, b * b),
                    plane[(by * b * PaddedWidth + bx * b)..], PaddedWidth);
            for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
            {
                float shifted = plane[(y + PadTop) * PaddedWidth + x + PadLeft];
                if (Components == 1) image[y * Width + x] = (shifted + YCbCr.LevelShift) * toPixels;
                else image[(y * Width + x) * 3 + k] = shifted;   // YCbCr for now; converted below
            }
        }
        if (Components == 3)
            for (int p = 0; p < Height * Width; p++) YCbCr.ToRgb(image.Slice(p * 3, 3), toPixels);
    }

    /// <summary>The level-shifted component <paramref name="k"/> on the padded plane.</summary>
    private void FillPlane(ReadOnlySpan<float> image, int k, Span<float> plane)
    {
        float scale = 255f / PixelRange;
        plane.Fill(YCbCr.ShiftedOffset(Components, k));   // padding: a black pixel
        if (Components == 1)
        {
            for (int y = 0; y < Height; y++)
            {
                var row = plane.Slice((y + PadTop) * PaddedWidth + PadLeft, Width);
                var pixels = image.Slice(y * Width, Width);
                for (int x = 0; x < Width; x++) row[x] = pixels[x] * scale - YCbCr.LevelShift;
            }
            return;
        }
        float r = YCbCr.Matrix[k * 3] * scale, g = YCbCr.Matrix[k * 3 + 1] * scale, b = YCbCr.Matrix[k * 3 + 2] * scale;
        float offset = YCbCr.ShiftedOffset(3, k);
        for (int y = 0; y < Height; y++)
        {
            var row = plane.Slice((y + PadTop) * PaddedWidth + PadLeft, Width);
            var pixels = image.Slice(y * Width * 3, Width * 3);
            for (int x = 0; x < Width; x++) row[x] = r * pixels[3 * x] + g * pixels[3 * x + 1] + b * pixels[3 * x + 2] + offset;
        }
    }
}

/// <summary>JFIF's YCbCr on the [0, 255] scale, and the JPEG level shift.</summary>
internal static class YCbCr
{
    /// <summary>Subtracted from every component before the DCT (2^(8−1)).</summary>
    public const float LevelShift = 128f;

    /// <summary>Rows Y, Cb, Cr of the JFIF matrix over (R, G, B).</summary>
    public static readonly float[] Matrix =
    [
        0.299f, 0.587f, 0.114f,
        -0.168736f, -0.331264f, 0.5f,
        0.5f, -0.418688f, -0.081312f,
    ];

    /// <summary>The JFIF offsets of Y, Cb, Cr (0, 128, 128).</summary>
    public static readonly float[] Offsets = [0f, 128f, 128f];

    private static readonly double[] InverseMatrix = Invert(Matrix);

    /// <summary>Component <paramref name="k"/>'s value for a black pixel after the level shift: −128 for Y, 0 for Cb and Cr.</summary>
    public static float ShiftedOffset(int components, int k) => (components == 1 ? 0f : Offsets[k]) - LevelShift;

    /// <summary>Level-shifted (Y, Cb, Cr) in place → (R, G, B) in the data's scale (multiplied by <paramref name="toPixels"/>).</summary>
    public static void ToRgb(Span<float> pixel, float toPixels)
    {
        double y = pixel[0] + LevelShift, cb = pixel[1] + LevelShift - Offsets[1], cr = pixel[2] + LevelShift - Offsets[2];
        for (int c = 0; c < 3; c++)
            pixel[c] = (float)((InverseMatrix[c * 3] * y + InverseMatrix[c * 3 + 1] * cb + InverseMatrix[c * 3 + 2] * cr) * toPixels);
    }

    /// <summary>The exact inverse of the (rounded) JFIF matrix, so that a round trip returns the pixels.</summary>
    private static double[] Invert(float[] m)
    {
        double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5], g = m[6], h = m[7], i = m[8];
        double det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
        return
        [
            (e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det,
            (f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det,
            (d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det,
        ];
    }
}
