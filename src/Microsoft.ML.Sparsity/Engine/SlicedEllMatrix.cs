using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// An unstructured sparse weight matrix W [rows, cols] in a sliced-ELLPACK layout built for vector registers: rows in
/// tiles of 16 (one register of outputs), columns in segments of 32 (two registers of x), and per (tile, segment) as
/// many slots as the tile's fullest row has non-zeros there. A slot holds, for each of the 16 rows, one value and its
/// column inside the segment (a byte), zero-padded where the row has fewer non-zeros.
/// </summary>
/// <remarks>
/// <para>
/// Why. A CSR dot product needs a gather per eight non-zeros, and gathers are slow on current x86 cores. Here the
/// 32 x values of a segment sit in two registers, and one two-source permute (vpermt2ps) picks each row's x value for a
/// whole slot, which meets the slot's 16 values in one FMA: one permute and one FMA per 16 stored values, no gather.
/// The price is padding: a tile stores, per segment, its fullest count for every row. <see cref="StorageBytes"/> and
/// <see cref="StoredValues"/> count it.
/// </para>
/// <para>
/// Layout. Slot k's 16 values are <see cref="Values"/>[16k, 16k + 16) and their columns inside the segment
/// <see cref="Columns"/>, packed by quads of slots: quad q's bytes [64q, 64q + 64) are 16 little-endian words, one
/// per row, whose byte j is slot 4q + j's column, so one load and three shifts give four slots' permute indices
/// (a byte widening per slot would compete with the permutes for the shuffle units). Tile t's slots start at
/// <see cref="SlotStarts"/>[t]; every segment of a tile has the same number of slots, the tile's fullest row's count
/// in its fullest segment rounded up to a multiple of 4, so the kernel's inner loop runs the same count for every
/// segment of a tile and its branches predict (variable counts per segment cost a mispredicted branch per segment,
/// measured 3 cycles per slot against 1). Within a (tile, segment) a row's non-zeros are in column order.
/// </para>
/// <para>
/// Every batch row runs the same kernel (batches split their rows over the pool; batch 1 runs on the calling
/// thread), so results do not depend on the batch size or thread count. Without AVX-512 a scalar loop walks the same
/// layout in the same order. Safe to call from several threads at once; allocates nothing once warm.
/// </para>
/// </remarks>
internal sealed unsafe class SlicedEllMatrix : IWeightMatrix
{
    public const int TileRows = 16;
    public const int SegmentColumns = 32;

    /// <summary>Below this many stored multiply-adds per call, everything runs on the calling thread.</summary>
    private const long ParallelThreshold = 1L << 16;

    private static readonly Action<BatchJob, int> RowsItem = (job, item) =>
    {
        var w = (SlicedEllMatrix)job.Owner!;
        int b0 = (int)((long)item * job.Batch / job.Items), b1 = (int)((long)(item + 1) * job.Batch / job.Items);
        for (int b = b0; b < b1; b++)
            w.MultiplyRow(job.X + (long)b * w.Cols, job.Y + (long)b * w.Rows);
    };

    private SlicedEllMatrix(int rows, int cols, int[] slotStarts, float[] values, byte[] columns)
    {
        Rows = rows;
        Cols = cols;
        Segments = (cols + SegmentColumns - 1) / SegmentColumns;
        Tiles = (rows + TileRows - 1) / TileRows;
        SlotStarts = slotStarts;
        Values = values;
        Columns = columns;
    }

    public int Rows { get; }

    public int Cols { get; }

    public int Segments { get; }

    public int Tiles { get; }

    public int[] SlotStarts { get; }

    public float[] Values { get; }

    public byte[] Columns { get; }

    /// <summary>Stored slots × 16: the multiply-adds one batch row costs, padding included.</summary>
    public long StoredValues => Values.LongLength;

    public long StorageBytes => Values.LongLength * (sizeof(float) + sizeof(byte)) + SlotStarts.LongLength * sizeof(int);

    public static SlicedEllMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (w.Length != (long)rows * cols)
            throw new ArgumentException($"Length {w.Length} does not match a {rows}x{cols} matrix.", nameof(w));

        int segments = (cols + SegmentColumns - 1) / SegmentColumns, tiles = (rows + TileRows - 1) / TileRows;
        var starts = new int[tiles + 1];
        var counts = new int[TileRows];
        for (int t = 0; t < tiles; t++)
        {
            int most = 0;
            for (int s = 0; s < segments; s++)
            {
                int width = Math.Min(SegmentColumns, cols - s * SegmentColumns);
                for (int r = t * TileRows; r < Math.Min(rows, (t + 1) * TileRows); r++)
                    most = Math.Max(most, width - w.Slice(r * cols + s * SegmentColumns, width).Count(0f));
            }

            starts[t + 1] = starts[t] + (most + 3) / 4 * 4 * segments;
        }

        var values = new float[(long)starts[^1] * TileRows];
        var columns = new byte[values.Length];
        for (int t = 0; t < tiles; t++)
        {
            int perSegment = (starts[t + 1] - starts[t]) / Math.Max(1, segments);
            for (int s = 0; s < segments; s++)
            {
                int width = Math.Min(SegmentColumns, cols - s * SegmentColumns), first = starts[t] + s * perSegment;
                Array.Clear(counts);
                for (int lane = 0; lane < TileRows && t * TileRows + lane < rows; lane++)
                {
                    ReadOnlySpan<float> part = w.Slice((t * TileRows + lane) * cols + s * SegmentColumns, width);
                    for (int c = 0; c < width; c++)
                    {
                        if (part[c] == 0f)
                            continue;
                        int slot = first + counts[lane]++;
                        values[(long)slot * TileRows + lane] = part[c];
                        columns[ColumnOffset(slot, lane)] = (byte)c;
                    }
                }
            }
        }

        return new SlicedEllMatrix(rows, cols, starts, values, columns);
    }

    public float[] ToDense()
    {
        var w = new float[(long)Rows * Cols];
        for (int t = 0; t < Tiles; t++)
        {
            int perSegment = SlotsPerSegment(t);
            for (int s = 0; s < Segments; s++)
            {
                int first = SlotStarts[t] + s * perSegment;
                for (int slot = first; slot < first + perSegment; slot++)
                {
                    for (int lane = 0; lane < TileRows && t * TileRows + lane < Rows; lane++)
                    {
                        float value = Values[(long)slot * TileRows + lane];
                        if (value != 0f)
                            w[(long)(t * TileRows + lane) * Cols + s * SegmentColumns + Columns[ColumnOffset(slot, lane)]] = value;
                    }
                }
            }
        }

        return w;
    }

    /// <summary>Where the column of (slot, lane) is: slots go in quads, and a quad's 16 lanes × 4 slots form 16 little-endian words, one per lane.</summary>
    private static long ColumnOffset(int slot, int lane) => (long)slot / 4 * 64 + lane * 4 + slot % 4;

    /// <summary>Slots per segment of tile <paramref name="t"/>: its fullest row's non-zeros in its fullest segment.</summary>
    private int SlotsPerSegment(int t) => Segments == 0 ? 0 : (SlotStarts[t + 1] - SlotStarts[t]) / Segments;

    public void MultiplyTransposed(WorkerPool pool, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        if (x.Length < (long)batch * Cols)
            throw new ArgumentException($"Length {x.Length} is too short for {batch} rows of {Cols} inputs.", nameof(x));
        if (y.Length < (long)batch * Rows)
            throw new ArgumentException($"Length {y.Length} is too short for {batch} rows of {Rows} outputs.", nameof(y));
        if (batch == 0 || Rows == 0)
            return;

        fixed (float* px = x)
        fixed (float* py = y)
        {
            if (batch == 1 || batch * StoredValues < ParallelThreshold)
            {
                for (int b = 0; b < batch; b++)
                    MultiplyRow(px + (long)b * Cols, py + (long)b * Rows);
                return;
            }

            BatchJob.Run(pool, Math.Min(batch, pool.ThreadCount), RowsItem, this, px, py, batch);
        }
    }

    /// <summary>y[0, Rows) = x · Wᵀ for one batch row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private void MultiplyRow(float* x, float* y)
    {
        // The last segment reads a zero-padded copy of x's tail, never past the row.
        float* tail = stackalloc float[SegmentColumns];
        int full = Cols / SegmentColumns, rest = Cols - full * SegmentColumns;
        new Span<float>(tail, SegmentColumns).Clear();
        new Span<float>(x + full * SegmentColumns, rest).CopyTo(new Span<float>(tail, SegmentColumns));
        float* sums = stackalloc float[TileRows];
        fixed (int* starts = SlotStarts)
        fixed (float* values = Values)
        fixed (byte* columns = Columns)
        {
            for (int t = 0; t < Tiles; t++)
            {
                float* v = values + (long)starts[t] * TileRows;
                byte* c = columns + (long)starts[t] * TileRows;
                int perSegment = SlotsPerSegment(t);
                if (Avx512F.IsSupported)
                    Vector512.Store(Tile(x, tail, full, perSegment, v, c), sums);
                else
                    TileScalar(x, tail, full, perSegment, v, c, sums);
                int lanes = Math.Min(TileRows, Rows - t * TileRows);
                new Span<float>(sums, lanes).CopyTo(new Span<float>(y + t * TileRows, lanes));
            }
        }
    }

    /// <summary>One tile's 16 outputs; slot j of a segment adds into accumulator j mod 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vector512<float> Tile(float* x, float* tail, int full, int perSegment, float* v, byte* c)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        if (perSegment == 0)
            return a0;
        for (int s = 0; s < Segments; s++)
        {
            float* xs = s < full ? x + s * SegmentColumns : tail;
            Vector512<float> lo = Vector512.Load(xs), hi = Vector512.Load(xs + 16);
            for (int j = 0; j < perSegment; j += 4, v += 64, c += 64)
            {
                // vpermt2ps reads the low 5 bits of each 32-bit index, so a shift brings each slot's byte down.
                Vector512<int> k = Vector512.Load((int*)c);
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v), Avx512F.PermuteVar16x32x2(lo, k, hi), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 16), Avx512F.PermuteVar16x32x2(lo, Avx512F.ShiftRightLogical(k, 8), hi), a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 32), Avx512F.PermuteVar16x32x2(lo, Avx512F.ShiftRightLogical(k, 16), hi), a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 48), Avx512F.PermuteVar16x32x2(lo, Avx512F.ShiftRightLogical(k, 24), hi), a3);
            }
        }

        return (a0 + a1) + (a2 + a3);
    }

    /// <summary>The scalar form of <see cref="Tile"/>, summing in the same order.</summary>
    private void TileScalar(float* x, float* tail, int full, int perSegment, float* v, byte* c, float* sums)
    {
        Span<float> a = stackalloc float[4];
        for (int lane = 0; lane < TileRows; lane++)
        {
            a.Clear();
            for (int s = 0, k = 0; s < Segments; s++)
            {
                float* xs = s < full ? x + s * SegmentColumns : tail;
                for (int j = 0; j < perSegment; j++, k++)
                    a[j & 3] = MathF.FusedMultiplyAdd(v[(long)k * TileRows + lane], xs[c[ColumnOffset(k, lane)]], a[j & 3]);
            }

            sums[lane] = (a[0] + a[1]) + (a[2] + a[3]);
        }
    }
}
