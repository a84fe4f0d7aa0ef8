using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// An unstructured sparse weight matrix W [rows, cols] in a sliced-ELLPACK layout built for vector registers: rows in
/// tiles of 16 (one register of outputs), and per tile a stream of quads, each four slots wide, that read a window of
/// 64 consecutive x values (four registers). A slot holds, for each of the 16 rows, one value and its column inside
/// the quad's window (a byte), zero where the row has nothing to add there.
/// </summary>
/// <remarks>
/// <para>
/// Why. A CSR dot product needs a gather per eight non-zeros, and gathers are slow on current x86 cores. Here the 64
/// x values of a window sit in four registers, and two two-source permutes (vpermt2ps) and a blend pick each row's x
/// value for a whole slot, which meets the slot's 16 values in one FMA: no gather. The price is padding (a row with
/// nothing left in a window idles in its slots), which <see cref="StorageBytes"/> and <see cref="StoredValues"/> count.
/// </para>
/// <para>
/// Windows. A tile's windows are not fixed segments: <see cref="FromDense"/> walks the tile's rows left to right and
/// starts each quad's window at the leftmost column any row still has to consume, rounded down to a multiple of 16
/// (so the four x loads are 64-byte aligned); every row then takes up to four of its next non-zeros inside the
/// window. Rows thus share windows wherever their non-zeros happen to lie, instead of every (tile, segment) taking as
/// many slots as its fullest row has there. On LeNet-300-100's first layer at 92% sparsity this stores 1.6 values per
/// non-zero where fixed segments of 32 stored 3.0, and multiplies twice as fast (docs/inference.md).
/// </para>
/// <para>
/// Rows. A tile takes as many quads as its fullest row needs, so rows go into tiles by their number of non-zeros, most
/// first (<see cref="RowOrder"/>; each tile's 16 sums are written back to their own rows). Trained masks are uneven:
/// LeNet's first layer after magnitude pruning to 92% has 0 to 247 non-zeros a row, and sorted it stores 1.75 values
/// per non-zero instead of 3.38 and multiplies 1.85× faster; random masks gain 3–10%.
/// </para>
/// <para>
/// Layout. Tile t's quads are [<see cref="TileQuads"/>[t], [t + 1]), quad q's window starts at column
/// <see cref="QuadWindows"/>[q]. Its values are <see cref="Values"/>[64q + 16j + lane] for its slots j = 0..3, and its
/// columns are <see cref="Columns"/>[64q, 64q + 64): 16 little-endian words, one per row, whose byte j is slot j's
/// column in the window, so one load and three shifts give the four slots' permute indices (vpermt2ps reads the low
/// 5 bits of each word; bit 5 picks the window's upper half). The kernel walks a tile's stream two quads at a time
/// into eight accumulators, so no branch depends on the sparsity pattern. A row's non-zeros are in column order.
/// Values and columns are 64-byte aligned (<see cref="AlignedArray{T}"/>): a load that splits two cache lines costs twice.
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
    public const int WindowColumns = 64;

    /// <summary>Windows start at multiples of this many columns (one cache line of x).</summary>
    public const int WindowAlignment = 16;

    [ThreadStatic] private static Workspace? t_x;

    private SlicedEllMatrix(int rows, int cols, int[] rowOrder, int[] tileQuads, int[] quadWindows, AlignedArray<float> values, AlignedArray<byte> columns)
        : base(rows, cols)
    {
        Tiles = (rows + TileRows - 1) / TileRows;
        RowOrder = rowOrder;
        TileQuads = tileQuads;
        QuadWindows = quadWindows;
        Values = values;
        Columns = columns;
    }

    public int Tiles { get; }

    /// <summary>The weight row stored at each position: tile t's lane l holds row RowOrder[16t + l].</summary>
    public int[] RowOrder { get; }

    /// <summary>Tile t's quads are [TileQuads[t], TileQuads[t + 1]).</summary>
    public int[] TileQuads { get; }

    /// <summary>The first column of the window (64 columns) each quad reads.</summary>
    public int[] QuadWindows { get; }

    public AlignedArray<float> Values { get; }

    public AlignedArray<byte> Columns { get; }

    /// <summary>Stored values, padding included: the multiply-adds one batch row costs.</summary>
    public long StoredValues => Values.Length;

    protected override long RowMultiplyAdds => StoredValues;

    /// <summary>AVX-512 permutes, else a scalar loop over the same layout.</summary>
    public override VectorIsa KernelIsa => Avx512F.IsSupported ? VectorIsa.Avx512 : VectorIsa.Scalar;

    public override long StorageBytes => (long)Values.Length * (sizeof(float) + sizeof(byte)) + (RowOrder.LongLength + TileQuads.LongLength + QuadWindows.LongLength) * sizeof(int);

    /// <summary>The x buffer the kernel reads: every window whole (zeros past the last column).</summary>
    public int PaddedCols => (Cols + WindowAlignment - 1) / WindowAlignment * WindowAlignment + WindowColumns - WindowAlignment;

    public static SlicedEllMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (w.Length != (long)rows * cols)
            throw new ArgumentException($"Length {w.Length} does not match a {rows}x{cols} matrix.", nameof(w));

        // Rows by their number of non-zeros, most first (see Rows above); then two walks over the same greedy schedule:
        // the first counts each tile's quads and records their windows, the second fills the aligned arrays.
        var nonZeros = new int[rows];
        for (int r = 0; r < rows; r++)
            nonZeros[r] = cols - w.Slice(r * cols, cols).Count(0f);
        int[] rowOrder = [.. Enumerable.Range(0, rows).OrderByDescending(r => nonZeros[r])]; // stable: ties keep row order
        int tiles = (rows + TileRows - 1) / TileRows;
        var tileQuads = new int[tiles + 1];
        var windows = new List<int>();
        var next = new int[TileRows]; // each row's next column to consume
        for (int t = 0; t < tiles; t++)
        {
            Walk(w, rowOrder, cols, t, next, windows, default, default);
            tileQuads[t + 1] = windows.Count;
        }

        var values = new AlignedArray<float>(checked(windows.Count * 64));
        var columns = new AlignedArray<byte>(values.Length);
        for (int t = 0; t < tiles; t++)
        {
            int at = tileQuads[t] * 64, length = (tileQuads[t + 1] - tileQuads[t]) * 64; // fits: the total was checked
            Walk(w, rowOrder, cols, t, next, null, values.Span.Slice(at, length), columns.Span.Slice(at, length));
        }

        return new SlicedEllMatrix(rows, cols, rowOrder, tileQuads, [.. windows], values, columns);
    }

    /// <summary>
    /// Tile <paramref name="t"/>'s quads, left to right: each starts its window at the leftmost column a row still has
    /// to consume (rounded down to <see cref="WindowAlignment"/>), and every row takes up to four of its next non-zeros
    /// inside it. Adds the windows to <paramref name="windows"/> (when given) and writes the quads' values and columns
    /// into <paramref name="values"/> and <paramref name="columns"/> (when not empty; zeroed beforehand).
    /// </summary>
    private static void Walk(ReadOnlySpan<float> w, int[] rowOrder, int cols, int t, int[] next, List<int>? windows, Span<float> values, Span<byte> columns)
    {
        int lanes = Math.Min(TileRows, rowOrder.Length - t * TileRows);
        for (int lane = 0; lane < lanes; lane++)
            next[lane] = NextNonZero(w.Slice(rowOrder[t * TileRows + lane] * cols, cols), 0);
        for (int q = 0; ; q++)
        {
            int leftmost = cols;
            for (int lane = 0; lane < lanes; lane++)
                leftmost = Math.Min(leftmost, next[lane]);
            if (leftmost == cols)
                return;
            int window = leftmost / WindowAlignment * WindowAlignment, windowEnd = Math.Min(cols, window + WindowColumns);
            for (int lane = 0; lane < lanes; lane++)
            {
                ReadOnlySpan<float> row = w.Slice(rowOrder[t * TileRows + lane] * cols, cols);
                for (int slot = 0; slot < 4 && next[lane] < windowEnd; slot++)
                {
                    if (!values.IsEmpty)
                    {
                        values[q * 64 + slot * TileRows + lane] = row[next[lane]];
                        columns[q * 64 + lane * 4 + slot] = (byte)(next[lane] - window);
                    }

                    next[lane] = NextNonZero(row, next[lane] + 1);
                }
            }

            windows?.Add(window);
        }
    }

    /// <summary>The first column at or after <paramref name="from"/> where <paramref name="row"/> is not zero, or its length.</summary>
    private static int NextNonZero(ReadOnlySpan<float> row, int from)
    {
        int i = row[from..].IndexOfAnyExcept(0f);
        return i < 0 ? row.Length : from + i;
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
                            w[(long)RowOrder[t * TileRows + lane] * Cols + QuadWindows[q] + Columns[(long)q * 64 + lane * 4 + j]] = value;
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
        // x is copied into a per-thread aligned buffer padded with zeros, so every window reads 64 values.
        int padded = PaddedCols;
        float* xs = (t_x ??= new Workspace()).Get(padded);
        new Span<float>(x, Cols).CopyTo(new Span<float>(xs, padded));
        new Span<float>(xs + Cols, padded - Cols).Clear();
        float* sums = stackalloc float[TileRows];
        float* values = Values.Pointer;
        byte* columns = Columns.Pointer;
        fixed (int* windows = QuadWindows, order = RowOrder)
        {
            for (int t = 0; t < Tiles; t++)
            {
                int q0 = TileQuads[t], q1 = TileQuads[t + 1];
                if (Avx512F.IsSupported)
                    Vector512.Store(Tile(xs, q0, q1, windows, values, columns), sums);
                else
                    TileScalar(xs, q0, q1, windows, values, columns, sums);
                int lanes = Math.Min(TileRows, Rows - t * TileRows);
                for (int lane = 0; lane < lanes; lane++)
                    y[order[t * TileRows + lane]] = sums[lane];
            }
        }
    }

    /// <summary>One tile's 16 outputs: quads alternate between two sets of four accumulators (slot j of a quad into the set's j-th).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Tile(float* x, int q0, int q1, int* windows, float* values, byte* columns)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        float* v = values + (long)q0 * 64;
        byte* c = columns + (long)q0 * 64;
        int* s = windows + q0, end = windows + q1;
        for (; s + 2 <= end; s += 2, v += 128, c += 128)
        {
            Quad(x + s[0], v, c, ref a0, ref a1, ref a2, ref a3);
            Quad(x + s[1], v + 64, c + 64, ref b0, ref b1, ref b2, ref b3);
        }

        if (s < end)
            Quad(x + s[0], v, c, ref a0, ref a1, ref a2, ref a3);
        return ((a0 + b0) + (a1 + b1)) + ((a2 + b2) + (a3 + b3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(float* x, float* v, byte* c, ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3)
    {
        Vector512<float> x0 = Vector512.Load(x), x1 = Vector512.Load(x + 16), x2 = Vector512.Load(x + 32), x3 = Vector512.Load(x + 48);
        Vector512<int> k = Vector512.Load((int*)c);
        a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v), Pick(x0, x1, x2, x3, k, k, 0), a0);
        a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 16), Pick(x0, x1, x2, x3, Avx512F.ShiftRightLogical(k, 8), k, 1), a1);
        a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 32), Pick(x0, x1, x2, x3, Avx512F.ShiftRightLogical(k, 16), k, 2), a2);
        a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 48), Pick(x0, x1, x2, x3, Avx512F.ShiftRightLogical(k, 24), k, 3), a3);
    }

    /// <summary>Slot <paramref name="slot"/>'s x value per row: column byte b of each word of <paramref name="k"/> picks x[b] from the window x0..x3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pick(Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3, Vector512<int> shifted, Vector512<int> k, int slot)
    {
        Vector512<int> upperHalf = Vector512.Create(32 << (8 * slot));
        return Vector512.ConditionalSelect(Vector512.Equals(k & upperHalf, upperHalf).AsSingle(),
            Avx512F.PermuteVar16x32x2(x2, shifted, x3), Avx512F.PermuteVar16x32x2(x0, shifted, x1));
    }

    /// <summary>The scalar form of <see cref="Tile"/>, summing in the same order.</summary>
    private static void TileScalar(float* x, int q0, int q1, int* windows, float* values, byte* columns, float* sums)
    {
        Span<float> a = stackalloc float[8];
        for (int lane = 0; lane < TileRows; lane++)
        {
            a.Clear();
            for (int q = q0; q < q1; q++)
            {
                float* xs = x + windows[q];
                int set = (q - q0) & 1;
                for (int j = 0; j < 4; j++)
                    a[set * 4 + j] = MathF.FusedMultiplyAdd(values[(long)q * 64 + j * TileRows + lane], xs[columns[(long)q * 64 + lane * 4 + j]], a[set * 4 + j]);
            }

            sums[lane] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
        }
    }
}
