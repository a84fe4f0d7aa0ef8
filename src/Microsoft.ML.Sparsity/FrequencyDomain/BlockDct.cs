using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Sparsity.FrequencyDomain;

/// <summary>
/// The orthonormal B×B block DCT-II (B = 4 or 8) and its inverse, computed separably: first along the columns of a band
/// of B plane rows (vectorised over the whole band width), then along the rows of each block (one vector of B
/// coefficients per block row). Coefficient (u, v) of a block is <c>F(u, v) = Σ_y Σ_x C[u, y]·C[v, x]·f(y, x)</c> with
/// <c>C[k, n] = α(k)·cos((2n + 1)kπ / 2B)</c>, <c>α(0) = √(1/B)</c>, <c>α(k) = √(2/B)</c>: u is the vertical frequency,
/// v the horizontal one, and the coefficients of a block are stored row-major (index u·B + v), DC first.
/// </summary>
internal sealed class BlockDct
{
    private readonly float[] _basis;                 // C[k, n], row-major
    private readonly Vector256<float>[] _columns8;   // for B = 8: column n of C, over k
    private readonly Vector128<float>[] _columns8Low, _columns8High; // for B = 8 with 128-bit vectors: the halves of _columns8
    private readonly Vector128<float>[] _columns4;   // for B = 4

    public BlockDct(int blockSize)
    {
        if (blockSize is not (4 or 8))
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "The DCT block size must be 4 or 8.");
        B = blockSize;
        _basis = Basis(blockSize);
        _columns8 = blockSize == 8 ? Enumerable.Range(0, 8).Select(n => Vector256.Create(Column(n))).ToArray() : [];
        _columns8Low = blockSize == 8 ? Enumerable.Range(0, 8).Select(n => Vector128.Create(Column(n).AsSpan(0, 4))).ToArray() : [];
        _columns8High = blockSize == 8 ? Enumerable.Range(0, 8).Select(n => Vector128.Create(Column(n).AsSpan(4, 4))).ToArray() : [];
        _columns4 = blockSize == 4 ? Enumerable.Range(0, 4).Select(n => Vector128.Create(Column(n))).ToArray() : [];
    }

    /// <summary>The block side.</summary>
    public int B { get; }

    /// <summary>The basis matrix C[k, n] (row k is the k-th cosine), row-major.</summary>
    public ReadOnlySpan<float> BasisMatrix => _basis;

    /// <summary>The orthonormal DCT-II matrix of size <paramref name="b"/>, computed in double precision.</summary>
    public static float[] Basis(int b)
    {
        var c = new float[b * b];
        for (int k = 0; k < b; k++)
        for (int n = 0; n < b; n++)
            c[k * b + n] = (float)(Math.Sqrt((k == 0 ? 1.0 : 2.0) / b) * Math.Cos((2 * n + 1) * k * Math.PI / (2 * b)));
        return c;
    }

    private float[] Column(int n) => Enumerable.Range(0, B).Select(k => _basis[k * B + n]).ToArray();

    /// <summary>
    /// Transforms a band of B plane rows of <paramref name="width"/> values (a multiple of B) into its width/B blocks:
    /// <paramref name="coefficients"/> receives, for block j, its B² coefficients at <c>j·stride + offset + u·B + v</c>.
    /// </summary>
    /// <param name="band">B rows of the plane, row-major.</param>
    /// <param name="width">The plane's width.</param>
    /// <param name="columns">Scratch of B·width values.</param>
    /// <param name="coefficients">The destination.</param>
    /// <param name="stride">The distance between consecutive blocks' coefficients.</param>
    /// <param name="offset">Where block 0's coefficients start.</param>
    public void ForwardBand(ReadOnlySpan<float> band, int width, Span<float> columns, Span<float> coefficients, int stride, int offset)
    {
        int b = B;
        // Along the columns: columns[u, x] = Σ_y C[u, y]·band[y, x].
        for (int u = 0; u < b; u++)
        {
            var row = columns.Slice(u * width, width);
            TensorPrimitives.Multiply(band[..width], _basis[u * b], row);
            for (int y = 1; y < b; y++) TensorPrimitives.MultiplyAdd(band.Slice(y * width, width), _basis[u * b + y], row, row);
        }
        // Along the rows of each block: F[u, v] = Σ_x C[v, x]·columns[u, jB + x], B values of v at a time.
        int blocks = width / b;
        if (b == 8 && Vector256.IsHardwareAccelerated)
        {
            var c = _columns8;
            for (int j = 0; j < blocks; j++)
            for (int u = 0; u < 8; u++)
            {
                var s = columns.Slice(u * width + j * 8, 8);
                var f = c[0] * s[0] + c[1] * s[1] + c[2] * s[2] + c[3] * s[3] + c[4] * s[4] + c[5] * s[5] + c[6] * s[6] + c[7] * s[7];
                f.CopyTo(coefficients.Slice(j * stride + offset + u * 8, 8));
            }
        }
        else if (b == 8 && Vector128.IsHardwareAccelerated) // ARM64 (NEON) and x86 without AVX2: the same sums, two halves
        {
            var (lo, hi) = (_columns8Low, _columns8High);
            for (int j = 0; j < blocks; j++)
            for (int u = 0; u < 8; u++)
            {
                var s = columns.Slice(u * width + j * 8, 8);
                var f = coefficients.Slice(j * stride + offset + u * 8, 8);
                (lo[0] * s[0] + lo[1] * s[1] + lo[2] * s[2] + lo[3] * s[3] + lo[4] * s[4] + lo[5] * s[5] + lo[6] * s[6] + lo[7] * s[7]).CopyTo(f);
                (hi[0] * s[0] + hi[1] * s[1] + hi[2] * s[2] + hi[3] * s[3] + hi[4] * s[4] + hi[5] * s[5] + hi[6] * s[6] + hi[7] * s[7]).CopyTo(f[4..]);
            }
        }
        else if (b == 4 && Vector128.IsHardwareAccelerated)
        {
            var c = _columns4;
            for (int j = 0; j < blocks; j++)
            for (int u = 0; u < 4; u++)
            {
                var s = columns.Slice(u * width + j * 4, 4);
                var f = c[0] * s[0] + c[1] * s[1] + c[2] * s[2] + c[3] * s[3];
                f.CopyTo(coefficients.Slice(j * stride + offset + u * 4, 4));
            }
        }
        else
        {
            for (int j = 0; j < blocks; j++)
            for (int u = 0; u < b; u++)
            for (int v = 0; v < b; v++)
            {
                float sum = 0;
                for (int x = 0; x < b; x++) sum += _basis[v * b + x] * columns[u * width + j * b + x];
                coefficients[j * stride + offset + u * b + v] = sum;
            }
        }
    }

    /// <summary>The inverse of one block: <c>f(y, x) = Σ_u Σ_v C[u, y]·C[v, x]·F(u, v)</c>, written into a plane of <paramref name="width"/>.</summary>
    public void InverseBlock(ReadOnlySpan<float> block, Span<float> plane, int width)
    {
        int b = B;
        for (int y = 0; y < b; y++)
        for (int x = 0; x < b; x++)
        {
            double sum = 0;
            for (int u = 0; u < b; u++)
            for (int v = 0; v < b; v++)
                sum += (double)_basis[u * b + y] * _basis[v * b + x] * block[u * b + v];
            plane[y * width + x] = (float)sum;
        }
    }
}
