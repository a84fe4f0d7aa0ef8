using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>
/// The direct convolution kernel of <see cref="Conv2dLayer"/>'s inference, for one vector tier: output rows of a
/// channels-last image without im2col. The input lines the rows read are copied into a per-thread band with zero
/// columns (and zero lines) for the padding, so every pixel's window is whole; a register tile of neighbouring pixels ×
/// output channels then adds each input tap (broadcast) times a row of the packed weight.
/// </summary>
/// <remarks>
/// <para>
/// The tiles are sized for each tier's registers, as GEMM micro-kernels are (MLAS's NCHWc convolutions block the same
/// way: a few 8- or 16-channel filter blocks × a few output pixels in accumulators, the input broadcast):
/// AVX-512 (32 zmm): up to six pixels × 64 channels (24 accumulators, four weight vectors per tap);
/// AVX2 (16 ymm): up to six pixels × 16 channels (12 accumulators, two weight vectors, one broadcast);
/// Vector128 (16 xmm on SSE, 32 on NEON): up to two pixels × 16 channels (8 accumulators, four weight vectors).
/// Consecutive rows that take the same taps (a run) are split into tiles as even as the tier allows, larger tiles last
/// (7 = 3 + 4; a 14-pixel row 4 + 5 + 5, two of them 5 + 5 + 6 + 6 + 6), a tile ending one row and starting the next:
/// a one-pixel tile waits on the multiply-add latency, and fuller tiles hide it better.
/// </para>
/// <para>
/// Any channel count and any patch: the output channels, padded with zero weights to whole vectors, form as few groups
/// of at most 64 (AVX-512) or 16 channels as they can, their vectors shared out evenly; when the channel count is not
/// a whole number of vectors the tiles write a padded per-thread scratch that is copied out (a fused max pooling
/// reads the window's rows from its scratch anyway and ends each pooled pixel in a masked store instead). The taps are taken in chunks whose weights (about 24 KB) stay in L1 while
/// every tile of the band's rows uses them (the accumulators go through the output between chunks, which keeps each
/// value's order of additions, so results do not depend on how rows are grouped); a work item of several rows, or of
/// several whole images when the batch gives each thread images of its own, reads a large layer's weights once for
/// them all instead of once a row.
/// </para>
/// <para>
/// The weight is packed [group, patch, group width]; the bias (padded) starts the first chunk's accumulators, and the
/// last chunk applies a fused ReLU before its store.
/// </para>
/// </remarks>
internal sealed unsafe class DirectConvolution
{
    /// <summary>Weight bytes of one chunk of taps of a channel group: with the band it stays in a 32 KB L1.</summary>
    private const int ChunkBytes = 24 * 1024;

    private readonly int _h, _w, _c, _k, _stride, _pad, _outH, _outW, _n, _patch;
    private readonly int _lanes, _padded, _chunk, _maxPixels;
    private readonly int[] _groupStart; // group g's first channel; its packed width is _groupStart[g + 1] − _groupStart[g]
    private readonly int[] _tapOffsets;
    private readonly float[] _weight, _bias;
    [ThreadStatic] private static Workspace? t_band, t_scratch;

    public DirectConvolution(VectorIsa isa, int h, int w, int c, int k, int stride, int pad, int outH, int outW, int outChannels)
    {
        if (!Supports(isa, k * k * c, outChannels))
            throw new ArgumentException($"The direct convolution does not run on {VectorIsas.Describe(isa)}.");
        Isa = isa;
        (_h, _w, _c, _k, _stride, _pad, _outH, _outW, _n) = (h, w, c, k, stride, pad, outH, outW, outChannels);
        _patch = k * k * c;
        int group;
        (_lanes, group, _maxPixels) = isa switch
        {
            VectorIsa.Avx512 => (16, 64, 6),
            VectorIsa.Avx2 => (8, 16, 6),
            _ => (4, 16, 2),
        };
        _padded = (outChannels + _lanes - 1) / _lanes * _lanes;
        // As few groups as the widest allows, their vectors shared out evenly (139 channels on AVX-512: 3 + 3 + 3
        // vectors, not 4 + 4 + 1, whose one-vector tiles would wait on loads).
        int vectors = _padded / _lanes, most = group / _lanes, groups = (vectors + most - 1) / most;
        _groupStart = new int[groups + 1];
        for (int g = 0; g < groups; g++)
            _groupStart[g + 1] = _groupStart[g] + (vectors / groups + (g < vectors % groups ? 1 : 0)) * _lanes;
        _chunk = Math.Max(1, ChunkBytes / (group * sizeof(float)));
        _weight = new float[_padded * _patch];
        _bias = new float[_padded];
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

    /// <summary>The output channel groups (up to 64 channels on AVX-512, 16 otherwise): a row can be computed a range of groups at a time.</summary>
    public int Blocks => _groupStart.Length - 1;

    /// <summary>Whether the direct kernel runs on <paramref name="isa"/>: any vector tier, any patch and channel count.</summary>
    public static bool Supports(VectorIsa isa, int patch, int outChannels) => isa >= VectorIsa.Vector128 && patch > 0 && outChannels > 0;

    /// <summary>Packs the layer's weight [out, patch] into the kernels' groups, and its bias (null: none), zero-padded to whole vectors.</summary>
    public void Pack(float[] weight, float[]? bias)
    {
        for (int g = 0, o = 0; o < _n; o++)
        {
            if (o == _groupStart[g + 1]) g++;
            int width = Width(g), lane = o - _groupStart[g];
            for (int p = 0; p < _patch; p++)
                _weight[_groupStart[g] * _patch + p * width + lane] = weight[o * _patch + p];
        }

        if (bias is null) Array.Clear(_bias);
        else bias.CopyTo(_bias, 0);
    }

    /// <summary>Group <paramref name="g"/>'s packed width, whole vectors (the last group's padding channels have zero weights).</summary>
    private int Width(int g) => _groupStart[g + 1] - _groupStart[g];

    /// <summary>
    /// Output rows [<paramref name="oy0"/>, <paramref name="oy1"/>) (outW × out channels each) of
    /// <paramref name="images"/> consecutive images from <paramref name="x"/> (several only with every row) into
    /// <paramref name="y"/>, which holds the first image's row <paramref name="oy0"/> first: the channels of groups
    /// [<paramref name="block0"/>, <paramref name="block1"/>), plus the bias, then the ReLU if <paramref name="relu"/>.
    /// </summary>
    public void ConvolveRows(float* x, int images, int oy0, int oy1, float* y, int block0, int block1, bool relu)
    {
        if (_padded == _n)
        {
            Compute(x, images, oy0, oy1, y, _n, block0, block1, relu);
            return;
        }

        int pixels = images * (oy1 - oy0) * _outW;
        float* scratch = (t_scratch ??= new Workspace()).Get(pixels * _padded);
        Compute(x, images, oy0, oy1, scratch, _padded, block0, block1, relu);
        CopyOut(scratch, pixels, y, block0, block1);
    }

    /// <summary>
    /// How many whole images a work item should take so that their padded input lines and output (about 256 KB) stay
    /// in L2 while a chunk of the weight is used on all of them: a large layer's weight is then read once for them all.
    /// </summary>
    public int ImagesPerItem
    {
        get
        {
            long bytes = ((long)((_outH - 1) * _stride + _k) * (_w + 2 * _pad) * _c + (long)_outH * _outW * _padded) * sizeof(float);
            return (int)Math.Clamp(256 * 1024 / bytes, 1, 64);
        }
    }

    /// <summary>
    /// Pooled output rows [<paramref name="py0"/>, <paramref name="py1"/>) of a max pooling with window = stride =
    /// <paramref name="window"/> over this convolution (plus the bias, then the ReLU if <paramref name="relu"/>, which
    /// commutes with the maximum), into <paramref name="y"/> (<paramref name="pooledW"/> × out channels a row): the
    /// channels of groups [<paramref name="block0"/>, <paramref name="block1"/>). The windows' rows stay in a
    /// per-thread scratch.
    /// </summary>
    public void ConvolvePooled(float* x, int py0, int py1, int window, int pooledW, bool relu, float* y, int block0, int block1)
    {
        int rowFloats = window * _outW * _padded;
        float* rows = (t_scratch ??= new Workspace()).Get((py1 - py0) * rowFloats);
        Compute(x, 1, py0 * window, py1 * window, rows, _padded, block0, block1, relu);
        for (int py = py0; py < py1; py++)
            MaxPool(rows + (long)(py - py0) * rowFloats, window, pooledW, y + (long)(py - py0) * pooledW * _n, block0, block1);
    }

    /// <summary>
    /// How many pooled rows of <paramref name="window"/> a work item may take: their convolution rows (up to 28 KB)
    /// stay in L1 for the pooling. Against one pooled row an item (the small CNN, AVX2, batch 16, medians of 9
    /// alternating rounds): two threads took 0.88× the time on the first layer and 0.98× on the second, one thread
    /// 1.00× and 0.96×; items of up to 64 KB were slower on two threads (1.03× and 1.06×).
    /// </summary>
    public int PooledRowsPerItem(int window) => Math.Max(1, 28 * 1024 / (window * _outW * _padded * sizeof(float)));

    /// <summary>Copies <paramref name="pixels"/> pixels' channels of groups [block0, block1) from the padded layout to <paramref name="y"/> (out channels a pixel).</summary>
    private void CopyOut(float* padded, int pixels, float* y, int block0, int block1)
    {
        int c0 = _groupStart[block0], c1 = Math.Min(_groupStart[block1], _n);
        long bytes = (long)(c1 - c0) * sizeof(float);
        for (int p = 0; p < pixels; p++)
            Buffer.MemoryCopy(padded + (long)p * _padded + c0, y + (long)p * _n + c0, bytes, bytes);
    }

    /// <summary>
    /// Rows [oy0, oy1) of <paramref name="images"/> images into <paramref name="output"/> (pixels
    /// <paramref name="stride"/> floats apart, channel c at offset c, the images' rows one after another): for each
    /// chunk of taps and each group, every image's rows' tiles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Compute(float* x, int images, int oy0, int oy1, float* output, int stride, int block0, int block1, bool relu)
    {
        int bandW = _w + 2 * _pad, lineLength = bandW * _c, lines = (oy1 - oy0 - 1) * _stride + _k, iy0 = oy0 * _stride - _pad, rows = oy1 - oy0;
        long bandSize = (long)lines * lineLength, imageSize = (long)_h * _w * _c;
        float* band = (t_band ??= new Workspace()).Get((int)(images * bandSize));
        for (int image = 0; image < images; image++)
            for (int l = 0; l < lines; l++)
            {
                float* line = band + image * bandSize + (long)l * lineLength;
                int iy = iy0 + l;
                if (iy < 0 || iy >= _h)
                {
                    new Span<float>(line, lineLength).Clear();
                    continue;
                }

                new Span<float>(line, _pad * _c).Clear();
                new Span<float>(line + (_pad + _w) * _c, _pad * _c).Clear();
                Buffer.MemoryCopy(x + image * imageSize + (long)iy * _w * _c, line + _pad * _c, (long)_w * _c * sizeof(float), (long)_w * _c * sizeof(float));
            }

        int step = _stride * _c, rowTaps = _k * _c, allRows = images * rows;
        float* RowCorner(int r) => band + r / rows * bandSize + (long)(r % rows) * _stride * lineLength;
        fixed (float* weight = _weight, bias = _bias)
        fixed (int* offsets = _tapOffsets)
        {
            for (int chunk0 = 0; chunk0 < _patch; chunk0 += _chunk)
            {
                int chunk1 = Math.Min(_patch, chunk0 + _chunk);
                for (int g = block0; g < block1; g++)
                {
                    int width = Width(g), vectors = width / _lanes;
                    float* groupWeight = weight + (long)_groupStart[g] * _patch;
                    // Consecutive rows (row r: image r / rows, output row oy0 + r % rows; runs may cross images) that take
                    // the same taps of this chunk form a run, whose pixels are cut into tiles as even as can be (larger
                    // tiles last) across its rows: a 14-pixel row alone gives tiles of 4, 5 and 5 pixels, two give 5, 5,
                    // 6, 6 and 6. A tile spans at most two rows, so rows narrower than a tile are runs of their own.
                    for (int r0 = 0, r1; r0 < allRows; r0 = r1)
                    {
                        var (from, to, first, last) = RowTaps(oy0 + r0 % rows, rowTaps, chunk0, chunk1);
                        for (r1 = r0 + 1; r1 < allRows && _outW >= _maxPixels && RowTaps(oy0 + r1 % rows, rowTaps, chunk0, chunk1) == (from, to, first, last); r1++)
                        {
                        }

                        if (from >= to && !(first && last && chunk0 == 0))
                            continue;  // nothing of this chunk (a row in the padding takes only the bias, in the first chunk)
                        var tile = new Tile(groupWeight + (long)from * width, offsets + from, offsets + Math.Max(from, to),
                            bias + _groupStart[g], !first, last && relu, step, stride);
                        int pixels = (r1 - r0) * _outW, tiles = (pixels + _maxPixels - 1) / _maxPixels;
                        float* pixel = output + (long)r0 * _outW * stride + _groupStart[g];
                        float* corner = RowCorner(r0);
                        for (int i = 0, done = 0, ox = 0, r = r0; i < tiles; i++)
                        {
                            int count = (pixels - done) / (tiles - i), left = _outW - ox;
                            float* next = count > left ? RowCorner(r + 1) : null;
                            Run(tile, corner + (long)ox * step, next, left, pixel, count, vectors);
                            done += count;
                            pixel += (long)count * stride;
                            if ((ox += count) >= _outW)
                            {
                                ox -= _outW;
                                r++;
                                corner = next != null ? next : r < r1 ? RowCorner(r) : null;
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// The taps [from, to) of chunk [<paramref name="chunk0"/>, <paramref name="chunk1"/>) that output row
    /// <paramref name="oy"/> takes (window rows in the padding read zero lines, so they are left out), and whether they
    /// start the row's taps (the accumulators start from the bias) and end them (the fused ReLU applies).
    /// </summary>
    private (int From, int To, bool First, bool Last) RowTaps(int oy, int rowTaps, int chunk0, int chunk1)
    {
        int top = oy * _stride - _pad, t0 = Math.Max(0, -top) * rowTaps, t1 = Math.Min(_k, _h - top) * rowTaps;
        if (t1 <= t0) (t0, t1) = (0, 0);  // every window row in the padding: the bias alone
        int from = Math.Max(t0, chunk0), to = Math.Min(t1, chunk1);
        return (from, to, from == t0, to == t1);
    }

    /// <summary>What every tile of one run of rows, group and chunk shares.</summary>
    private readonly struct Tile(float* weight, int* taps, int* end, float* bias, bool accumulate, bool rectify, int step, int stride)
    {
        /// <summary>The group's packed weight at the chunk's first tap.</summary>
        public readonly float* Weight = weight;

        /// <summary>The chunk's tap offsets, [Taps, End).</summary>
        public readonly int* Taps = taps, End = end;

        /// <summary>The group's bias to start from (first chunk; zero when the layer has none).</summary>
        public readonly float* Bias = bias;

        /// <summary>A later chunk: start from what the output holds.</summary>
        public readonly bool Accumulate = accumulate;

        /// <summary>The last chunk, with a fused ReLU.</summary>
        public readonly bool Rectify = rectify;

        /// <summary>Floats between neighbouring pixels' window corners in a band row.</summary>
        public readonly int Step = step;

        /// <summary>Floats between neighbouring pixels in the output (a run's rows follow one another there).</summary>
        public readonly int Stride = stride;

        /// <summary>
        /// The window corner of a tile's pixel <paramref name="k"/>: the first <paramref name="split"/> pixels lie in
        /// the row of <paramref name="x"/>, the rest at the start of the next (<paramref name="next"/>).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float* Corner(float* x, float* next, int split, int k) => k < split ? x + k * Step : next + (k - split) * Step;
    }

    /// <summary>
    /// <paramref name="count"/> pixels × <paramref name="vectors"/> vectors of channels, on the tier's kernel: the
    /// first pixel's window corner in the band at <paramref name="x"/>, the first <paramref name="split"/> pixels in its
    /// row and the rest from <paramref name="next"/> on (<see cref="Tile.Corner"/>); their outputs from
    /// <paramref name="output"/> on.
    /// </summary>
    private void Run(in Tile t, float* x, float* next, int split, float* output, int count, int vectors)
    {
        switch (Isa)
        {
            case VectorIsa.Avx512:
                switch (count)
                {
                    case 1: Avx512<C1>(t, x, next, split, output, vectors); break;
                    case 2: Avx512<C2>(t, x, next, split, output, vectors); break;
                    case 3: Avx512<C3>(t, x, next, split, output, vectors); break;
                    case 4: Avx512<C4>(t, x, next, split, output, vectors); break;
                    case 5: Avx512<C5>(t, x, next, split, output, vectors); break;
                    default: Avx512<C6>(t, x, next, split, output, vectors); break;
                }
                break;
            case VectorIsa.Avx2:
                switch (count)
                {
                    case 1: Avx2<C1>(t, x, next, split, output, vectors); break;
                    case 2: Avx2<C2>(t, x, next, split, output, vectors); break;
                    case 3: Avx2<C3>(t, x, next, split, output, vectors); break;
                    case 4: Avx2<C4>(t, x, next, split, output, vectors); break;
                    case 5: Avx2<C5>(t, x, next, split, output, vectors); break;
                    default: Avx2<C6>(t, x, next, split, output, vectors); break;
                }
                break;
            default:
                if (count == 1) V128<C1>(t, x, next, split, output, vectors);
                else V128<C2>(t, x, next, split, output, vectors);
                break;
        }
    }

    private void Avx512<TP>(in Tile t, float* x, float* next, int split, float* output, int vectors) where TP : struct, ICount
    {
        switch (vectors)
        {
            case 1: Pixels512<TP, C1>(t, x, next, split, output); break;
            case 2: Pixels512<TP, C2>(t, x, next, split, output); break;
            case 3: Pixels512<TP, C3>(t, x, next, split, output); break;
            default: Pixels512<TP, C4>(t, x, next, split, output); break;
        }
    }

    private void Avx2<TP>(in Tile t, float* x, float* next, int split, float* output, int vectors) where TP : struct, ICount
    {
        if (vectors == 1) Pixels256<TP, C1>(t, x, next, split, output);
        else Pixels256<TP, C2>(t, x, next, split, output);
    }

    private void V128<TP>(in Tile t, float* x, float* next, int split, float* output, int vectors) where TP : struct, ICount
    {
        switch (vectors)
        {
            case 1: Pixels128<TP, C1>(t, x, next, split, output); break;
            case 2: Pixels128<TP, C2>(t, x, next, split, output); break;
            case 3: Pixels128<TP, C3>(t, x, next, split, output); break;
            default: Pixels128<TP, C4>(t, x, next, split, output); break;
        }
    }

    /// <summary>A count the JIT folds: each (pixels, vectors) pair of a kernel is compiled on its own, its tests gone.</summary>
    private interface ICount
    {
        static abstract int Value { get; }
    }

    private struct C1 : ICount { public static int Value => 1; }
    private struct C2 : ICount { public static int Value => 2; }
    private struct C3 : ICount { public static int Value => 3; }
    private struct C4 : ICount { public static int Value => 4; }
    private struct C5 : ICount { public static int Value => 5; }
    private struct C6 : ICount { public static int Value => 6; }

    /// <summary>
    /// Max pooling with window = stride = <paramref name="window"/> of <paramref name="window"/> rows at
    /// <paramref name="rows"/> (outW pixels of the padded channel count each) into <paramref name="pooledW"/> pixels at
    /// <paramref name="y"/> (out channels a pixel): the channels of groups [<paramref name="block0"/>,
    /// <paramref name="block1"/>). A channel count that is not a whole number of vectors ends each pixel in a masked
    /// store (AVX-512, AVX), or in single values on the 128-bit tier, so the padding never reaches the output.
    /// </summary>
    private void MaxPool(float* rows, int window, int pooledW, float* y, int block0, int block1)
    {
        int n = _padded, length = _outW * n, start = _groupStart[block0], end = Math.Min(_groupStart[block1], _n);
        for (int px = 0; px < pooledW; px++)
        {
            float* first = rows + px * window * n, output = y + px * _n;
            int c = start;
            if (Isa == VectorIsa.Avx512)
            {
                for (; c < end; c += Vector512<float>.Count)
                {
                    Vector512<float> best = Vector512.Load(first + c);
                    for (int r = 0; r < window; r++)
                        for (int dx = 0; dx < window; dx++)
                            best = Vector512.Max(best, Vector512.Load(first + r * length + dx * n + c));
                    if (end - c >= Vector512<float>.Count)
                        Vector512.Store(best, output + c);
                    else
                        Avx512F.MaskStore(output + c, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(end - c)).AsSingle(), best);
                }
            }
            else if (Isa == VectorIsa.Avx2)
            {
                for (; c < end; c += Vector256<float>.Count)
                {
                    Vector256<float> best = Vector256.Load(first + c);
                    for (int r = 0; r < window; r++)
                        for (int dx = 0; dx < window; dx++)
                            best = Vector256.Max(best, Vector256.Load(first + r * length + dx * n + c));
                    if (end - c >= Vector256<float>.Count)
                        Vector256.Store(best, output + c);
                    else
                        Avx.MaskStore(output + c, Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(end - c)).AsSingle(), best);
                }
            }
            else
            {
                for (; c < end; c += Vector128<float>.Count)
                {
                    Vector128<float> best = Vector128.Load(first + c);
                    for (int r = 0; r < window; r++)
                        for (int dx = 0; dx < window; dx++)
                            best = Vector128.Max(best, Vector128.Load(first + r * length + dx * n + c));
                    if (end - c >= Vector128<float>.Count)
                        Vector128.Store(best, output + c);
                    else
                        for (int lane = 0; lane < end - c; lane++)
                            output[c + lane] = best[lane];
                }
            }
        }
    }

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

    /// <summary>
    /// Where a tile's accumulators start, without a branch for each: its first pixel's output and the floats between
    /// pixels (later chunks), or the bias for every pixel (stride 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (nint From, nint Stride) StartOf(in Tile t, float* output) =>
        t.Accumulate ? ((nint)output, t.Stride) : ((nint)t.Bias, 0);

    /// <summary>The floor a tile's stores take the maximum with: 0 for the fused ReLU, −∞ (no change) otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float FloorOf(in Tile t) => t.Rectify ? 0f : float.NegativeInfinity;

    // ---- AVX-512: up to 6 pixels × 4 zmm (64 channels) ----

    /// <summary>
    /// A pixel's accumulator j at the start of a chunk, from <paramref name="from"/>: the pixel's output (later
    /// chunks) or the bias (<see cref="StartOf"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Start512(float* from, int j) => Vector512.Load(from + 16 * j);

    /// <summary>
    /// Stores accumulator j of a pixel: its maximum with <paramref name="floor"/>, which is 0 for the fused ReLU and
    /// −∞ otherwise (<see cref="FloorOf"/>). <c>vmaxps</c> returns its second operand when either is NaN or both are
    /// zeros, so max(0, a) is the ReLU's a &lt; 0 ? 0 : a bit for bit, NaN and −0 included, and max(−∞, a) is a.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void End512(Vector512<float> floor, float* output, int j, Vector512<float> a) => Vector512.Store(Avx512F.Max(floor, a), output + 16 * j);

    /// <summary>
    /// TP pixels × TV vectors: TV weight vectors per tap, TP·TV accumulators (at most 24 of the 32 zmm). One base
    /// pointer per pixel and a walking weight pointer: each broadcast is one instruction on a [base + index] address.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pixels512<TP, TV>(in Tile t, float* x, float* next, int split, float* output) where TP : struct, ICount where TV : struct, ICount
    {
        int p = TP.Value, v = TV.Value;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
        int os = t.Stride;
        float* o0 = output, o1 = output + os, o2 = output + 2 * os, o3 = output + 3 * os, o4 = output + 4 * os, o5 = output + 5 * os;
        var (start, ss) = StartOf(t, output);
        float* s0 = (float*)start, s1 = s0 + ss, s2 = s1 + ss, s3 = s2 + ss, s4 = s3 + ss, s5 = s4 + ss;
        var floor = Vector512.Create(FloorOf(t));
        a0 = Start512(s0, 0); if (v > 1) a1 = Start512(s0, 1); if (v > 2) a2 = Start512(s0, 2); if (v > 3) a3 = Start512(s0, 3);
        if (p > 1) { b0 = Start512(s1, 0); if (v > 1) b1 = Start512(s1, 1); if (v > 2) b2 = Start512(s1, 2); if (v > 3) b3 = Start512(s1, 3); }
        if (p > 2) { c0 = Start512(s2, 0); if (v > 1) c1 = Start512(s2, 1); if (v > 2) c2 = Start512(s2, 2); if (v > 3) c3 = Start512(s2, 3); }
        if (p > 3) { d0 = Start512(s3, 0); if (v > 1) d1 = Start512(s3, 1); if (v > 2) d2 = Start512(s3, 2); if (v > 3) d3 = Start512(s3, 3); }
        if (p > 4) { e0 = Start512(s4, 0); if (v > 1) e1 = Start512(s4, 1); if (v > 2) e2 = Start512(s4, 2); if (v > 3) e3 = Start512(s4, 3); }
        if (p > 5) { f0 = Start512(s5, 0); if (v > 1) f1 = Start512(s5, 1); if (v > 2) f2 = Start512(s5, 2); if (v > 3) f3 = Start512(s5, 3); }
        float* x0 = x, x1 = p > 1 ? t.Corner(x, next, split, 1) : null, x2 = p > 2 ? t.Corner(x, next, split, 2) : null, x3 = p > 3 ? t.Corner(x, next, split, 3) : null;
        float* x4 = p > 4 ? t.Corner(x, next, split, 4) : null, x5 = p > 5 ? t.Corner(x, next, split, 5) : null, ws = t.Weight;
        for (int* o = t.Taps, end = t.End; o < end; o++, ws += 16 * v)
        {
            nint i = *o;
            Vector512<float> w0 = Vector512.Load(ws);
            Vector512<float> w1 = v > 1 ? Vector512.Load(ws + 16) : default, w2 = v > 2 ? Vector512.Load(ws + 32) : default, w3 = v > 3 ? Vector512.Load(ws + 48) : default;
            Vector512<float> r = Vector512.Create(x0[i]);
            a0 = MulAdd(r, w0, a0); if (v > 1) a1 = MulAdd(r, w1, a1); if (v > 2) a2 = MulAdd(r, w2, a2); if (v > 3) a3 = MulAdd(r, w3, a3);
            if (p > 1) { r = Vector512.Create(x1[i]); b0 = MulAdd(r, w0, b0); if (v > 1) b1 = MulAdd(r, w1, b1); if (v > 2) b2 = MulAdd(r, w2, b2); if (v > 3) b3 = MulAdd(r, w3, b3); }
            if (p > 2) { r = Vector512.Create(x2[i]); c0 = MulAdd(r, w0, c0); if (v > 1) c1 = MulAdd(r, w1, c1); if (v > 2) c2 = MulAdd(r, w2, c2); if (v > 3) c3 = MulAdd(r, w3, c3); }
            if (p > 3) { r = Vector512.Create(x3[i]); d0 = MulAdd(r, w0, d0); if (v > 1) d1 = MulAdd(r, w1, d1); if (v > 2) d2 = MulAdd(r, w2, d2); if (v > 3) d3 = MulAdd(r, w3, d3); }
            if (p > 4) { r = Vector512.Create(x4[i]); e0 = MulAdd(r, w0, e0); if (v > 1) e1 = MulAdd(r, w1, e1); if (v > 2) e2 = MulAdd(r, w2, e2); if (v > 3) e3 = MulAdd(r, w3, e3); }
            if (p > 5) { r = Vector512.Create(x5[i]); f0 = MulAdd(r, w0, f0); if (v > 1) f1 = MulAdd(r, w1, f1); if (v > 2) f2 = MulAdd(r, w2, f2); if (v > 3) f3 = MulAdd(r, w3, f3); }
        }

        End512(floor, o0, 0, a0); if (v > 1) End512(floor, o0, 1, a1); if (v > 2) End512(floor, o0, 2, a2); if (v > 3) End512(floor, o0, 3, a3);
        if (p > 1) { End512(floor, o1, 0, b0); if (v > 1) End512(floor, o1, 1, b1); if (v > 2) End512(floor, o1, 2, b2); if (v > 3) End512(floor, o1, 3, b3); }
        if (p > 2) { End512(floor, o2, 0, c0); if (v > 1) End512(floor, o2, 1, c1); if (v > 2) End512(floor, o2, 2, c2); if (v > 3) End512(floor, o2, 3, c3); }
        if (p > 3) { End512(floor, o3, 0, d0); if (v > 1) End512(floor, o3, 1, d1); if (v > 2) End512(floor, o3, 2, d2); if (v > 3) End512(floor, o3, 3, d3); }
        if (p > 4) { End512(floor, o4, 0, e0); if (v > 1) End512(floor, o4, 1, e1); if (v > 2) End512(floor, o4, 2, e2); if (v > 3) End512(floor, o4, 3, e3); }
        if (p > 5) { End512(floor, o5, 0, f0); if (v > 1) End512(floor, o5, 1, f1); if (v > 2) End512(floor, o5, 2, f2); if (v > 3) End512(floor, o5, 3, f3); }
    }

    // ---- AVX2 + FMA: up to 6 pixels × 2 ymm (16 channels) ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Start256(float* from, int j) => Vector256.Load(from + 8 * j);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void End256(Vector256<float> floor, float* output, int j, Vector256<float> a) => Vector256.Store(Avx.Max(floor, a), output + 8 * j);

    /// <summary>TP pixels × TV vectors: up to 12 accumulators (16 ymm: 12 + 2 weights + the broadcast), 8 loads per 12 multiply-adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pixels256<TP, TV>(in Tile t, float* x, float* next, int split, float* output) where TP : struct, ICount where TV : struct, ICount
    {
        int p = TP.Value, v = TV.Value;
        Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default;
        Vector256<float> d0 = default, d1 = default, e0 = default, e1 = default, f0 = default, f1 = default;
        int os = t.Stride;
        float* o0 = output, o1 = output + os, o2 = output + 2 * os, o3 = output + 3 * os, o4 = output + 4 * os, o5 = output + 5 * os;
        var (start, ss) = StartOf(t, output);
        float* s0 = (float*)start, s1 = s0 + ss, s2 = s1 + ss, s3 = s2 + ss, s4 = s3 + ss, s5 = s4 + ss;
        var floor = Vector256.Create(FloorOf(t));
        a0 = Start256(s0, 0); if (v > 1) a1 = Start256(s0, 1);
        if (p > 1) { b0 = Start256(s1, 0); if (v > 1) b1 = Start256(s1, 1); }
        if (p > 2) { c0 = Start256(s2, 0); if (v > 1) c1 = Start256(s2, 1); }
        if (p > 3) { d0 = Start256(s3, 0); if (v > 1) d1 = Start256(s3, 1); }
        if (p > 4) { e0 = Start256(s4, 0); if (v > 1) e1 = Start256(s4, 1); }
        if (p > 5) { f0 = Start256(s5, 0); if (v > 1) f1 = Start256(s5, 1); }
        float* x0 = x, x1 = p > 1 ? t.Corner(x, next, split, 1) : null, x2 = p > 2 ? t.Corner(x, next, split, 2) : null, x3 = p > 3 ? t.Corner(x, next, split, 3) : null;
        float* x4 = p > 4 ? t.Corner(x, next, split, 4) : null, x5 = p > 5 ? t.Corner(x, next, split, 5) : null, ws = t.Weight;
        for (int* o = t.Taps, end = t.End; o < end; o++, ws += 8 * v)
        {
            nint i = *o;
            Vector256<float> w0 = Vector256.Load(ws), w1 = v > 1 ? Vector256.Load(ws + 8) : default;
            Vector256<float> r = Vector256.Create(x0[i]); a0 = MulAdd(r, w0, a0); if (v > 1) a1 = MulAdd(r, w1, a1);
            if (p > 1) { r = Vector256.Create(x1[i]); b0 = MulAdd(r, w0, b0); if (v > 1) b1 = MulAdd(r, w1, b1); }
            if (p > 2) { r = Vector256.Create(x2[i]); c0 = MulAdd(r, w0, c0); if (v > 1) c1 = MulAdd(r, w1, c1); }
            if (p > 3) { r = Vector256.Create(x3[i]); d0 = MulAdd(r, w0, d0); if (v > 1) d1 = MulAdd(r, w1, d1); }
            if (p > 4) { r = Vector256.Create(x4[i]); e0 = MulAdd(r, w0, e0); if (v > 1) e1 = MulAdd(r, w1, e1); }
            if (p > 5) { r = Vector256.Create(x5[i]); f0 = MulAdd(r, w0, f0); if (v > 1) f1 = MulAdd(r, w1, f1); }
        }

        End256(floor, o0, 0, a0); if (v > 1) End256(floor, o0, 1, a1);
        if (p > 1) { End256(floor, o1, 0, b0); if (v > 1) End256(floor, o1, 1, b1); }
        if (p > 2) { End256(floor, o2, 0, c0); if (v > 1) End256(floor, o2, 1, c1); }
        if (p > 3) { End256(floor, o3, 0, d0); if (v > 1) End256(floor, o3, 1, d1); }
        if (p > 4) { End256(floor, o4, 0, e0); if (v > 1) End256(floor, o4, 1, e1); }
        if (p > 5) { End256(floor, o5, 0, f0); if (v > 1) End256(floor, o5, 1, f1); }
    }

    // ---- Vector128 (SSE, NEON): up to 2 pixels × 4 vectors (16 channels) ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Start128(in Tile t, float* output, int j) =>
        t.Accumulate ? Vector128.Load(output + 4 * j) : Vector128.Load(t.Bias + 4 * j);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void End128(in Tile t, float* output, int j, Vector128<float> a) => Vector128.Store(t.Rectify ? ReLU(a) : a, output + 4 * j);

    /// <summary>
    /// TP (1 or 2) pixels × TV vectors: up to 8 accumulators. Multiply-add is fused where the CPU has it (NEON, FMA),
    /// multiply then add on SSE. A third pixel does not fit x86's 16 registers (with FMA, or with the products'
    /// temporaries without): the JIT spilled accumulators, and the layer took 3× the AVX2 kernel's time instead of 2×.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pixels128<TP, TV>(in Tile t, float* x, float* next, int split, float* output) where TP : struct, ICount where TV : struct, ICount
    {
        int p = TP.Value, v = TV.Value;
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        float* o0 = output, o1 = output + t.Stride;
        a0 = Start128(t, o0, 0); if (v > 1) a1 = Start128(t, o0, 1); if (v > 2) a2 = Start128(t, o0, 2); if (v > 3) a3 = Start128(t, o0, 3);
        if (p > 1) { b0 = Start128(t, o1, 0); if (v > 1) b1 = Start128(t, o1, 1); if (v > 2) b2 = Start128(t, o1, 2); if (v > 3) b3 = Start128(t, o1, 3); }
        float* x0 = x, x1 = p > 1 ? t.Corner(x, next, split, 1) : null, ws = t.Weight;
        for (int* o = t.Taps, end = t.End; o < end; o++, ws += 4 * v)
        {
            nint i = *o;
            Vector128<float> w0 = Vector128.Load(ws);
            Vector128<float> w1 = v > 1 ? Vector128.Load(ws + 4) : default, w2 = v > 2 ? Vector128.Load(ws + 8) : default, w3 = v > 3 ? Vector128.Load(ws + 12) : default;
            Vector128<float> r = Vector128.Create(x0[i]);
            a0 = MulAdd(r, w0, a0); if (v > 1) a1 = MulAdd(r, w1, a1); if (v > 2) a2 = MulAdd(r, w2, a2); if (v > 3) a3 = MulAdd(r, w3, a3);
            if (p > 1) { r = Vector128.Create(x1[i]); b0 = MulAdd(r, w0, b0); if (v > 1) b1 = MulAdd(r, w1, b1); if (v > 2) b2 = MulAdd(r, w2, b2); if (v > 3) b3 = MulAdd(r, w3, b3); }
        }

        End128(t, o0, 0, a0); if (v > 1) End128(t, o0, 1, a1); if (v > 2) End128(t, o0, 2, a2); if (v > 3) End128(t, o0, 3, a3);
        if (p > 1) { End128(t, o1, 0, b0); if (v > 1) End128(t, o1, 1, b1); if (v > 2) End128(t, o1, 2, b2); if (v > 3) End128(t, o1, 3, b3); }
    }
}
