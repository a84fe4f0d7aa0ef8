using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>
/// Winograd's minimal filtering F(2×2, 3×3) ("Fast Algorithms for Convolutional Neural Networks", Lavin and Gray, 2016)
/// for <see cref="Conv2dLayer"/>'s batched inference on AVX2: a 3×3, stride-1 convolution of channels-last images
/// computed as 16 products per input × output channel pair for each 2×2 output tile, where the direct kernel
/// (<see cref="DirectConvolution"/>) does 36.
/// </summary>
/// <remarks>
/// <para>
/// Each 4×4 input tile d (tiles overlap by two pixels; the image is copied into a zero-padded buffer first) becomes
/// V = Bᵀ d B, adds only; the 16 positions of V, for a block of <see cref="ImagesPerBlock"/> images' tiles, are 16
/// products [tiles × in] · [in × out] with the filters transformed once, U = G g Gᵀ (a 6 × 16 register tile that reads
/// the transformed tiles where they lie and the filters packed in 16-column panels, on the calling thread); each 4×4 product tile m gives the 2×2 outputs Aᵀ m A, plus the bias, then the fused ReLU
/// and the fused 2×2 max pooling (a tile is one pooling window). The transforms run over vectors of 8 channels.
/// </para>
/// <para>
/// Where it runs (a Zen 5 with AVX-512 switched off, docs/cpus.md). A first version, its products through
/// <see cref="Gemm"/>, ran the small CNN's second convolution (14×14×32 → 14×14×64, one thread, batch 32) 1.24–1.27×
/// the direct kernel's speed with blocks of two or four images, 0.73× with one (49 tiles make short products); with
/// the product kernel below the whole CNN runs 1.43–1.62× faster at batches 16 and 256. With AVX-512 the first version
/// was level with the direct kernel (1.01–1.04×), so that tier keeps the direct kernel. A Winograd output differs from the direct kernel's by rounding (about 1e-6 on
/// outputs of order 1): an example scored alone (the direct kernel) and in a batch can differ in the last bits, but
/// each image's result depends only on the image, not on the batch or the threads (every tile runs the same product
/// kernel, whatever block it is in).
/// </para>
/// </remarks>
internal sealed unsafe class WinogradConvolution
{
    /// <summary>
    /// Images whose tiles make one block of products: a 14×14 image pair gives products of 98 rows, and its transformed
    /// tiles and products (200 and 400 KB at 32 → 64 channels) stay in L2. Blocks of four measured the same; one, 0.73× as fast.
    /// </summary>
    public const int ImagesPerBlock = 2;

    /// <summary>
    /// The smallest batch <see cref="Conv2dLayer"/> gives this kernel. A fixed number, not one per thread count, so the
    /// kernel that computes a batch (and its rounding) does not depend on the threads: from 4 images two threads each
    /// have a block of two, where a batch of 2 or 3 would leave a thread without one (the direct kernel's items are rows).
    /// </summary>
    public const int MinBatch = 4;

    [ThreadStatic] private static Workspace? t_input, t_tiles, t_products;

    private readonly int _h, _w, _c, _pad, _outH, _outW, _k, _kp, _tilesY, _tilesX, _paddedH, _paddedW;
    private readonly AlignedArray<float> _filters; // U: [16 positions][out / 16 panels][in][16], out padded to _kp with zeros
    private readonly AlignedArray<float> _bias;

    public WinogradConvolution(int h, int w, int c, int pad, int outH, int outW, int outChannels)
    {
        (_h, _w, _c, _pad, _outH, _outW, _k) = (h, w, c, pad, outH, outW, outChannels);
        _kp = (outChannels + 15) / 16 * 16;
        (_tilesY, _tilesX) = ((outH + 1) / 2, (outW + 1) / 2);
        (_paddedH, _paddedW) = (2 * _tilesY + 2, 2 * _tilesX + 2);
        _filters = new AlignedArray<float>(16 * c * _kp);
        _bias = new AlignedArray<float>(outChannels);
    }

    /// <summary>
    /// Whether this kernel takes the layer: the AVX2 tier, a 3×3 kernel with stride 1, channel counts in whole vectors
    /// of 8, and a fused max pooling (<paramref name="pooling"/>: its window, 0 when none) of window 2 over an even
    /// output, whose windows are the output tiles.
    /// </summary>
    public static bool Supports(VectorIsa isa, int kernel, int stride, int inChannels, int outChannels, int pooling, int outH, int outW) =>
        isa == VectorIsa.Avx2 && kernel == 3 && stride == 1 && inChannels % 8 == 0 && outChannels % 8 == 0
        && (pooling == 0 || (pooling == 2 && outH % 2 == 0 && outW % 2 == 0));

    /// <summary>Transforms the weight [out, 3, 3, in] into U = G g Gᵀ per channel pair, and keeps the bias (zeros when null).</summary>
    public void Pack(float[] weight, float[]? bias)
    {
        Span<float> u = _filters.Span;
        Span<float> g = stackalloc float[9], gg = stackalloc float[12];
        for (int o = 0; o < _k; o++)
        {
            for (int i = 0; i < _c; i++)
            {
                for (int t = 0; t < 9; t++)
                    g[t] = weight[(o * 9 + t) * _c + i];
                for (int col = 0; col < 3; col++) // G g: G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
                {
                    float g0 = g[col], g1 = g[3 + col], g2 = g[6 + col];
                    (gg[col], gg[3 + col], gg[6 + col], gg[9 + col]) = (g0, 0.5f * (g0 + g1 + g2), 0.5f * (g0 - g1 + g2), g2);
                }

                for (int row = 0; row < 4; row++) // (G g) Gᵀ, into position p's panel o / 16: u[p][o / 16][i][o % 16]
                {
                    float a0 = gg[3 * row], a1 = gg[3 * row + 1], a2 = gg[3 * row + 2];
                    int at = (o / 16 * _c + i) * 16 + o % 16, position = _c * _kp;
                    u[(4 * row + 0) * position + at] = a0;
                    u[(4 * row + 1) * position + at] = 0.5f * (a0 + a1 + a2);
                    u[(4 * row + 2) * position + at] = 0.5f * (a0 - a1 + a2);
                    u[(4 * row + 3) * position + at] = a2;
                }
            }
        }

        if (bias is null)
            _bias.Span.Clear();
        else
            bias.CopyTo(_bias.Span);
    }

    /// <summary>
    /// y = the convolution of <paramref name="images"/> images at <paramref name="x"/> ([images, h, w, in]), plus the
    /// bias, with the fused ReLU if <paramref name="relu"/>, and max-pooled 2×2 if <paramref name="pool"/>: y is
    /// [images, outH, outW, out], or [images, outH/2, outW/2, out] pooled. Runs on the calling thread, a block of
    /// <see cref="ImagesPerBlock"/> images at a time.
    /// </summary>
    public void Convolve(float* x, int images, float* y, bool relu, bool pool)
    {
        int tilesPerImage = _tilesY * _tilesX, paddedImage = _paddedH * _paddedW * _c;
        int outputImage = pool ? _tilesY * _tilesX * _k : _outH * _outW * _k;
        int rows = (ImagesPerBlock * tilesPerImage + 5) / 6 * 6; // a position's rows of tiles: whole tiles of the product kernel
        float* input = (t_input ??= new Workspace()).Get(ImagesPerBlock * paddedImage);
        float* tiles = (t_tiles ??= new Workspace()).Get(16 * rows * _c);
        float* products = (t_products ??= new Workspace()).Get(16 * rows * _kp);
        for (int first = 0; first < images; first += ImagesPerBlock)
        {
            int count = Math.Min(ImagesPerBlock, images - first), blockTiles = count * tilesPerImage;
            for (int i = 0; i < count; i++)
            {
                Pad(x + (long)(first + i) * _h * _w * _c, input + (long)i * paddedImage);
                TransformInput(input + (long)i * paddedImage, tiles + (long)i * tilesPerImage * _c, rows);
            }

            // Rows past the block's tiles hold stale values: their products are never read.
            for (int p = 0; p < 16; p++)
            {
                float* a = tiles + (long)p * rows * _c, m = products + (long)p * rows * _kp, u = _filters.Pointer + (long)p * _c * _kp;
                for (int r = 0; r < blockTiles; r += 6)
                    for (int j = 0; j < _kp; j += 16)
                        Product6x16(_c, a + (long)r * _c, u + (long)j * _c, m + (long)r * _kp + j, _kp);
            }

            for (int i = 0; i < count; i++)
                TransformOutput(products + (long)i * tilesPerImage * _kp, rows, y + (long)(first + i) * outputImage, relu, pool);
        }
    }

    /// <summary>
    /// c[6, 16] = a[6, k] · b, with a's rows k apart as the input transform wrote them (no packing) and b one 16-column
    /// panel of the transformed filters ([k][16]); each value sums its k products in order, whatever tile it is in.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Product6x16(int k, float* a, float* b, float* c, int ldc)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < k; p++, a++, b += 16)
        {
            Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8), x;
            x = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(x, b0, c00);
            c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[k]);
            c10 = Fma.MultiplyAdd(x, b0, c10);
            c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2 * k]);
            c20 = Fma.MultiplyAdd(x, b0, c20);
            c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3 * k]);
            c30 = Fma.MultiplyAdd(x, b0, c30);
            c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4 * k]);
            c40 = Fma.MultiplyAdd(x, b0, c40);
            c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5 * k]);
            c50 = Fma.MultiplyAdd(x, b0, c50);
            c51 = Fma.MultiplyAdd(x, b1, c51);
        }

        Vector256.Store(c00, c);
        Vector256.Store(c01, c + 8);
        Vector256.Store(c10, c + ldc);
        Vector256.Store(c11, c + ldc + 8);
        Vector256.Store(c20, c + 2 * ldc);
        Vector256.Store(c21, c + 2 * ldc + 8);
        Vector256.Store(c30, c + 3 * ldc);
        Vector256.Store(c31, c + 3 * ldc + 8);
        Vector256.Store(c40, c + 4 * ldc);
        Vector256.Store(c41, c + 4 * ldc + 8);
        Vector256.Store(c50, c + 5 * ldc);
        Vector256.Store(c51, c + 5 * ldc + 8);
    }

    /// <summary>
    /// Copies one image into the zero-padded buffer: pad rows and columns before it, and after it up to whole tiles.
    /// Only the padding is cleared; the image's own values overwrite the rest.
    /// </summary>
    private void Pad(float* image, float* padded)
    {
        int line = _paddedW * _c;
        int rows = Math.Min(_h, _paddedH - _pad), cols = Math.Min(_w, _paddedW - _pad), right = (_paddedW - _pad - cols) * _c;
        new Span<float>(padded, _pad * line).Clear();
        new Span<float>(padded + (long)(_pad + rows) * line, (_paddedH - _pad - rows) * line).Clear();
        for (int r = 0; r < rows; r++)
        {
            float* to = padded + (long)(r + _pad) * line;
            new Span<float>(to, _pad * _c).Clear();
            new Span<float>(image + (long)r * _w * _c, cols * _c).CopyTo(new Span<float>(to + _pad * _c, cols * _c));
            new Span<float>(to + (_pad + cols) * _c, right).Clear();
        }
    }

    /// <summary>V = Bᵀ d B for each tile of one padded image, to tiles[p · rows + tile, in] (the image's tiles first at <paramref name="tiles"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void TransformInput(float* padded, float* tiles, int rows)
    {
        int line = _paddedW * _c;
        long position = (long)rows * _c; // from one position's tiles to the next
        Vector256<float>* t = stackalloc Vector256<float>[16];
        for (int ty = 0; ty < _tilesY; ty++)
        {
            for (int tx = 0; tx < _tilesX; tx++)
            {
                float* d = padded + (long)2 * ty * line + 2 * tx * _c;
                float* v = tiles + (long)(ty * _tilesX + tx) * _c;
                for (int ch = 0; ch < _c; ch += 8)
                {
                    for (int col = 0; col < 4; col++) // Bᵀ d: Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
                    {
                        Vector256<float> d0 = Vector256.Load(d + col * _c + ch), d1 = Vector256.Load(d + line + col * _c + ch);
                        Vector256<float> d2 = Vector256.Load(d + 2 * line + col * _c + ch), d3 = Vector256.Load(d + 3 * line + col * _c + ch);
                        (t[col], t[4 + col], t[8 + col], t[12 + col]) = (d0 - d2, d1 + d2, d2 - d1, d1 - d3);
                    }

                    for (int row = 0; row < 4; row++) // (Bᵀ d) B
                    {
                        Vector256<float> a0 = t[4 * row], a1 = t[4 * row + 1], a2 = t[4 * row + 2], a3 = t[4 * row + 3];
                        float* out0 = v + 4 * row * position + ch;
                        Vector256.Store(a0 - a2, out0);
                        Vector256.Store(a1 + a2, out0 + position);
                        Vector256.Store(a2 - a1, out0 + 2 * position);
                        Vector256.Store(a1 - a3, out0 + 3 * position);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Aᵀ m A + bias for each tile of one image (its tiles first at <paramref name="products"/>), then the ReLU and the
    /// 2×2 maximum if fused; a tile past the output's last row or column stores only its pixels inside.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void TransformOutput(float* products, int rows, float* y, bool relu, bool pool)
    {
        long position = (long)rows * _kp;
        Vector256<float> floor = relu ? Vector256<float>.Zero : Vector256.Create(float.NegativeInfinity);
        Vector256<float>* s = stackalloc Vector256<float>[8];
        for (int ty = 0; ty < _tilesY; ty++)
        {
            for (int tx = 0; tx < _tilesX; tx++)
            {
                float* m = products + (long)(ty * _tilesX + tx) * _kp;
                for (int ch = 0; ch < _k; ch += 8)
                {
                    for (int col = 0; col < 4; col++) // Aᵀ m: Aᵀ = [1 1 1 0; 0 1 −1 −1]
                    {
                        Vector256<float> m0 = Vector256.Load(m + col * position + ch), m1 = Vector256.Load(m + (4 + col) * position + ch);
                        Vector256<float> m2 = Vector256.Load(m + (8 + col) * position + ch), m3 = Vector256.Load(m + (12 + col) * position + ch);
                        (s[col], s[4 + col]) = (m0 + m1 + m2, m1 - m2 - m3);
                    }

                    // (Aᵀ m) A + bias, then the fused ReLU as the direct kernel applies it (vmaxps with the floor first:
                    // a NaN or −0 passes through) and its pooling's maximum.
                    Vector256<float> bias = Vector256.Load(_bias.Pointer + ch);
                    Vector256<float> y00 = Avx.Max(floor, s[0] + s[1] + s[2] + bias), y01 = Avx.Max(floor, s[1] - s[2] - s[3] + bias);
                    Vector256<float> y10 = Avx.Max(floor, s[4] + s[5] + s[6] + bias), y11 = Avx.Max(floor, s[5] - s[6] - s[7] + bias);
                    if (pool)
                    {
                        Vector256.Store(Vector256.Max(Vector256.Max(Vector256.Max(y00, y01), y10), y11), y + (long)(ty * _tilesX + tx) * _k + ch);
                        continue;
                    }

                    int oy = 2 * ty, ox = 2 * tx;
                    float* at = y + ((long)oy * _outW + ox) * _k + ch;
                    Vector256.Store(y00, at);
                    if (ox + 1 < _outW)
                        Vector256.Store(y01, at + _k);
                    if (oy + 1 < _outH)
                    {
                        Vector256.Store(y10, at + (long)_outW * _k);
                        if (ox + 1 < _outW)
                            Vector256.Store(y11, at + (long)_outW * _k + _k);
                    }
                }
            }
        }
    }
}
