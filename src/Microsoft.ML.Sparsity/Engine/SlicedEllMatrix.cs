using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// An unstructured sparse weight matrix W [rows, cols] in a sliced-ELLPACK layout built for vector registers: rows in
/// tiles of 16 (one register of outputs), columns in segments of 32 (two registers of x), and per (tile, segment) as
/// many slots as the tile's fullest row has non-zeros there, rounded up to a multiple of 4. A slot holds, for each of
/// the 16 rows, one value and its column inside the segment (a byte), zero-padded where the row has fewer non-zeros.
/// </summary>
/// <remarks>
/// <para>
/// Why. A CSR dot product needs a gather per eight non-zeros, and gathers are slow on current x86 cores. Here the 32
/// x values of a segment sit in two registers, and one two-source permute (vpermt2ps) picks each row's x value for a
/// whole slot, which meets the slot's 16 values in one FMA: one permute and one FMA per 16 stored values, no gather.
/// The price is padding, which <see cref="StorageBytes"/> and <see cref="StoredValues"/> count.
/// </para>
/// <para>
/// Layout. Slots go in quads. A tile's quads are one flat stream, <see cref="TileQuads"/>[t] to [t + 1], each quad
/// tagged with its segment (<see cref="QuadSegments"/>); segments where no row of the tile has a non-zero take no
/// quad. Quad q's values are <see cref="Values"/>[64q + 16j + lane] for its slots j = 0..3, and its columns are
/// <see cref="Columns"/>[64q, 64q + 64): 16 little-endian words, one per row, whose byte j is slot j's column, so
/// one load and three shifts give the four slots' permute indices (vpermt2ps reads the low 5 bits of each word; a
/// byte widening per slot would compete with the permutes for the shuffle units). The kernel walks a tile's stream
/// two quads at a time into eight accumulators, reloading the two x registers per quad (cheap, from L1), so no
/// branch depends on the sparsity pattern (a loop per segment with a data-dependent trip count mispredicted once per
/// segment: 3 cycles per slot against 1). Within a (tile, segment) a row's non-zeros are in column order. Values and
/// columns are 64-byte aligned (<see cref="AlignedArray{T}"/>): a load that splits two cache lines costs twice.
/// </para>
/// <para>
/// Every batch row runs the same kernel (batches split their rows over the pool; batch 1 runs on the calling
/// thread), so results do not depend on the batch size or thread count. Without AVX-512 a scalar loop walks the same
/// layout in the same order. Safe to call from several threads at once; allocates nothing once warm.
/// </para>
/// </remarks>
internal sealed unsafe class SlicedEllMatrix : RowKernelMatrix
{
    public const int TileRows = 16;
    public const int SegmentColumns = 32;

    [ThreadStatic] private static Workspace? t_x;

    private SlicedEllMatrix(int rows, int cols, int[] tileQuads, int[] quadSegments, AlignedArray<float> values, AlignedArray<byte> columns)
        : base(rows, cols)
    {
        Tiles = (rows + TileRows - 1) / TileRows;
        TileQuads = tileQuads;
        QuadSegments = quadSegments;
        Values = values;
        Columns = columns;
    }

    public int Tiles { get; }

    /// <summary>Tile t's quads are [TileQuads[t], TileQuads[t + 1]).</summary>
    public int[] TileQuads { get; }

    /// <summary>The segment (32 columns) each quad reads.</summary>
    public int[] QuadSegments { get; }

    public AlignedArray<float> Values { get; }

    public AlignedArray<byte> Columns { get; }

    /// <summary>Stored values, padding included: the multiply-adds one batch row costs.</summary>
    public long StoredValues => Values.Length;

    protected override long RowMultiplyAdds => StoredValues;

    public override long StorageBytes => (long)Values.Length * (sizeof(float) + sizeof(byte)) + (TileQuads.LongLength + QuadSegments.LongLength) * sizeof(int);

    public static SlicedEllMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (w.Length != (long)rows * cols)
            throw new ArgumentException($"Length {w.Length} does not match a {rows}x{cols} matrix.", nameof(w));

        int segments = (cols + SegmentColumns - 1) / SegmentColumns, tiles = (rows + TileRows - 1) / TileRows;
        var tileQuads = new int[tiles + 1];
        var quadSegments = new List<int>();
        var quadsOf = new int[tiles * segments];
        for (int t = 0; t < tiles; t++)
        {
            for (int s = 0; s < segments; s++)
            {
                int width = Math.Min(SegmentColumns, cols - s * SegmentColumns), most = 0;
                for (int lane = 0; lane < TileRows; lane++)
                {
                    int r = t * TileRows + lane;
                    if (r < rows)
                        most = Math.Max(most, width - w.Slice(r * cols + s * SegmentColumns, width).Count(0f));
                }

                int quads = (most + 3) / 4;
                quadsOf[t * segments + s] = quads;
                for (int q = 0; q < quads; q++)
                    quadSegments.Add(s);
            }

            tileQuads[t + 1] = quadSegments.Count;
        }

        var valueArray = new AlignedArray<float>(checked(quadSegments.Count * 64));
        var columnArray = new AlignedArray<byte>(valueArray.Length);
        Span<float> values = valueArray.Span;
        Span<byte> columns = columnArray.Span;
        for (int t = 0; t < tiles; t++)
        {
            for (int s = 0, q = tileQuads[t]; s < segments; q += quadsOf[t * segments + s], s++)
            {
                int width = Math.Min(SegmentColumns, cols - s * SegmentColumns);
                for (int lane = 0; lane < TileRows && t * TileRows + lane < rows; lane++)
                {
                    ReadOnlySpan<float> part = w.Slice((t * TileRows + lane) * cols + s * SegmentColumns, width);
                    for (int c = 0, slot = 4 * q; c < width; c++)
                    {
                        if (part[c] == 0f)
                            continue;
                        values[slot / 4 * 64 + slot % 4 * TileRows + lane] = part[c];
                        columns[slot / 4 * 64 + lane * 4 + slot % 4] = (byte)c;
                        slot++;
                    }
                }
            }
        }

        return new SlicedEllMatrix(rows, cols, tileQuads, [.. quadSegments], valueArray, columnArray);
    }

    public float[] ToDense()
    {
        var w = new float[(long)Rows * Cols];
        for (int t = 0; t < Tiles; t++)
        {
            for (int q = TileQuads[t]; q < TileQuads[t + 1]; q++)
            {
                for (int j = 0; j < 4; j++)
                {
                    for (int lane = 0; lane < TileRows && t * TileRows + lane < Rows; lane++)
                    {
                        float value = Values[(long)q * 64 + j * TileRows + lane];
                        if (value != 0f)
                            w[(long)(t * TileRows + lane) * Cols + QuadSegments[q] * SegmentColumns + Columns[(long)q * 64 + lane * 4 + j]] = value;
                    }
                }
            }
        }

        return w;
    }

    /// <summary>y[0, Rows) = x · Wᵀ for one batch row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    protected override void MultiplyRow(float* x, float* y)
    {
        // x is copied into a per-thread buffer padded with zeros to whole segments, so every quad reads 32 values.
        int padded = (Cols + SegmentColumns - 1) / SegmentColumns * SegmentColumns;
        float* xs = (t_x ??= new Workspace()).Get(padded);
        new Span<float>(x, Cols).CopyTo(new Span<float>(xs, padded));
        new Span<float>(xs + Cols, padded - Cols).Clear();
        float* sums = stackalloc float[TileRows];
        float* values = Values.Pointer;
        byte* columns = Columns.Pointer;
        fixed (int* segments = QuadSegments)
        {
            for (int t = 0; t < Tiles; t++)
            {
                int q0 = TileQuads[t], q1 = TileQuads[t + 1];
                if (Avx512F.IsSupported)
                    Vector512.Store(Tile(xs, q0, q1, segments, values, columns), sums);
                else
                    TileScalar(xs, q0, q1, segments, values, columns, sums);
                int lanes = Math.Min(TileRows, Rows - t * TileRows);
                new Span<float>(sums, lanes).CopyTo(new Span<float>(y + t * TileRows, lanes));
            }
        }
    }

    /// <summary>One tile's 16 outputs: quads alternate between two sets of four accumulators (slot j of a quad into the set's j-th).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Tile(float* x, int q0, int q1, int* segments, float* values, byte* columns)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        float* v = values + (long)q0 * 64;
        byte* c = columns + (long)q0 * 64;
        int* s = segments + q0, end = segments + q1;
        for (; s + 2 <= end; s += 2, v += 128, c += 128)
        {
            Quad(x + s[0] * SegmentColumns, v, c, ref a0, ref a1, ref a2, ref a3);
            Quad(x + s[1] * SegmentColumns, v + 64, c + 64, ref b0, ref b1, ref b2, ref b3);
        }

        if (s < end)
            Quad(x + s[0] * SegmentColumns, v, c, ref a0, ref a1, ref a2, ref a3);
        return ((a0 + b0) + (a1 + b1)) + ((a2 + b2) + (a3 + b3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(float* x, float* v, byte* c, ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3)
    {
        Vector512<float> lo = Vector512.Load(x), hi = Vector512.Load(x + 16);
        Vector512<int> k = Vector512.Load((int*)c);
        a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v), Avx512F.PermuteVar16x32x2(lo, k, hi), a0);
        a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 16), Avx512F.PermuteVar16x32x2(lo, Avx512F.ShiftRightLogical(k, 8), hi), a1);
        a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 32), Avx512F.PermuteVar16x32x2(lo, Avx512F.ShiftRightLogical(k, 16), hi), a2);
        a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 48), Avx512F.PermuteVar16x32x2(lo, Avx512F.ShiftRightLogical(k, 24), hi), a3);
    }

    /// <summary>The scalar form of <see cref="Tile"/>, summing in the same order.</summary>
    private static void TileScalar(float* x, int q0, int q1, int* segments, float* values, byte* columns, float* sums)
    {
        Span<float> a = stackalloc float[8];
        for (int lane = 0; lane < TileRows; lane++)
        {
            a.Clear();
            for (int q = q0; q < q1; q++)
            {
                float* xs = x + segments[q] * SegmentColumns;
                int set = (q - q0) & 1;
                for (int j = 0; j < 4; j++)
                    a[set * 4 + j] = MathF.FusedMultiplyAdd(values[(long)q * 64 + j * TileRows + lane], xs[columns[(long)q * 64 + lane * 4 + j]], a[set * 4 + j]);
            }

            sums[lane] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
        }
    }
}
