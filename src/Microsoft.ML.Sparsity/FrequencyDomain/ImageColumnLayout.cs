using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.FrequencyDomain;

/// <summary>
/// How an image column's vector holds its pixels: the image shape <c>[height, width, channels]</c>, and whether the
/// values are interleaved (<c>[height, width, channels]</c>, what the engine uses and what ML.NET's <c>ExtractPixels</c>
/// gives with <c>interleavePixelColors: true</c>) or planar (<c>[channels, height, width]</c>, <c>ExtractPixels</c>' default).
/// </summary>
internal sealed record ImageColumnLayout(int[] Shape, bool Planar)
{
    public int Height => Shape[0];
    public int Width => Shape[1];
    public int Channels => Shape[2];

    /// <summary>The dimensions of the column's vector in this layout.</summary>
    public int[] ColumnDimensions => Planar ? [Channels, Height, Width] : [.. Shape];

    /// <summary>
    /// The layout of a known-size vector column of type <paramref name="type"/>: <paramref name="imageShape"/> and
    /// <paramref name="interleaved"/> when given, otherwise read from the vector's dimensions (<c>[h, w, 1 or 3]</c> is
    /// interleaved, <c>[1 or 3, h, w]</c> planar, <c>[h, w]</c> grayscale).
    /// </summary>
    /// <exception cref="ArgumentException">The column does not hold images with 1 or 3 channels (the message names the column and its shape).</exception>
    public static ImageColumnLayout Of(VectorDataViewType type, string columnName, int[]? imageShape, bool? interleaved, string argument)
    {
        var dims = type.Dimensions;
        int[]? shape = imageShape?.ToArray();
        bool planar;
        if (shape is not null)
            planar = interleaved is bool i ? !i : dims.Length == 3 && dims[0] == shape[2] && dims[1] == shape[0] && dims[2] == shape[1] && !dims.SequenceEqual(shape);
        else if (dims.Length == 2)
            (shape, planar) = ([dims[0], dims[1], 1], false);
        else if (dims.Length == 3)
        {
            planar = interleaved is bool i ? !i : dims[2] is not (1 or 3) && dims[0] is 1 or 3;
            shape = planar ? [dims[1], dims[2], dims[0]] : [.. dims];
        }
        else
            planar = false;
        if (shape is null || shape.Length != 3 || shape[0] <= 0 || shape[1] <= 0 || shape[2] is not (1 or 3) || (long)shape[0] * shape[1] * shape[2] != type.Size)
            throw new ArgumentException(
                $"The frequency-domain transform needs images of shape [height, width, 1] (grayscale) or [height, width, 3] (RGB); the column '{columnName}' " +
                $"has shape {Engine.Shape.Format([.. dims])}{(imageShape is null ? "" : $" and ImageShape is {Engine.Shape.Format(imageShape)}")}. " +
                "Give the image shape in Options.ImageShape, or extract pixels with mlContext.Transforms.ExtractPixels (which gives the dimensions).", argument);
        return new ImageColumnLayout(shape, planar);
    }

    /// <summary>One image from this layout to interleaved <c>[height, width, channels]</c>.</summary>
    public void ToInterleaved(ReadOnlySpan<float> image, Span<float> interleaved)
    {
        int plane = Height * Width, channels = Channels;
        for (int c = 0; c < channels; c++)
        for (int p = 0; p < plane; p++)
            interleaved[p * channels + c] = image[c * plane + p];
    }

    /// <summary>One interleaved image <c>[height, width, channels]</c> to this (planar) layout.</summary>
    public void FromInterleaved(ReadOnlySpan<float> interleaved, Span<float> image)
    {
        int plane = Height * Width, channels = Channels;
        for (int c = 0; c < channels; c++)
        for (int p = 0; p < plane; p++)
            image[c * plane + p] = interleaved[p * channels + c];
    }
}
