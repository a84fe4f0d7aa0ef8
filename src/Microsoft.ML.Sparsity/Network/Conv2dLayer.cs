using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>
/// 2-D convolution on channels-last images by im2col + GEMM. The weight is stored [out, kh, kw, in], so one row of
/// the unfolded input ("col") lines up with one row of the weight, and the whole batch is one GEMM:
/// y[batch·outH·outW, out] = col · Wᵀ. The output is channels-last too.
/// </summary>
/// <remarks>
/// <para>
/// Inference with a dense weight skips im2col on every vector tier (<see cref="DirectConvolution"/>): a direct kernel
/// keeps a tile of neighbouring pixels × output channels in registers and adds each input tap times a row of the
/// packed weight, for any channel count and patch. For a K = 9 product im2col + GEMM spends most of its time packing;
/// for larger patches the direct kernel saves the unfolding and packing passes.
/// </para>
/// <para>
/// On a prediction copy the direct kernel also applies the batch norm, ReLU and max pooling (window = stride) that
/// follow the layer (<see cref="FuseFollowing"/>): the batch norm is folded into the packed weight, and the kernel
/// pools the rows while they are in L1 and writes only the pooled output, so the full-size activation never goes
/// through memory. Training never fuses.
/// </para>
/// </remarks>
internal sealed unsafe class Conv2dLayer : Layer
{
    private readonly WorkerPool _pool;
    private readonly int _h, _w, _c, _k, _stride, _pad, _outH, _outW, _patch;
    private readonly Action<int> _unfold, _fold, _inferExamples, _inferBand, _direct, _directPooled, _winogradImages;
    private BatchNormLayer? _fusedNorm; // the fused batch norm (folded into the packed weight and bias), if any
    private bool _fusedReLU;
    private int _fusedPool, _pooledH, _pooledW; // the fused max pooling's window (= stride; 0 when none) and output size
    private VectorIsa _isa = VectorIsas.Best;
    private DirectConvolution? _kernel; // the direct kernel with the packed weight, made at the first direct forward
    private WinogradConvolution? _winograd; // Winograd's kernel with the transformed weight, made at the first batch it takes
    private float[] _col = [];
    private float[][] _workerCols = [];
    private float[]? _x, _y, _dx;
    private int _chunkStart;     // the first example of the chunk being unfolded
    private int _batch, _workers;
    private int _images;         // whole images a direct-kernel item (0: one output row of one channel group an item)
    private int _groups;         // the fused pooled rows' channel groups: 1, or each block of the direct kernel (few rows)
    private int _spans;          // the fused pooled rows' spans an example: items of several pooled rows

    public Conv2dLayer(string name, int[] inputShape, int outChannels, int kernel, int stride, int padding, bool useBias, LayerBuildContext context)
        : base(name, inputShape, OutputShapeOf(name, inputShape, outChannels, kernel, stride, padding))
    {
        _pool = context.Pool;
        (_h, _w, _c) = (inputShape[0], inputShape[1], inputShape[2]);
        (_k, _stride, _pad) = (kernel, stride, padding);
        (_outH, _outW) = (OutputShape[0], OutputShape[1]);
        _patch = kernel * kernel * _c;
        OutChannels = outChannels;
        Weight = context.NewParameter(name, "weight", [outChannels, kernel, kernel, _c], ParameterKind.Weight);
        context.Initialize(Weight.Value, _patch, outChannels * kernel * kernel);
        Bias = useBias ? context.NewParameter(name, "bias", [outChannels], ParameterKind.Bias) : null;
        Parameters = Bias is null ? [Weight] : [Weight, Bias];
        _unfold = Unfold;
        _fold = Fold;
        _inferExamples = InferExamples;
        _inferBand = InferBand;
        _direct = DirectRows;
        _directPooled = DirectPooledRow;
        _winogradImages = WinogradImages;
    }

    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    public int OutChannels { get; }
    public int KernelSize => _k;
    public int Stride => _stride;
    public int Padding => _pad;
    public override IReadOnlyList<Parameter> Parameters { get; }
    public override long MultiplyAdds => (long)_outH * _outW * OutChannels * _patch;

    private int Pixels => _outH * _outW;

    /// <summary>The weight [out, kh·kw·in] in an inference format (set on trained models' networks only); inference forwards use it.</summary>
    public IWeightMatrix? InferenceWeight { get; set; }

    /// <summary>True on a trained model's prediction copy, whose weights never change (derived data may be cached).</summary>
    public bool PredictionOnly { get; set; }

    public override void EnsureCapacity(int batch)
    {
        long needed = (long)batch * Pixels * _patch;
        if (_col.Length < needed) _col = new float[needed];
    }

    /// <summary>Unfolded floats per inference chunk: about 512 KB, so the unfolded input stays in the L2 cache.</summary>
    private const int InferenceChunkFloats = 1 << 17;

    /// <summary>
    /// Training unfolds the whole batch (backward needs it). Inference unfolds and multiplies a few examples at a time,
    /// so the unfolded input is consumed from cache instead of streaming through memory; a batch of several examples
    /// is split over the pool's threads, each unfolding and multiplying its own examples (its GEMM runs on that thread),
    /// so the threads meet once per layer instead of twice per chunk.
    /// </summary>
    public override void Forward(float[] x, float[] y, int batch, bool training)
    {
        if (!training && Direct && batch >= WinogradConvolution.MinBatch
            && WinogradConvolution.Supports(_isa, _k, _stride, _c, OutChannels, _fusedPool, _outH, _outW))
        {
            // Batches of a few images or more run Winograd's kernel (AVX2), a block of images an item; the choice
            // depends on the batch alone, never on the thread count, so the results do not either.
            if (_winograd is null || !PredictionOnly)
            {
                _winograd ??= new WinogradConvolution(_h, _w, _c, _pad, _outH, _outW, OutChannels);
                var (weight, bias) = FoldedWeight();
                _winograd.Pack(weight, bias);
            }

            (_x, _y, _batch) = (x, y, batch);
            _pool.For((batch + WinogradConvolution.ImagesPerBlock - 1) / WinogradConvolution.ImagesPerBlock, _winogradImages);
            (_x, _y) = (null, null);
            return;
        }

        if (!training && Direct)
        {
            // A prediction copy's weights never change, so it packs them once; a network in training at every call.
            if (_kernel is null)
            {
                _kernel = new DirectConvolution(_isa, _h, _w, _c, _k, _stride, _pad, _outH, _outW, OutChannels);
                PackKernel();
            }
            else if (!PredictionOnly)
                PackKernel();
            (_x, _y) = (x, y);
            if (_fusedPool > 0)
            {
                // Fewer pooled rows than about four a thread (the CNN's second layer has 7 an image) balance badly:
                // each row's channel blocks are then items of their own (each output value is computed alike).
                _groups = batch * _pooledH < 4 * _pool.ThreadCount ? _kernel.Blocks : 1;
                // Items of several pooled rows when the batch leaves four items a thread: the rows of a run that take
                // the same taps are tiled across rows (fuller tiles), and a group's weights serve them all.
                int span = Math.Clamp(batch * _pooledH / (4 * _pool.ThreadCount), 1, _kernel.PooledRowsPerItem(_fusedPool));
                _spans = (_pooledH + span - 1) / span;
                _pool.For(batch * _spans * _groups, _directPooled);
            }
            else
            {
                // Groups of whole images when the batch gives every thread two or more (a large layer's weights are
                // read once a group, which keeps two threads from waiting on memory); otherwise one output row × one
                // channel group an item, group by group (both threads use the group's weights while in cache), so a
                // single image's 7 rows still balance over two threads.
                int threads = _pool.ThreadCount;
                _batch = batch;
                _images = batch >= 2 * threads ? Math.Clamp(batch / (2 * threads), 1, _kernel.ImagesPerItem) : 0;
                _pool.For(_images > 0 ? (batch + _images - 1) / _images : batch * _kernel.Blocks * _outH, _direct);
            }
            (_x, _y) = (null, null);
            return;
        }

        // Bands of at least two pixels: CSR multiplies a single row with another kernel (other summation order), and
        // results must not depend on the thread count.
        int bands = Math.Min(_pool.ThreadCount, _outW >= 2 ? _outH : _outH / 2);
        if (!training && batch == 1 && InferenceWeight is not null && bands > 1)
        {
            (_x, _y, _workers) = (x, y, bands);
            if (_workerCols.Length < _workers)
                Array.Resize(ref _workerCols, _workers);
            _pool.For(_workers, _inferBand);
            (_x, _y) = (null, null);
            return;
        }

        if (!training && batch > 1 && _pool.ThreadCount > 1)
        {
            (_x, _y, _batch, _workers) = (x, y, batch, Math.Min(batch, _pool.ThreadCount));
            if (_workerCols.Length < _workers)
                Array.Resize(ref _workerCols, _workers);
            _pool.For(_workers, _inferExamples);
            (_x, _y) = (null, null);
            return;
        }

        int chunk = training ? batch : InferenceChunk(batch);
        EnsureCapacity(chunk);
        _x = x;
        for (int start = 0; start < batch; start += chunk)
        {
            int count = Math.Min(chunk, batch - start);
            _chunkStart = start;
            _pool.For(count, _unfold);
            Multiply(_pool, _col, count * Pixels, y.AsSpan(start * Pixels * OutChannels, count * Pixels * OutChannels), training);
        }
        _x = null;
    }

    /// <summary>Packs the weight and bias into the direct kernel (<see cref="FoldedWeight"/>).</summary>
    private void PackKernel()
    {
        var (weight, bias) = FoldedWeight();
        _kernel!.Pack(weight, bias);
    }

    /// <summary>The weight and bias the inference kernels apply: with the fused batch norm folded in, w·scale and bias·scale + shift per output channel.</summary>
    private (float[] Weight, float[]? Bias) FoldedWeight()
    {
        if (_fusedNorm is null)
            return (Weight.Value, Bias?.Value);
        float[] scale = new float[OutChannels], shift = new float[OutChannels], weight = new float[Weight.Length];
        _fusedNorm.InferenceAffine(scale, shift);
        for (int o = 0; o < OutChannels; o++)
        {
            TensorPrimitives.Multiply(Weight.Value.AsSpan(o * _patch, _patch), scale[o], weight.AsSpan(o * _patch, _patch));
            shift[o] += (Bias?.Value[o] ?? 0) * scale[o];
        }

        return (weight, shift);
    }

    /// <summary>Whether inference runs the direct kernel: a dense weight and a shape <see cref="DirectConvolution.Supports"/> takes on <see cref="Isa"/>.</summary>
    private bool Direct => InferenceWeight is null && DirectConvolution.Supports(_isa, _patch, OutChannels);

    /// <summary>
    /// The vector tier of the direct inference kernel: the process's best; the tests set each tier this machine runs.
    /// A layer that fused the layers after it keeps a tier the direct kernel takes (its inference must apply them).
    /// </summary>
    internal VectorIsa Isa
    {
        get => _isa;
        set
        {
            if ((_fusedNorm is not null || _fusedReLU || _fusedPool > 0) && !DirectConvolution.Supports(value, _patch, OutChannels))
                throw new InvalidOperationException($"Layer '{Name}' applies the layers fused into it by the direct kernel, which {VectorIsas.Describe(value)} has not.");
            (_isa, _kernel, _winograd) = (value, null, null);
        }
    }

    /// <summary>
    /// On a prediction copy whose inference runs the direct kernel: takes over a batch norm (folded into the packed
    /// weight and bias: the prediction copy's statistics never change), then a ReLU, then a max pooling (window =
    /// stride), in that order, among the layers that follow (<paramref name="following"/>), so the kernel applies them
    /// to its rows while they are in cache and writes their output: the inference forward's <c>y</c> is then the last
    /// fused layer's output. Returns how many layers it took (0–3); the network skips them at inference.
    /// </summary>
    public int FuseFollowing(IEnumerable<Layer> following)
    {
        if (!Direct || !PredictionOnly)
            return 0;
        int taken = 0;
        using IEnumerator<Layer> next = following.GetEnumerator();
        Layer? layer = next.MoveNext() ? next.Current : null;
        if (layer is BatchNormLayer norm)
        {
            (_fusedNorm, taken) = (norm, 1);
            layer = next.MoveNext() ? next.Current : null;
        }

        if (layer is ActivationLayer { Activation: ActivationKind.ReLU })
        {
            _fusedReLU = true;
            taken++;
            layer = next.MoveNext() ? next.Current : null;
        }

        if (layer is Pool2dLayer { Pooling: PoolingKind.Max } pool && pool.KernelSize == pool.Stride)
        {
            (_fusedPool, _pooledH, _pooledW) = (pool.KernelSize, pool.OutputShape[0], pool.OutputShape[1]);
            taken++;
        }

        return taken;
    }

    private int InferenceChunk(int batch) => Math.Clamp(InferenceChunkFloats / (Pixels * _patch), 1, batch);

    /// <summary>output[rows, out] = col · Wᵀ + bias, for <paramref name="rows"/> unfolded pixels, on <paramref name="pool"/>.</summary>
    private void Multiply(WorkerPool pool, float[] col, int rows, Span<float> output, bool training)
    {
        if (!training && InferenceWeight is not null)
            InferenceWeight.MultiplyTransposed(pool, col.AsSpan(0, rows * _patch), rows, output);
        else
            Gemm.Multiply(pool, false, true, rows, OutChannels, _patch, 1f, col, _patch, Weight.Value, _patch, 0f, output, OutChannels);
        if (Bias is not null) RowOps.AddToRows(output, Bias.Value, rows);
    }

    /// <summary>
    /// The direct kernel on images [item·images, …) whole, or (images 0) on output row <c>item % outH</c> of channel
    /// group <c>item / outH % groups</c> of example <c>item / outH / groups</c>, with the fused ReLU if any.
    /// </summary>
    private void DirectRows(int item)
    {
        fixed (float* xp = _x, yp = _y)
        {
            if (_images > 0)
            {
                int first = item * _images, count = Math.Min(_images, _batch - first);
                _kernel!.ConvolveRows(xp + (long)first * InputSize, count, 0, _outH, yp + (long)first * OutputSize, 0, _kernel.Blocks, _fusedReLU);
                return;
            }

            int oy = item % _outH, group = item / _outH % _kernel!.Blocks, b = item / _outH / _kernel.Blocks;
            _kernel.ConvolveRows(xp + (long)b * InputSize, 1, oy, oy + 1, yp + (long)b * OutputSize + (long)oy * _outW * OutChannels, group, group + 1, _fusedReLU);
        }
    }

    /// <summary>
    /// Channel group <c>item % groups</c> of span <c>item / groups % spans</c> (a range of pooled output rows, the
    /// spans as even as can be) of example <c>item / groups / spans</c>: the direct kernel convolves the pooling
    /// windows' rows into a per-thread scratch (in L1), and only the window maxima (after the fused ReLU, which
    /// commutes with the maximum) go to the output.
    /// </summary>
    private void DirectPooledRow(int item)
    {
        int blocks = _kernel!.Blocks, group = item % _groups, span = item / _groups % _spans, b = item / _groups / _spans;
        int block0 = group * blocks / _groups, block1 = (group + 1) * blocks / _groups;
        int py0 = span * _pooledH / _spans, py1 = (span + 1) * _pooledH / _spans;
        fixed (float* xp = _x, yp = _y)
            _kernel.ConvolvePooled(xp + (long)b * InputSize, py0, py1, _fusedPool, _pooledW, _fusedReLU, yp + ((long)b * _pooledH + py0) * _pooledW * OutChannels, block0, block1);
    }

    /// <summary>Winograd's kernel on images [item·block, …) of the batch, a block of <see cref="WinogradConvolution.ImagesPerBlock"/>.</summary>
    private void WinogradImages(int item)
    {
        int first = item * WinogradConvolution.ImagesPerBlock, count = Math.Min(WinogradConvolution.ImagesPerBlock, _batch - first);
        long outputs = _fusedPool > 0 ? (long)_pooledH * _pooledW * OutChannels : OutputSize; // an image's
        fixed (float* xp = _x, yp = _y)
            _winograd!.Convolve(xp + (long)first * InputSize, count, yp + first * outputs, _fusedReLU, _fusedPool > 0);
    }

    /// <summary>Worker <paramref name="item"/>'s share of an inference batch, chunk by chunk, in its own col buffer.</summary>
    private void InferExamples(int item)
    {
        int b0 = (int)((long)item * _batch / _workers), b1 = (int)((long)(item + 1) * _batch / _workers);
        int chunk = InferenceChunk(b1 - b0), size = Pixels * _patch;
        float[] col = WorkerCol(item, chunk * size);
        for (int start = b0; start < b1; start += chunk)
        {
            int count = Math.Min(chunk, b1 - start);
            for (int i = 0; i < count; i++)
                UnfoldInto(_x!, start + i, col.AsSpan(i * size, size));
            Multiply(_pool, col, count * Pixels, _y.AsSpan(start * Pixels * OutChannels, count * Pixels * OutChannels), training: false);
        }
    }

    /// <summary>
    /// Worker <paramref name="item"/>'s band of output rows of a single example, unfolded and multiplied on this thread
    /// in its own col buffer: the unfolded rows never leave the core that wrote them (one thread unfolding and both
    /// multiplying made the sparse CNN's second convolution 2.2× slower than one thread alone).
    /// </summary>
    private void InferBand(int item)
    {
        int oy0 = item * _outH / _workers, oy1 = (item + 1) * _outH / _workers;
        int pixels = (oy1 - oy0) * _outW, size = pixels * _patch;
        float[] col = WorkerCol(item, size);
        UnfoldInto(_x!, 0, oy0, oy1, col.AsSpan(0, size));
        Multiply(WorkerPool.Inline, col, pixels, _y.AsSpan(oy0 * _outW * OutChannels, pixels * OutChannels), training: false);
    }

    /// <summary>Worker <paramref name="item"/>'s col buffer, at least <paramref name="size"/> values (kept between calls).</summary>
    private float[] WorkerCol(int item, int size) =>
        _workerCols[item] is { } c && c.Length >= size ? c : _workerCols[item] = new float[size];

    public override void Backward(float[] x, float[] y, float[] dy, float[]? dx, int batch)
    {
        // The forward pass left col = im2col(x) in place.
        int rows = batch * Pixels;
        Gemm.Multiply(_pool, true, false, OutChannels, _patch, rows, 1f, dy, OutChannels, _col, _patch, 0f, Weight.Gradient, _patch);
        if (Bias is not null) RowOps.SumRows(dy, Bias.Gradient, rows);
        if (dx is null) return;
        // dcol = dy · W reuses the col buffer, then col2im scatters it back into dx.
        Gemm.Multiply(_pool, false, false, rows, _patch, OutChannels, 1f, dy, OutChannels, Weight.Value, _patch, 0f, _col, _patch);
        _dx = dx;
        _pool.For(batch, _fold);
        _dx = null;
    }

    // For one output pixel and kernel row ky, the valid kx form one contiguous run of the input row (channels-last),
    // so each (pixel, ky) is a single block copy of up to k·c floats.
    /// <summary>Unfolds example <c>_chunkStart + i</c> into row block i of the col buffer.</summary>
    private void Unfold(int i) => UnfoldInto(_x!, _chunkStart + i, _col.AsSpan(i * Pixels * _patch, Pixels * _patch));

    /// <summary>Unfolds example <paramref name="b"/> of <paramref name="x"/> into <paramref name="col"/> [pixels, patch].</summary>
    private void UnfoldInto(float[] x, int b, Span<float> col) => UnfoldInto(x, b, 0, _outH, col);

    /// <summary>Unfolds output rows [<paramref name="oy0"/>, <paramref name="oy1"/>) of example <paramref name="b"/> into <paramref name="col"/> (one row of patch values per pixel).</summary>
    private void UnfoldInto(float[] x, int b, int oy0, int oy1, Span<float> col)
    {
        int rowLen = _k * _c;
        for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < _outW; ox++)
        {
            int colRow = ((oy - oy0) * _outW + ox) * _patch;
            int ix0 = ox * _stride - _pad;
            int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(_k, _w - ix0);
            for (int ky = 0; ky < _k; ky++)
            {
                var dst = col.Slice(colRow + ky * rowLen, rowLen);
                int iy = oy * _stride - _pad + ky;
                if (iy < 0 || iy >= _h || kx0 >= kx1) { dst.Clear(); continue; }
                if (kx0 > 0) dst[..(kx0 * _c)].Clear();
                if (kx1 < _k) dst[(kx1 * _c)..].Clear();
                int src = ((b * _h + iy) * _w + ix0 + kx0) * _c;
                int n = (kx1 - kx0) * _c;
                if (n <= 4)
                    for (int j = 0; j < n; j++) dst[kx0 * _c + j] = x[src + j];
                else
                    x.AsSpan(src, n).CopyTo(dst[(kx0 * _c)..]);
            }
        }
    }

    private void Fold(int b)
    {
        var dx = _dx!;
        int imageSize = _h * _w * _c;
        dx.AsSpan(b * imageSize, imageSize).Clear();
        int rowLen = _k * _c;
        for (int oy = 0; oy < _outH; oy++)
        for (int ox = 0; ox < _outW; ox++)
        {
            int colRow = ((b * _outH + oy) * _outW + ox) * _patch;
            int ix0 = ox * _stride - _pad;
            int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(_k, _w - ix0);
            if (kx0 >= kx1) continue;
            int n = (kx1 - kx0) * _c;
            for (int ky = 0; ky < _k; ky++)
            {
                int iy = oy * _stride - _pad + ky;
                if (iy < 0 || iy >= _h) continue;
                int dst = ((b * _h + iy) * _w + ix0 + kx0) * _c;
                int src = colRow + ky * rowLen + kx0 * _c;
                if (n <= 4)
                    for (int i = 0; i < n; i++) dx[dst + i] += _col[src + i];
                else
                    TensorPrimitives.Add(dx.AsSpan(dst, n), _col.AsSpan(src, n), dx.AsSpan(dst, n));
            }
        }
    }

    private static int[] OutputShapeOf(string name, int[] input, int outChannels, int k, int stride, int pad)
    {
        int outH = (input[0] + 2 * pad - k) / stride + 1, outW = (input[1] + 2 * pad - k) / stride + 1;
        if (input[0] + 2 * pad < k || input[1] + 2 * pad < k)
            throw new ArgumentException(
                $"Layer '{name}': a {k}×{k} kernel with padding {pad} does not fit the input {Shape.Format(input)}.", nameof(input));
        return [outH, outW, outChannels];
    }
}
