using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>
/// The direct convolution kernel of <see cref="Conv2dLayer"/>'s inference, for one vector tier: an output row of a
/// channels-last image without im2col. The window rows the output row reads are copied into a per-thread band with zero
/// columns for the padding (in L1), so every pixel's window is whole along x; a register tile of neighbouring pixels ×
/// output channels then adds each input tap (broadcast) times a row of the packed weight.
/// </summary>
/// <remarks>
/// <para>
/// The tiles are sized for each tier's registers, as GEMM micro-kernels are (MLAS's NCHWc convolutions block the same
/// way: a few 8- or 16-channel filter blocks × a few output pixels in accumulators, the input broadcast):
/// AVX-512 (32 zmm): six pixels × 64 channels (24 accumulators, four weight vectors per tap), or four pixels × ≤ 32;
/// AVX2 (16 ymm): six pixels × 16 channels (12 accumulators, two weight vectors, one broadcast: 8 loads per 12 FMAs);
/// Vector128 (16 xmm on SSE, 32 on NEON): two pixels × 16 channels (8 accumulators, four weight vectors).
/// </para>
/// <para>
/// The weight is packed [out / block, patch, block]: one block's taps are contiguous, so a row's tiles stream one
/// block (16 channels × a 288-value patch = 18 KB) from L1. The AVX-512 block is all the output channels.
/// </para>
/// </remarks>
internal sealed unsafe class DirectConvolution
{
    /// <summary>The largest patch (k·k·in values) the direct kernel takes, besides any patch with exactly 64 output channels.</summary>
    private const int MaxPatch = 32;

    private readonly int _h, _w, _c, _k, _stride, _pad, _outW, _n, _block, _patch;
    private readonly int[] _tapOffsets;
    private readonly float[] _weight;
    [ThreadStatic] private static Workspace? t_band;

    public DirectConvolution(VectorIsa isa, int h, int w, int c, int k, int stride, int pad, int outW, int outChannels)
    {
        if (!Supports(isa, k * k * c, outChannels))
            throw new ArgumentException($"The direct convolution does not take {outChannels} output channels of a {k}×{k}×{c} patch on {VectorIsas.Describe(isa)}.");
        Isa = isa;
        (_h, _w, _c, _k, _stride, _pad, _outW, _n) = (h, w, c, k, stride, pad, outW, outChannels);
        _patch = k * k * c;
        _block = isa == VectorIsa.Avx512 ? outChannels : 16;
        _weight = new float[outChannels * _patch];
        // Tap t = (ky·k + kx)·in + ci of a window reads the padded band (w + 2·pad pixels wide) at offset
        // (ky·(w + 2·pad) + kx)·in + ci from the window's corner.
        _tapOffsets = new int[_patch];
        for (int ky = 0, t = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
                for (int ci = 0; ci < c; ci++, t++)
                    _tapOffsets[t] = (ky * (w + 2 * pad) + kx) * c + ci;
    }

    /// <summary>The tier the kernels run.</summary>
    public VectorIsa Isa { get; }

    /// <summary>The output channel blocks (16 channels each; one on AVX-512): a row can be computed a range of blocks at a time.</summary>
    public int Blocks => _n / _block;

    /// <summary>
    /// Whether the direct kernel takes the layer: a vector tier, output channels a multiple of 16, and a small patch
    /// (for a K = 9 product im2col + GEMM spends most of its time packing) or exactly 64 output channels.
    /// </summary>
    public static bool Supports(VectorIsa isa, int patch, int outChannels) =>
        isa >= VectorIsa.Vector128 && outChannels % 16 == 0 && (patch <= MaxPatch || outChannels == 64);

    /// <summary>Packs the layer's weight [out, patch] into the kernels' blocks.</summary>
    public void Pack(float[] weight)
    {
        for (int o = 0; o < _n; o++)
        {
            int block = o / _block, lane = o % _block;
            for (int p = 0; p < _patch; p++)
                _weight[(block * _patch + p) * _block + lane] = weight[o * _patch + p];
        }
    }

    /// <summary>
    /// Output row <paramref name="oy"/> (outW × out channels, plus the bias if any) of the image at <paramref name="x"/>,
    /// into <paramref name="row"/>: the channels of blocks [<paramref name="block0"/>, <paramref name="block1"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ConvolveRow(float* x, int oy, float* bias, float* row, int block0, int block1)
    {
        int bandRow = (_w + 2 * _pad) * _c;
        int iy0 = oy * _stride - _pad, ky0 = Math.Max(0, -iy0), ky1 = Math.Min(_k, _h - iy0);
        float* band = (t_band ??= new Workspace()).Get(_k * bandRow);
        for (int ky = ky0; ky < ky1; ky++)
        {
            float* line = band + ky * bandRow;
            new Span<float>(line, _pad * _c).Clear();
            new Span<float>(line + (_pad + _w) * _c, _pad * _c).Clear();
            Buffer.MemoryCopy(x + (iy0 + ky) * _w * _c, line + _pad * _c, (long)_w * _c * sizeof(float), (long)_w * _c * sizeof(float));
        }

        // The taps of window rows [ky0, ky1) are one contiguous run: one flat loop, whatever k and the channel count.
        int t0 = ky0 * _k * _c, t1 = ky1 * _k * _c;
        fixed (float* wt = _weight)
        fixed (int* offsets = _tapOffsets)
        {
            switch (Isa)
            {
                case VectorIsa.Avx512: Row512(band, wt, offsets, t0, t1, bias, row); break;
                case VectorIsa.Avx2: Row256(band, wt, offsets, t0, t1, bias, row, block0 * 16, block1 * 16); break;
                default: Row128(band, wt, offsets, t0, t1, bias, row, block0 * 16, block1 * 16); break;
            }
        }
    }

    /// <summary>max(v, 0) over <paramref name="length"/> (a multiple of 16) values, keeping NaN as the ReLU layer does.</summary>
    public void Rectify(float* row, int length)
    {
        int i = 0;
        if (Isa == VectorIsa.Avx512)
            for (; i < length; i += Vector512<float>.Count)
                Vector512.Store(ReLU(Vector512.Load(row + i)), row + i);
        else if (Isa == VectorIsa.Avx2)
            for (; i < length; i += Vector256<float>.Count)
                Vector256.Store(ReLU(Vector256.Load(row + i)), row + i);
        else
            for (; i < length; i += Vector128<float>.Count)
                Vector128.Store(ReLU(Vector128.Load(row + i)), row + i);
    }

    /// <summary>
    /// Max pooling with window = stride = <paramref name="window"/> of <paramref name="window"/> output rows at
    /// <paramref name="rows"/> (outW × out channels each) into one pooled row of <paramref name="pooledW"/> pixels at
    /// <paramref name="y"/>, then the ReLU (which commutes with the maximum) if <paramref name="relu"/>: the channels of
    /// blocks [<paramref name="block0"/>, <paramref name="block1"/>).
    /// </summary>
    public void MaxPool(float* rows, int window, int pooledW, bool relu, float* y, int block0, int block1)
    {
        int n = _n, length = _outW * n, end = block1 * _block;
        for (int px = 0; px < pooledW; px++)
        {
            float* first = rows + px * window * n;
            int c = block0 * _block;
            if (Isa == VectorIsa.Avx512)
                for (; c < end; c += Vector512<float>.Count)
                {
                    Vector512<float> best = Vector512.Load(first + c);
                    for (int r = 0; r < window; r++)
                        for (int dx = 0; dx < window; dx++)
                            best = Vector512.Max(best, Vector512.Load(first + r * length + dx * n + c));
                    Vector512.Store(relu ? ReLU(best) : best, y + px * n + c);
                }
            else if (Isa == VectorIsa.Avx2)
                for (; c < end; c += Vector256<float>.Count)
                {
                    Vector256<float> best = Vector256.Load(first + c);
                    for (int r = 0; r < window; r++)
                        for (int dx = 0; dx < window; dx++)
                            best = Vector256.Max(best, Vector256.Load(first + r * length + dx * n + c));
                    Vector256.Store(relu ? ReLU(best) : best, y + px * n + c);
                }
            else
                for (; c < end; c += Vector128<float>.Count)
                {
                    Vector128<float> best = Vector128.Load(first + c);
                    for (int r = 0; r < window; r++)
                        for (int dx = 0; dx < window; dx++)
                            best = Vector128.Max(best, Vector128.Load(first + r * length + dx * n + c));
                    Vector128.Store(relu ? ReLU(best) : best, y + px * n + c);
                }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ReLU(Vector512<float> v) => Vector512.ConditionalSelect(Vector512.LessThan(v, Vector512<float>.Zero), Vector512<float>.Zero, v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ReLU(Vector256<float> v) => Vector256.ConditionalSelect(Vector256.LessThan(v, Vector256<float>.Zero), Vector256<float>.Zero, v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> ReLU(Vector128<float> v) => Vector128.ConditionalSelect(Vector128.LessThan(v, Vector128<float>.Zero), Vector128<float>.Zero, v);

    /// <summary>x·y + z, fused.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> MulAdd(Vector512<float> x, Vector512<float> y, Vector512<float> z) => Avx512F.FusedMultiplyAdd(x, y, z);

    /// <summary>x·y + z, fused.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> x, Vector256<float> y, Vector256<float> z) => Fma.MultiplyAdd(x, y, z);

    /// <summary>x·y + z: fused where the CPU has it (NEON, FMA), multiply then add otherwise (never a software fused multiply-add).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> MulAdd(Vector128<float> x, Vector128<float> y, Vector128<float> z) => Vector128.MultiplyAddEstimate(x, y, z);

    // ---- AVX-512: the weight is one block [patch, out] ----

    /// <summary>The row on AVX-512: six, four or two pixels × 64 channels, or four pixels × ≤ 32, then one pixel at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Row512(float* band, float* wt, int* offsets, int t0, int t1, float* bias, float* row)
    {
        int n = _n, step = _stride * _c, ox = 0;
        if (n == 64)
        {
            for (; ox + 5 < _outW; ox += 6)
                Pixels64(band + ox * step, wt, offsets, t0, t1, bias, row + ox * n, 6);
            for (; ox + 3 < _outW; ox += 4)
                Pixels64(band + ox * step, wt, offsets, t0, t1, bias, row + ox * n, 4);
            for (; ox + 1 < _outW; ox += 2)
                Pixels64(band + ox * step, wt, offsets, t0, t1, bias, row + ox * n, 2);
        }
        else if (n <= 32)
        {
            for (; ox + 3 < _outW; ox += 4)
                FourPixels(band + ox * step, wt, offsets, t0, t1, bias, row + ox * n);
        }

        for (; ox < _outW; ox++)
        {
            float* corner = band + ox * step, output = row + ox * n;
            for (int cb = 0; cb < n; cb += 64)
            {
                int width = Math.Min(64, n - cb);
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int t = t0; t < t1; t++)
                {
                    Vector512<float> v = Vector512.Create(corner[offsets[t]]);
                    float* ws = wt + t * n + cb;
                    a0 = MulAdd(v, Vector512.Load(ws), a0);
                    if (width > 16) a1 = MulAdd(v, Vector512.Load(ws + 16), a1);
                    if (width > 32) a2 = MulAdd(v, Vector512.Load(ws + 32), a2);
                    if (width > 48) a3 = MulAdd(v, Vector512.Load(ws + 48), a3);
                }

                if (bias is not null)
                {
                    a0 += Vector512.Load(bias + cb);
                    if (width > 16) a1 += Vector512.Load(bias + cb + 16);
                    if (width > 32) a2 += Vector512.Load(bias + cb + 32);
                    if (width > 48) a3 += Vector512.Load(bias + cb + 48);
                }

                Vector512.Store(a0, output + cb);
                if (width > 16) Vector512.Store(a1, output + cb + 16);
                if (width > 32) Vector512.Store(a2, output + cb + 32);
                if (width > 48) Vector512.Store(a3, output + cb + 48);
            }
        }
    }

    /// <summary>Four output pixels in a row, ≤ 32 output channels: <paramref name="x"/> is the first pixel's window corner in the band.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void FourPixels(float* x, float* wt, int* offsets, int t0, int t1, float* bias, float* output)
    {
        int n = _n, step = _stride * _c;
        bool two = n > 16;
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
        float* x1 = x + step, x2 = x + 2 * step, x3 = x + 3 * step, ws = wt + t0 * n;
        for (int* o = offsets + t0, end = offsets + t1; o < end; o++, ws += n)
        {
            nint i = *o;
            Vector512<float> w0 = Vector512.Load(ws), w1 = two ? Vector512.Load(ws + 16) : default;
            Vector512<float> v = Vector512.Create(x[i]);
            a0 = MulAdd(v, w0, a0);
            a1 = MulAdd(v, w1, a1);
            v = Vector512.Create(x1[i]);
            b0 = MulAdd(v, w0, b0);
            b1 = MulAdd(v, w1, b1);
            v = Vector512.Create(x2[i]);
            c0 = MulAdd(v, w0, c0);
            c1 = MulAdd(v, w1, c1);
            v = Vector512.Create(x3[i]);
            d0 = MulAdd(v, w0, d0);
            d1 = MulAdd(v, w1, d1);
        }

        Vector512<float> bias0 = bias is null ? default : Vector512.Load(bias), bias1 = bias is null || !two ? default : Vector512.Load(bias + 16);
        Vector512.Store(a0 + bias0, output);
        Vector512.Store(b0 + bias0, output + n);
        Vector512.Store(c0 + bias0, output + 2 * n);
        Vector512.Store(d0 + bias0, output + 3 * n);
        if (two)
        {
            Vector512.Store(a1 + bias1, output + 16);
            Vector512.Store(b1 + bias1, output + n + 16);
            Vector512.Store(c1 + bias1, output + 2 * n + 16);
            Vector512.Store(d1 + bias1, output + 3 * n + 16);
        }
    }

    /// <summary>
    /// As <see cref="FourPixels"/> for exactly 64 output channels and <paramref name="count"/> (2, 4 or 6) pixels:
    /// four weight registers per tap, up to 24 accumulators. Called with a constant count, so the tests fold away.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Pixels64(float* x, float* wt, int* offsets, int t0, int t1, float* bias, float* output, int count)
    {
        int step = _stride * _c;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
        float* x1 = x + step, x2 = x + 2 * step, x3 = x + 3 * step, x4 = x + 4 * step, x5 = x + 5 * step, ws = wt + t0 * 64;
        for (int* o = offsets + t0, end = offsets + t1; o < end; o++, ws += 64)
        {
            nint i = *o;
            Vector512<float> w0 = Vector512.Load(ws), w1 = Vector512.Load(ws + 16), w2 = Vector512.Load(ws + 32), w3 = Vector512.Load(ws + 48);
            Vector512<float> v = Vector512.Create(x[i]); a0 = MulAdd(v, w0, a0); a1 = MulAdd(v, w1, a1); a2 = MulAdd(v, w2, a2); a3 = MulAdd(v, w3, a3);
            v = Vector512.Create(x1[i]); b0 = MulAdd(v, w0, b0); b1 = MulAdd(v, w1, b1); b2 = MulAdd(v, w2, b2); b3 = MulAdd(v, w3, b3);
            if (count > 2)
            {
                v = Vector512.Create(x2[i]); c0 = MulAdd(v, w0, c0); c1 = MulAdd(v, w1, c1); c2 = MulAdd(v, w2, c2); c3 = MulAdd(v, w3, c3);
                v = Vector512.Create(x3[i]); d0 = MulAdd(v, w0, d0); d1 = MulAdd(v, w1, d1); d2 = MulAdd(v, w2, d2); d3 = MulAdd(v, w3, d3);
            }

            if (count > 4)
            {
                v = Vector512.Create(x4[i]); e0 = MulAdd(v, w0, e0); e1 = MulAdd(v, w1, e1); e2 = MulAdd(v, w2, e2); e3 = MulAdd(v, w3, e3);
                v = Vector512.Create(x5[i]); f0 = MulAdd(v, w0, f0); f1 = MulAdd(v, w1, f1); f2 = MulAdd(v, w2, f2); f3 = MulAdd(v, w3, f3);
            }
        }

        Store64(a0, a1, a2, a3, bias, output);
        Store64(b0, b1, b2, b3, bias, output + 64);
        if (count > 2)
        {
            Store64(c0, c1, c2, c3, bias, output + 128);
            Store64(d0, d1, d2, d3, bias, output + 192);
        }

        if (count > 4)
        {
            Store64(e0, e1, e2, e3, bias, output + 256);
            Store64(f0, f1, f2, f3, bias, output + 320);
        }
    }


    /// <summary>Stores one pixel's 64 output channels, plus the bias.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store64(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3, float* bias, float* output)
    {
        if (bias is not null)
        {
            a0 += Vector512.Load(bias);
            a1 += Vector512.Load(bias + 16);
            a2 += Vector512.Load(bias + 32);
            a3 += Vector512.Load(bias + 48);
        }

        Vector512.Store(a0, output);
        Vector512.Store(a1, output + 16);
        Vector512.Store(a2, output + 32);
        Vector512.Store(a3, output + 48);
    }

    // ---- AVX2 + FMA: blocks of 16 channels (two ymm), six pixels ----

    /// <summary>The row on AVX2: for each 16-channel block (its weights stay in L1 across the row), six pixels at a time, then four, two, one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Row256(float* band, float* wt, int* offsets, int t0, int t1, float* bias, float* row, int c0, int c1)
    {
        int n = _n, step = _stride * _c;
        for (int cb = c0; cb < c1; cb += 16)
        {
            float* w = wt + cb * _patch, b = bias is null ? null : bias + cb, output = row + cb;
            int ox = 0;
            for (; ox + 5 < _outW; ox += 6)
                Pixels256(band + ox * step, w, offsets, t0, t1, b, output + ox * n, 6);
            for (; ox + 3 < _outW; ox += 4)
                Pixels256(band + ox * step, w, offsets, t0, t1, b, output + ox * n, 4);
            for (; ox + 1 < _outW; ox += 2)
                Pixels256(band + ox * step, w, offsets, t0, t1, b, output + ox * n, 2);
            for (; ox < _outW; ox++)
                Pixels256(band + ox * step, w, offsets, t0, t1, b, output + ox * n, 1);
        }
    }

    /// <summary>
    /// <paramref name="count"/> (1, 2, 4 or 6, a constant at each call) pixels × one 16-channel block: two weight
    /// vectors per tap, up to 12 accumulators (16 ymm registers: 12 + 2 + the broadcast).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Pixels256(float* x, float* w, int* offsets, int t0, int t1, float* bias, float* output, int count)
    {
        int step = _stride * _c;
        Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default;
        Vector256<float> d0 = default, d1 = default, e0 = default, e1 = default, f0 = default, f1 = default;
        // One base pointer per pixel and a walking weight pointer: each broadcast is one instruction on a [base + index]
        // address, so the loop is 8 loads and 12 FMAs with little else (the decoders of a Zen 2/3 have no room to spare).
        float* x1 = x + step, x2 = x + 2 * step, x3 = x + 3 * step, x4 = x + 4 * step, x5 = x + 5 * step, ws = w + t0 * 16;
        for (int* o = offsets + t0, end = offsets + t1; o < end; o++, ws += 16)
        {
            nint i = *o;
            Vector256<float> w0 = Vector256.Load(ws), w1 = Vector256.Load(ws + 8);
            Vector256<float> v = Vector256.Create(x[i]); a0 = MulAdd(v, w0, a0); a1 = MulAdd(v, w1, a1);
            if (count > 1) { v = Vector256.Create(x1[i]); b0 = MulAdd(v, w0, b0); b1 = MulAdd(v, w1, b1); }
            if (count > 2)
            {
                v = Vector256.Create(x2[i]); c0 = MulAdd(v, w0, c0); c1 = MulAdd(v, w1, c1);
                v = Vector256.Create(x3[i]); d0 = MulAdd(v, w0, d0); d1 = MulAdd(v, w1, d1);
            }

            if (count > 4)
            {
                v = Vector256.Create(x4[i]); e0 = MulAdd(v, w0, e0); e1 = MulAdd(v, w1, e1);
                v = Vector256.Create(x5[i]); f0 = MulAdd(v, w0, f0); f1 = MulAdd(v, w1, f1);
            }
        }

        int n = _n;
        Store16(a0, a1, bias, output);
        if (count > 1) Store16(b0, b1, bias, output + n);
        if (count > 2)
        {
            Store16(c0, c1, bias, output + 2 * n);
            Store16(d0, d1, bias, output + 3 * n);
        }

        if (count > 4)
        {
            Store16(e0, e1, bias, output + 4 * n);
            Store16(f0, f1, bias, output + 5 * n);
        }
    }

    /// <summary>Stores one pixel's 16 channels of a block, plus the bias.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16(Vector256<float> a0, Vector256<float> a1, float* bias, float* output)
    {
        if (bias is not null)
        {
            a0 += Vector256.Load(bias);
            a1 += Vector256.Load(bias + 8);
        }

        Vector256.Store(a0, output);
        Vector256.Store(a1, output + 8);
    }

    // ---- Vector128 (SSE, NEON): blocks of 16 channels (four vectors), three pixels ----

    /// <summary>The row on Vector128: for each 16-channel block, two pixels at a time, then one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Row128(float* band, float* wt, int* offsets, int t0, int t1, float* bias, float* row, int c0, int c1)
    {
        int n = _n, step = _stride * _c;
        for (int cb = c0; cb < c1; cb += 16)
        {
            float* w = wt + cb * _patch, b = bias is null ? null : bias + cb, output = row + cb;
            int ox = 0;
            for (; ox + 1 < _outW; ox += 2)
                Pixels128(band + ox * step, w, offsets, t0, t1, b, output + ox * n, 2);
            for (; ox < _outW; ox++)
                Pixels128(band + ox * step, w, offsets, t0, t1, b, output + ox * n, 1);
        }
    }

    /// <summary>
    /// <paramref name="count"/> (1 or 2, a constant at each call) pixels × one 16-channel block: four weight vectors per
    /// tap, up to 8 accumulators. Multiply-add is fused where the CPU has it (NEON, FMA), multiply then add on SSE. A
    /// third pixel does not fit x86's 16 registers (with FMA, or with the products' temporaries without): the JIT
    /// spilled accumulators, and the layer took 3× the AVX2 kernel's time instead of 2×.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Pixels128(float* x, float* w, int* offsets, int t0, int t1, float* bias, float* output, int count)
    {
        int step = _stride * _c;
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        float* x1 = x + step, ws = w + t0 * 16;
        for (int* o = offsets + t0, end = offsets + t1; o < end; o++, ws += 16)
        {
            nint i = *o;
            Vector128<float> w0 = Vector128.Load(ws), w1 = Vector128.Load(ws + 4), w2 = Vector128.Load(ws + 8), w3 = Vector128.Load(ws + 12);
            Vector128<float> v = Vector128.Create(x[i]);
            a0 = MulAdd(v, w0, a0); a1 = MulAdd(v, w1, a1);
            a2 = MulAdd(v, w2, a2); a3 = MulAdd(v, w3, a3);
            if (count > 1)
            {
                v = Vector128.Create(x1[i]);
                b0 = MulAdd(v, w0, b0); b1 = MulAdd(v, w1, b1);
                b2 = MulAdd(v, w2, b2); b3 = MulAdd(v, w3, b3);
            }
        }

        int n = _n;
        Store16(a0, a1, a2, a3, bias, output);
        if (count > 1) Store16(b0, b1, b2, b3, bias, output + n);
    }

    /// <summary>Stores one pixel's 16 channels of a block, plus the bias.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16(Vector128<float> a0, Vector128<float> a1, Vector128<float> a2, Vector128<float> a3, float* bias, float* output)
    {
        if (bias is not null)
        {
            a0 += Vector128.Load(bias);
            a1 += Vector128.Load(bias + 4);
            a2 += Vector128.Load(bias + 8);
            a3 += Vector128.Load(bias + 12);
        }

        Vector128.Store(a0, output);
        Vector128.Store(a1, output + 4);
        Vector128.Store(a2, output + 8);
        Vector128.Store(a3, output + 12);
    }
}
