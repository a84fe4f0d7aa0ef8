using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

// Kernels of NMMatrix.MultiplyTransposed, y[b, r] = Σ_k Values[r, k] · x[b, column(r, k)].
//
// Small batches (fewer than BlockBatch rows) take one dot product per (batch row, weight row). For M = 4 on
// AVX-512 a dot product walks chunks of 16 kept values: their 16 two-bit indices are one aligned 32-bit word of
// the row's index stream, broadcast from memory; one variable shift and one ternary-logic op turn it into 16 column
// offsets inside the chunk's span of x (32 columns for 2:4, 64 for 1:4), and vpermt2ps picks the 16 x values
// from registers (no gather; 1:4 needs two permutes and a blend), which meet the 16 values in one FMA; the last,
// partial chunk of a row meets a zero-padded copy of x's tail. On the Zen 5 development machine the two-source
// permute bounds the loop (about 1 ns per chunk; the same loop with loads instead of permutes runs at 0.6 ns).
// Other N:M use a scalar loop that decodes one index at a time.
//
// Larger batches go in blocks of 16 batch rows: the block of x is transposed once into xT [cols, 16], so each
// kept weight is broadcast against the 16 batch values of its column (one load, one FMA per kept value, no
// gather). Four weight rows run together, each with two accumulators (8 independent FMA chains); their column
// offsets are decoded first, vectorised as above, into a per-thread scratch row. This kernel is not cache-blocked
// over columns (xT of a 784-wide layer is 50 KB, more than L1), and at batch 256 it is slower than the dense
// packed GEMM, which reuses each loaded value across a whole register tile.
internal sealed unsafe partial class NMMatrix
{
    /// <summary>Batch rows per block of the blocked kernel (one Vector512 of lanes).</summary>
    private const int Lanes = 16;

    /// <summary>From this batch size on, the blocked (transposed-x) kernel runs.</summary>
    private const int BlockBatch = 4;

    /// <summary>Below this many kept multiply-adds per call, everything runs on the calling thread.</summary>
    private const long ParallelThreshold = 1L << 16;

    // Lane l of a 16-value chunk: its index is bits [2l, 2l + 2) of the chunk's word; its group starts at column
    // 4 · (l / 2) of the chunk (2:4) or 4 · l (1:4).
    private static readonly Vector512<uint> IndexShifts =
        Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<uint> GroupStarts24 =
        Vector512.Create(0u, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
    private static readonly Vector512<uint> GroupStarts14 =
        Vector512.Create(0u, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60);

    private static readonly Vector512<int> LaneNumbers =
        Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    // 1:4 chunks span 64 columns: lanes 0-7 select from x[0, 32), lanes 8-15 from x[32, 64).
    private static readonly Vector512<float> UpperLanes =
        Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1).AsSingle();

    [ThreadStatic] private static Job? t_job;
    [ThreadStatic] private static Scratch<float>? t_xT;
    [ThreadStatic] private static Scratch<int>? t_offsets;

    /// <summary>Columns spanned by one 16-value chunk of the AVX-512 kernels.</summary>
    private int ChunkColumns => _kernel == RowKernel.TwoOfFour ? 32 : 64;

    private static Job RentJob()
    {
        Job? job = t_job;
        if (job is null || job.InUse)
        {
            // Only a re-entrant call on the same thread finds the cached job busy; give it its own.
            job = new Job();
            t_job ??= job;
        }

        job.InUse = true;
        return job;
    }

    /// <summary>
    /// y[r] = Σ_k Values[r, k] · x[column(r, k)] for r in [r0, r1). For the AVX-512 kernels, <paramref name="xTail"/>
    /// holds x past the last whole chunk, zero-padded to a whole chunk (see <see cref="CopyTail"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private void DotRows(int r0, int r1, float* x, float* xTail, float* values, byte* indices, float* y)
    {
        int kept = _keptPerRow, rowBytes = IndexRowBytes;
        if (_kernel == RowKernel.Scalar)
        {
            int groups = _groups, n = N, m = M, bits = IndexBits;
            for (int r = r0; r < r1; r++)
            {
                float* v = values + (long)r * kept;
                var row = new ReadOnlySpan<byte>(indices + (long)r * rowBytes, rowBytes);
                float sum = 0f;
                for (int k = 0, g = 0; g < groups; g++)
                {
                    float* xg = x + g * m;
                    for (int j = 0; j < n; j++, k++)
                        sum += v[k] * xg[ReadIndex(row, k, bits)];
                }

                y[r] = sum;
            }

            return;
        }

        // The last, partial chunk of a row: its kept values (lanes below `rest`) meet xTail; the lanes past the row
        // read the next row's values (masked to 0) and the row's zero padding bits (columns past the row's, where
        // xTail is 0). The last row's partial chunk is copied, so no read passes the end of Values.
        int chunks = _chunks, rest = kept - chunks * 16;
        bool twoOfFour = _kernel == RowKernel.TwoOfFour;
        Vector512<float> restMask = Vector512.LessThan(LaneNumbers, Vector512.Create(rest)).AsSingle();
        float* lastCopy = stackalloc float[16];
        for (int r = r0; r < r1; r++)
        {
            float* v = values + (long)r * kept;
            uint* words = (uint*)(indices + (long)r * rowBytes);
            Vector512<float> tail = default;
            if (rest > 0)
            {
                float* vt = v + chunks * 16;
                if (r == Rows - 1)
                {
                    new Span<float>(vt, rest).CopyTo(new Span<float>(lastCopy, 16));
                    vt = lastCopy;
                }

                Vector512<float> tailValues = Vector512.ConditionalSelect(restMask, Vector512.Load(vt), default);
                tail = tailValues * (twoOfFour
                    ? Pick24(xTail, Columns(words[chunks], GroupStarts24))
                    : Pick14(xTail, Columns(words[chunks], GroupStarts14)));
            }

            y[r] = twoOfFour ? Dot24(v, words, x, chunks, tail) : Dot14(v, words, x, chunks, tail);
        }
    }

    /// <summary>
    /// Copies x past the last whole chunk of the AVX-512 kernels into <paramref name="tail"/> (64 floats), zero-padded.
    /// </summary>
    private void CopyTail(float* x, float* tail)
    {
        new Span<float>(tail, 64).Clear();
        if (_kernel != RowKernel.Scalar)
        {
            int start = _chunks * ChunkColumns;
            new Span<float>(x + start, Cols - start).CopyTo(new Span<float>(tail, 64));
        }
    }

    // The dot products run four chunks per step into four accumulators: the decode-permute-FMA chain of a chunk is
    // long, and fewer independent chains leave the FMA units idle (measured 2.2 ns per chunk with two, 1.0 with four).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot24(float* v, uint* words, float* x, int chunks, Vector512<float> a0)
    {
        Vector512<float> a1 = default, a2 = default, a3 = default;
        int c = 0;
        for (; c + 4 <= chunks; c += 4, v += 64, x += 128, words += 4)
        {
            a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v), Pick24(x, Columns(*words, GroupStarts24)), a0);
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 16), Pick24(x + 32, Columns(words[1], GroupStarts24)), a1);
            a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 32), Pick24(x + 64, Columns(words[2], GroupStarts24)), a2);
            a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 48), Pick24(x + 96, Columns(words[3], GroupStarts24)), a3);
        }

        for (; c < chunks; c++, v += 16, x += 32, words++)
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v), Pick24(x, Columns(*words, GroupStarts24)), a1);
        return Vector512.Sum((a0 + a1) + (a2 + a3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot14(float* v, uint* words, float* x, int chunks, Vector512<float> a0)
    {
        Vector512<float> a1 = default, a2 = default, a3 = default;
        int c = 0;
        for (; c + 4 <= chunks; c += 4, v += 64, x += 256, words += 4)
        {
            a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v), Pick14(x, Columns(*words, GroupStarts14)), a0);
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 16), Pick14(x + 64, Columns(words[1], GroupStarts14)), a1);
            a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 32), Pick14(x + 128, Columns(words[2], GroupStarts14)), a2);
            a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 48), Pick14(x + 192, Columns(words[3], GroupStarts14)), a3);
        }

        for (; c < chunks; c++, v += 16, x += 64, words++)
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v), Pick14(x, Columns(*words, GroupStarts14)), a1);
        return Vector512.Sum((a0 + a1) + (a2 + a3));
    }

    /// <summary>x[columns[l]] for the 16 lanes, columns in [0, 32) (vpermt2ps over two registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pick24(float* x, Vector512<int> columns) =>
        Avx512F.PermuteVar16x32x2(Vector512.Load(x), columns, Vector512.Load(x + 16));

    /// <summary>
    /// x[columns[l]] for the 16 lanes of a 1:4 chunk: lanes 0-7 have columns in [0, 32), lanes 8-15 in [32, 64).
    /// vpermt2ps uses the low 5 bits of a column, so one permute serves each half and a blend joins them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pick14(float* x, Vector512<int> columns) =>
        Vector512.ConditionalSelect(UpperLanes,
            Avx512F.PermuteVar16x32x2(Vector512.Load(x + 32), columns, Vector512.Load(x + 48)),
            Avx512F.PermuteVar16x32x2(Vector512.Load(x), columns, Vector512.Load(x + 16)));

    /// <summary>The columns, inside the chunk, of the 16 kept values whose 2-bit indices are <paramref name="word"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Columns(uint word, Vector512<uint> groupStarts) =>
        ((Avx512F.ShiftRightLogicalVariable(Vector512.Create(word), IndexShifts) & Vector512.Create(3u))
            | groupStarts).AsInt32();

    /// <summary>
    /// Rows [r0, r1) of the blocked kernel: y[b, r] for the 16 (or, in the last block, <paramref name="lanes"/>)
    /// batch rows whose x is transposed in <paramref name="xT"/> [Cols, 16].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private void BlockRows(float* xT, int r0, int r1, float* values, byte* indices, float* y, int lanes)
    {
        int kept = _keptPerRow;
        int* offsets = (t_offsets ??= new Scratch<int>()).Get(4 * kept + 16);
        float* sums = stackalloc float[Lanes];
        int r = r0;
        for (; r + 4 <= r1; r += 4)
        {
            for (int q = 0; q < 4; q++)
                DecodeOffsets(r + q, indices, offsets + q * kept);

            float* v0 = values + (long)r * kept, v1 = v0 + kept, v2 = v1 + kept, v3 = v2 + kept;
            int* o0 = offsets, o1 = o0 + kept, o2 = o1 + kept, o3 = o2 + kept;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            int k = 0;
            for (; k + 2 <= kept; k += 2)
            {
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(v0[k]), Vector512.Load(xT + o0[k]), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(v1[k]), Vector512.Load(xT + o1[k]), a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(v2[k]), Vector512.Load(xT + o2[k]), a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(v3[k]), Vector512.Load(xT + o3[k]), a3);
                b0 = Avx512F.FusedMultiplyAdd(Vector512.Create(v0[k + 1]), Vector512.Load(xT + o0[k + 1]), b0);
                b1 = Avx512F.FusedMultiplyAdd(Vector512.Create(v1[k + 1]), Vector512.Load(xT + o1[k + 1]), b1);
                b2 = Avx512F.FusedMultiplyAdd(Vector512.Create(v2[k + 1]), Vector512.Load(xT + o2[k + 1]), b2);
                b3 = Avx512F.FusedMultiplyAdd(Vector512.Create(v3[k + 1]), Vector512.Load(xT + o3[k + 1]), b3);
            }

            if (k < kept)
            {
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(v0[k]), Vector512.Load(xT + o0[k]), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(v1[k]), Vector512.Load(xT + o1[k]), a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(v2[k]), Vector512.Load(xT + o2[k]), a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(v3[k]), Vector512.Load(xT + o3[k]), a3);
            }

            StoreColumn(a0 + b0, sums, y + r, lanes);
            StoreColumn(a1 + b1, sums, y + r + 1, lanes);
            StoreColumn(a2 + b2, sums, y + r + 2, lanes);
            StoreColumn(a3 + b3, sums, y + r + 3, lanes);
        }

        for (; r < r1; r++)
        {
            DecodeOffsets(r, indices, offsets);
            float* v = values + (long)r * kept;
            Vector512<float> a = default, b = default;
            int k = 0;
            for (; k + 2 <= kept; k += 2)
            {
                a = Avx512F.FusedMultiplyAdd(Vector512.Create(v[k]), Vector512.Load(xT + offsets[k]), a);
                b = Avx512F.FusedMultiplyAdd(Vector512.Create(v[k + 1]), Vector512.Load(xT + offsets[k + 1]), b);
            }

            if (k < kept)
                a = Avx512F.FusedMultiplyAdd(Vector512.Create(v[k]), Vector512.Load(xT + offsets[k]), a);
            StoreColumn(a + b, sums, y + r, lanes);
        }
    }

    /// <summary>y[b · Rows] = sum[b] for the first <paramref name="lanes"/> batch rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreColumn(Vector512<float> sum, float* scratch, float* y, int lanes)
    {
        Vector512.Store(sum, scratch);
        for (int b = 0; b < lanes; b++)
            y[(long)b * Rows] = scratch[b];
    }

    /// <summary>offsets[k] = 16 · column of kept value k of row r: its x values' offset in the transposed block.</summary>
    private void DecodeOffsets(int r, byte* indices, int* offsets)
    {
        byte* rowIndices = indices + (long)r * IndexRowBytes;
        if (_kernel != RowKernel.Scalar)
        {
            Vector512<uint> starts = _kernel == RowKernel.TwoOfFour ? GroupStarts24 : GroupStarts14;
            // Whole vectors, the last one possibly partial: its lanes past the row are overwritten by the next
            // row's offsets or lie in the scratch's 16 spare entries.
            int span = ChunkColumns, kept = _keptPerRow;
            for (int c = 0, k = 0; k < kept; c++, k += 16)
            {
                Vector512<int> columns = Columns(((uint*)rowIndices)[c], starts);
                Vector512.Store((columns + Vector512.Create(c * span)) << 4, offsets + k);
            }
        }
        else
        {
            var row = new ReadOnlySpan<byte>(rowIndices, IndexRowBytes);
            for (int g = 0, k = 0; g < _groups; g++)
            {
                for (int j = 0; j < N; j++, k++)
                    offsets[k] = (g * M + ReadIndex(row, k, IndexBits)) * Lanes;
            }
        }
    }

    /// <summary>
    /// The arguments of one call, pinned and stored as fields so the cached item delegates reach pool threads
    /// without a closure.
    /// </summary>
    private sealed class Job
    {
        private readonly Action<int> _rowsItem;
        private readonly Action<int> _blockItem;

        private NMMatrix? _w;
        private float* _x, _y, _values;
        private byte* _indices;
        private int _batch, _items, _rowChunks;

        public Job()
        {
            _rowsItem = RunRowsItem;
            _blockItem = RunBlockItem;
        }

        public bool InUse { get; set; }

        public void Run(WorkerPool pool, NMMatrix w, float* x, float* y, float* values, byte* indices, int batch)
        {
            (_w, _batch) = (w, batch);
            _x = x;
            _y = y;
            _values = values;
            _indices = indices;
            int threads = (long)batch * w.Rows * w._keptPerRow < ParallelThreshold ? 1 : pool.ThreadCount;
            if (batch < BlockBatch || !Avx512F.IsSupported)
            {
                _items = Math.Min(threads, w.Rows);
                pool.For(_items, _rowsItem);
            }
            else
            {
                // Blocks of 16 batch rows; when there are fewer blocks than threads, split the rows as well.
                int blocks = (batch + Lanes - 1) / Lanes;
                _rowChunks = blocks >= threads ? 1 : Math.Min((threads + blocks - 1) / blocks, (w.Rows + 3) / 4);
                pool.For(blocks * _rowChunks, _blockItem);
            }
        }

        public void Release()
        {
            _w = null;
            _x = _y = _values = null;
            _indices = null;
            InUse = false;
        }

        /// <summary>Weight rows [r0, r1) for every batch row, one dot product each.</summary>
        [SkipLocalsInit]
        private void RunRowsItem(int item)
        {
            NMMatrix w = _w!;
            int r0 = (int)((long)item * w.Rows / _items), r1 = (int)((long)(item + 1) * w.Rows / _items);
            float* xTail = stackalloc float[64];
            for (int b = 0; b < _batch; b++)
            {
                float* x = _x + (long)b * w.Cols, y = _y + (long)b * w.Rows;
                w.CopyTail(x, xTail);
                w.DotRows(r0, r1, x, xTail, _values, _indices, y);
            }
        }

        /// <summary>One block of 16 batch rows, for a range of whole 4-row groups of weight rows.</summary>
        private void RunBlockItem(int item)
        {
            NMMatrix w = _w!;
            int block = item / _rowChunks, chunk = item % _rowChunks;
            int quads = (w.Rows + 3) / 4;
            int r0 = chunk * quads / _rowChunks * 4, r1 = Math.Min(w.Rows, (chunk + 1) * quads / _rowChunks * 4);
            int b0 = block * Lanes, lanes = Math.Min(Lanes, _batch - b0);
            if (r0 >= r1)
                return;

            // xT[c, b] = x[b0 + b, c]; lanes past the batch are zero.
            int cols = w.Cols;
            float* xT = (t_xT ??= new Scratch<float>()).Get(cols * Lanes);
            if (lanes < Lanes)
                new Span<float>(xT, cols * Lanes).Clear();
            for (int b = 0; b < lanes; b++)
            {
                float* x = _x + (long)(b0 + b) * cols;
                for (int c = 0; c < cols; c++)
                    xT[c * Lanes + b] = x[c];
            }

            w.BlockRows(xT, r0, r1, _values, _indices, _y + (long)b0 * w.Rows, lanes);
        }
    }
}
