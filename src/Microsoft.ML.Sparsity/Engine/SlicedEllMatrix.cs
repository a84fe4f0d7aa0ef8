using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// An unstructured sparse weight matrix W [rows, cols] in a sliced-ELLPACK layout built for the vector registers of
/// one tier (<see cref="VectorIsa"/>): rows in tiles of one register of outputs, and per tile a stream of slots. A
/// slot holds, for each row of the tile, one value and its column inside a window of consecutive x values (a few
/// bits of a packed word), zero where the row has nothing to add there. The layout lives only in memory (built at
/// model load from the dense weight; nothing serializes it), so it may differ per tier.
/// </summary>
/// <remarks>
/// <para>
/// Why. A CSR dot product needs a gather per eight non-zeros, and gathers are slow on current x86 cores (on an AVX2
/// EPYC CSR ran 0.53× the dense GEMV at 90% sparsity). Here a window of x sits in registers, and a permute picks each
/// row's x value for a whole slot, which meets the slot's values in one FMA: no gather. The price is padding (a row
/// with nothing left in a window idles in its slots), which <see cref="StorageBytes"/> and <see cref="StoredValues"/> count.
/// </para>
/// <para>
/// Geometry per tier (<see cref="SlicedEllGeometry"/>). AVX-512: tiles of 16 rows, windows of 64 columns (four
/// registers) shared by the four slots of a quad; two two-source permutes (vpermt2ps) and a blend pick a slot's x
/// values. AVX2: tiles of 24 rows as three registers of 8, a window of 8 columns per slot (one register, loaded once
/// for all three, one vpermps each), starting at any column. Vector128 and scalar: tiles of 4 rows, a window of 4 columns per
/// slot (one in-register shuffle: vpermilps on x86, TBL on ARM64). A narrow permute over one register is the cheapest
/// pick on AVX2 and NEON; letting each slot start its own window where the tile's rows are keeps the padding low
/// without the wide windows AVX-512 can afford.
/// </para>
/// <para>
/// Why 24 rows on AVX2 (measured on LeNet-300-100's ERK layers, one thread, alternating runs). The AVX2 kernel is bound
/// by its loads, not its permutes: without the vpermps it ran no faster, and with one window load per quad instead of
/// per slot it ran 1.45× faster. Tiles of 8 rows loaded each slot's window (and read its start) for 8 values; tiles
/// of 16 load it once for 16. They store more padding (2.37 values per non-zero at 90% against 2.06, 3.41 against 2.82
/// at 95%) but each value costs less: the two layers multiply 1.1–1.3× faster from 50% to 95% sparsity (1.15× at 90%,
/// per CPU second) and about as fast at 98%, and half as many tiles halve the per-tile costs (the loop exit, the
/// scattered stores). Windows of 16 columns (two vpermps and a blend per slot)
/// stored 1.62 values per non-zero at 90% but ran 1.07–1.16× slower than 8, and 32 columns 1.35–1.5× slower: a second
/// window load and permute per slot cost more than the padding they save. Starting windows on 8-column boundaries (no
/// load splitting two cache lines) made a slot 1.25–1.45× cheaper but stored 1.25× more values: no faster overall.
/// Tiles of 24 rows (three registers per window load) store more again (2.81 values per non-zero at 90%, 4.21 at 95%)
/// and multiply 1.03–1.05× faster than 16 from 80% to 95% (7 Dec 2026, processes pinned to one core); tiles of 32
/// were no faster than 24 and store more. Two slots sharing one window (pairs) lost at 90% and 95% (docs/cpus.md).
/// </para>
/// <para>
/// Windows. A tile's windows are not fixed segments: <see cref="FromDense(ReadOnlySpan{float}, int, int, VectorIsa)"/> walks the tile's rows left to right and
/// starts each window at the leftmost column any row still has to consume (rounded down to the tier's alignment:
/// 16 on AVX-512, so the four x loads are 64-byte aligned; on the other tiers no later than the row's last window, so
/// windows stay inside the row and the kernel reads x in place, <see cref="ReadsInPlace"/>); every row then takes up
/// to the window's slots of its next non-zeros inside the window. Rows thus share windows wherever their non-zeros
/// happen to lie. On LeNet-300-100's first layer at 92% sparsity the AVX-512 geometry stores 1.6 values per non-zero
/// where fixed segments of 32 stored 3.0, and multiplies twice as fast (docs/inference.md).
/// </para>
/// <para>
/// Rows. A tile takes as many slots as its fullest row needs, so rows go into tiles by their number of non-zeros, most
/// first (<see cref="RowOrder"/>; each tile's sums are written back to their own rows). Trained masks are uneven:
/// LeNet's first layer after magnitude pruning to 92% has 0 to 247 non-zeros a row, and sorted it stores 1.75 values
/// per non-zero instead of 3.38 (AVX-512 geometry) and multiplies 1.85× faster; random masks gain 3–10%.
/// </para>
/// <para>
/// Layout. With L = <see cref="SlicedEllGeometry.TileRows"/>, tile t's slots are [<see cref="TileSlots"/>[t], [t + 1]),
/// a multiple of 4 (padding slots hold zeros); slot s reads the window starting at column <see cref="SlotWindows"/>[s]
/// and holds values <see cref="Values"/>[L·s + lane]. A tile's columns are packed into words from
/// <see cref="TileColumns"/>[t] on: with W = <see cref="SlicedEllGeometry.SlotsPerWord"/> and b =
/// <see cref="SlicedEllGeometry.ColumnBits"/>, the tile's slots go in groups of W, group g holding L words, one per
/// row, whose bits [b·j, b·j + b) are slot W·g + j's column in its window (a tile's last group may be half full). So
/// one load and shifts give a group's permute indices (the permutes read only the low bits; on AVX-512 bit 5 picks the
/// window's upper half). AVX-512, Vector128 and scalar: bytes, groups of 4 (one per quad). AVX2: 4 bits, groups of 8
/// (half the column loads and bytes): 7–11% faster than bytes on LeNet's layers from 80% to 95% (8 Dec 2026); a tile's
/// slots stay a multiple of 4, not 8 (padding to 8 stored up to 3% more slots and gave back half the gain).
/// A row's non-zeros are in column order. Values and columns are 64-byte aligned (<see cref="AlignedArray{T}"/>): a
/// load that splits two cache lines costs twice.
/// </para>
/// <para>
/// Every batch row runs the same kernel (batches split their rows over the pool; batch 1 runs on the calling
/// thread), so results do not depend on the batch size or thread count. The AVX-512 kernel sums a row's slots into
/// eight partial sums (slot mod 4, quads alternating between two sets), AVX2 into two (slot mod 2), Vector128 and
/// scalar into four (slot mod 4), added in a fixed order; no branch depends on the sparsity pattern. Safe to call from several
/// threads at once; allocates nothing once warm.
/// </para>
/// </remarks>
internal sealed unsafe class SlicedEllMatrix : RowKernelMatrix
{
    [ThreadStatic] private static Workspace? t_x;
    private readonly int _inOrderTiles;

    private SlicedEllMatrix(int rows, int cols, VectorIsa isa, int[] rowOrder, int[] tileSlots, int[] slotWindows, AlignedArray<float> values, int[] tileColumns, AlignedArray<int> columns)
        : base(rows, cols)
    {
        KernelIsa = isa;
        Geometry = SlicedEllGeometry.For(isa);
        Tiles = (rows + Geometry.TileRows - 1) / Geometry.TileRows;
        RowOrder = rowOrder;
        int inOrder = 0; // rows [0, inOrder) are stored in their own order, in whole tiles: their sums need no scatter
        while (inOrder < rows && rowOrder[inOrder] == inOrder)
            inOrder++;
        _inOrderTiles = inOrder / Geometry.TileRows;
        TileSlots = tileSlots;
        SlotWindows = slotWindows;
        Values = values;
        TileColumns = tileColumns;
        Columns = columns;
    }

    /// <summary>The tier whose kernel and geometry this matrix was built for.</summary>
    public override VectorIsa KernelIsa { get; }

    public SlicedEllGeometry Geometry { get; }

    public int Tiles { get; }

    /// <summary>The weight row stored at each position: tile t's lane l holds row RowOrder[L·t + l].</summary>
    public int[] RowOrder { get; }

    /// <summary>Tile t's slots are [TileSlots[t], TileSlots[t + 1]).</summary>
    public int[] TileSlots { get; }

    /// <summary>The first column of the window each slot reads.</summary>
    public int[] SlotWindows { get; }

    public AlignedArray<float> Values { get; }

    /// <summary>Tile t's column words start at Columns[TileColumns[t]] (see Layout in the remarks).</summary>
    public int[] TileColumns { get; }

    /// <summary>The slots' columns inside their windows, packed into words (see Layout in the remarks).</summary>
    public AlignedArray<int> Columns { get; }

    /// <summary>Stored values, padding included: the multiply-adds one batch row costs.</summary>
    public long StoredValues => Values.Length;

    protected override long RowMultiplyAdds => StoredValues;

    public override long StorageBytes => ((long)Values.Length + Columns.Length + RowOrder.LongLength + TileSlots.LongLength + SlotWindows.LongLength + TileColumns.LongLength) * sizeof(float);

    /// <summary>
    /// Whether the kernel reads x where it lies: windows that may start at any column stay inside the row (the walk
    /// starts them no later than Cols − <see cref="SlicedEllGeometry.WindowColumns"/>). Otherwise (AVX-512's aligned
    /// windows, rows narrower than a window) x is copied into an aligned buffer of <see cref="PaddedCols"/>, zeros past
    /// the row.
    /// </summary>
    public bool ReadsInPlace => Geometry.StaysInside(Cols);

    /// <summary>The x buffer the kernel reads when it copies x: every window whole (zeros past the last column).</summary>
    public int PaddedCols => (Cols + Geometry.WindowAlignment - 1) / Geometry.WindowAlignment * Geometry.WindowAlignment + Geometry.WindowColumns - Geometry.WindowAlignment;

    /// <summary>The layout and kernel of the widest tier this process runs (<see cref="VectorIsas.Best"/>).</summary>
    public static SlicedEllMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols) => FromDense(w, rows, cols, VectorIsas.Best);

    /// <summary>The layout and kernel of tier <paramref name="isa"/> (any tier builds; only an available one multiplies).</summary>
    public static SlicedEllMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols, VectorIsa isa)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (w.Length != (long)rows * cols)
            throw new ArgumentException($"Length {w.Length} does not match a {rows}x{cols} matrix.", nameof(w));

        // Rows by their number of non-zeros, most first (see Rows above); then two walks over the same greedy schedule:
        // the first counts each tile's slots and records their windows, the second fills the aligned arrays.
        SlicedEllGeometry geometry = SlicedEllGeometry.For(isa);
        int tileRows = geometry.TileRows;
        int[] rowOrder = TileRowOrder(w, rows, cols);
        int tiles = (rows + tileRows - 1) / tileRows;
        var tileSlots = new int[tiles + 1];
        var tileColumns = new int[tiles + 1];
        var windows = new List<int>();
        var next = new int[tileRows]; // each row's next column to consume
        for (int t = 0; t < tiles; t++)
        {
            Walk(geometry, w, rowOrder, cols, t, next, windows, default, default);
            tileSlots[t + 1] = windows.Count;
            int groups = (tileSlots[t + 1] - tileSlots[t] + geometry.SlotsPerWord - 1) / geometry.SlotsPerWord;
            tileColumns[t + 1] = tileColumns[t] + groups * tileRows; // at most as many as values: fits once they are checked
        }

        var values = new AlignedArray<float>(checked(windows.Count * tileRows));
        var columns = new AlignedArray<int>(tileColumns[tiles]);
        for (int t = 0; t < tiles; t++)
        {
            int at = tileSlots[t] * tileRows, length = (tileSlots[t + 1] - tileSlots[t]) * tileRows; // fits: the total was checked
            Walk(geometry, w, rowOrder, cols, t, next, null, values.Span.Slice(at, length), columns.Span[tileColumns[t]..tileColumns[t + 1]]);
        }

        return new SlicedEllMatrix(rows, cols, isa, rowOrder, tileSlots, [.. windows], values, tileColumns, columns);
    }

    /// <summary>
    /// The order rows go into tiles: by their number of non-zeros, most first, ties in row order (see Rows in the
    /// remarks). A weight whose rows are already in this order (a prediction network's hidden units are sorted so:
    /// Inference/HiddenUnitOrder.cs) writes its full tiles' sums straight to the outputs, without scattering them.
    /// </summary>
    public static int[] TileRowOrder(ReadOnlySpan<float> w, int rows, int cols)
    {
        var nonZeros = new int[rows];
        for (int r = 0; r < rows; r++)
            nonZeros[r] = cols - w.Slice(r * cols, cols).Count(0f);
        return [.. Enumerable.Range(0, rows).OrderByDescending(r => nonZeros[r])]; // stable: ties keep row order
    }

    /// <summary>
    /// Tile <paramref name="t"/>'s windows, left to right: each starts at the leftmost column a row still has to
    /// consume (rounded down to the alignment), and every row takes up to the window's slots of its next non-zeros
    /// inside it; the tile's slots are padded to a multiple of 4. Adds the slots' windows to
    /// <paramref name="windows"/> (when given) and writes their values and packed columns into <paramref name="values"/>
    /// and <paramref name="columns"/> (the tile's words; when not empty; zeroed beforehand).
    /// </summary>
    private static void Walk(SlicedEllGeometry geometry, ReadOnlySpan<float> w, int[] rowOrder, int cols, int t, int[] next, List<int>? windows, Span<float> values, Span<int> columns)
    {
        int tileRows = geometry.TileRows, lanes = Math.Min(tileRows, rowOrder.Length - t * tileRows);
        for (int lane = 0; lane < lanes; lane++)
            next[lane] = NextNonZero(w.Slice(rowOrder[t * tileRows + lane] * cols, cols), 0);
        int s = 0; // slots so far
        while (true)
        {
            int leftmost = cols;
            for (int lane = 0; lane < lanes; lane++)
                leftmost = Math.Min(leftmost, next[lane]);
            if (leftmost == cols)
                break;
            int window = leftmost / geometry.WindowAlignment * geometry.WindowAlignment;
            if (geometry.StaysInside(cols))
                window = Math.Min(window, cols - geometry.WindowColumns); // still holds leftmost
            int windowEnd = Math.Min(cols, window + geometry.WindowColumns);
            for (int lane = 0; lane < lanes; lane++)
            {
                ReadOnlySpan<float> row = w.Slice(rowOrder[t * tileRows + lane] * cols, cols);
                for (int j = s; j < s + geometry.SlotsPerWindow && next[lane] < windowEnd; j++)
                {
                    if (!values.IsEmpty)
                    {
                        values[j * tileRows + lane] = row[next[lane]];
                        columns[j / geometry.SlotsPerWord * tileRows + lane] |= (next[lane] - window) << (geometry.ColumnBits * (j % geometry.SlotsPerWord));
                    }

                    next[lane] = NextNonZero(row, next[lane] + 1);
                }
            }

            for (int j = 0; j < geometry.SlotsPerWindow; j++)
                windows?.Add(window);
            s += geometry.SlotsPerWindow;
        }

        for (; s % 4 != 0; s++)
            windows?.Add(0);
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
        int tileRows = Geometry.TileRows;
        for (int t = 0; t < Tiles; t++)
        {
            for (int s = TileSlots[t]; s < TileSlots[t + 1]; s++)
            {
                for (int lane = 0; lane < tileRows && t * tileRows + lane < Rows; lane++)
                {
                    float value = Values[(long)s * tileRows + lane];
                    if (value != 0f)
                        w[(long)RowOrder[t * tileRows + lane] * Cols + SlotWindows[s] + Column(t, s, lane)] = value;
                }
            }
        }

        return w;
    }

    /// <summary>Slot <paramref name="s"/>'s (of tile <paramref name="t"/>) column in its window for lane <paramref name="lane"/>.</summary>
    public int Column(int t, int s, int lane)
    {
        int perWord = Geometry.SlotsPerWord, j = s - TileSlots[t];
        int word = Columns[TileColumns[t] + (long)j / perWord * Geometry.TileRows + lane];
        return (int)((uint)word >> (Geometry.ColumnBits * (j % perWord))) & ((1 << Geometry.ColumnBits) - 1);
    }

    /// <summary>y[0, Rows) = x · Wᵀ for one batch row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    protected override void MultiplyRow(float* x, float* y)
    {
        // Unless its windows stay inside the row, x is copied into a per-thread aligned buffer padded with zeros, so
        // every window reads whole registers (aligned ones on AVX-512: unaligned x loads made its kernel 1.17–1.19×
        // slower). Reading in place saves the copy: 35–45 ns for LeNet's 784 or 300 inputs on AVX2.
        int tileRows = Geometry.TileRows;
        float* xs = x;
        if (!ReadsInPlace)
        {
            int padded = PaddedCols;
            xs = (t_x ??= new Workspace()).Get(padded);
            new Span<float>(x, Cols).CopyTo(new Span<float>(xs, padded));
            new Span<float>(xs + Cols, padded - Cols).Clear();
        }

        float* sums = stackalloc float[SlicedEllGeometry.MaxTileRows];
        float* values = Values.Pointer;
        int* columns = Columns.Pointer;
        fixed (int* windows = SlotWindows, order = RowOrder)
        {
            for (int t = 0; t < Tiles; t++)
            {
                int s0 = TileSlots[t], s1 = TileSlots[t + 1];
                float* v = values + (long)s0 * tileRows;
                int* c = columns + TileColumns[t];
                // A tile of rows in their own order sums straight into y (measured: the scatter cost 7–15% of the
                // AVX-512 kernel's time on LeNet-300-100's ERK layers at 90% and 95%).
                float* target = t < _inOrderTiles ? y + (long)t * tileRows : sums;
                switch (KernelIsa)
                {
                    case VectorIsa.Avx512:
                        Vector512.Store(Tile512(xs, windows + s0, windows + s1, v, c), target);
                        break;
                    case VectorIsa.Avx2:
                        Tile256(xs, windows + s0, windows + s1, v, c, target);
                        break;
                    case VectorIsa.Vector128:
                        Vector128.Store(Tile128(xs, windows + s0, windows + s1, v, c), target);
                        break;
                    default:
                        TileScalar(xs, windows + s0, windows + s1, v, c, target);
                        break;
                }

                if (target != sums)
                    continue;
                int lanes = Math.Min(tileRows, Rows - t * tileRows);
                for (int lane = 0; lane < lanes; lane++)
                    y[order[t * tileRows + lane]] = sums[lane];
            }
        }
    }

    /// <summary>AVX-512: one tile's 16 outputs; quads alternate between two sets of four accumulators (slot j of a quad into the set's j-th).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Tile512(float* x, int* s, int* end, float* v, int* c)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        for (; s + 8 <= end; s += 8, v += 128, c += 32)
        {
            Quad512(x + s[0], v, c, ref a0, ref a1, ref a2, ref a3);
            Quad512(x + s[4], v + 64, c + 16, ref b0, ref b1, ref b2, ref b3);
        }

        if (s < end)
            Quad512(x + s[0], v, c, ref a0, ref a1, ref a2, ref a3);
        return ((a0 + b0) + (a1 + b1)) + ((a2 + b2) + (a3 + b3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad512(float* x, float* v, int* c, ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3)
    {
        Vector512<float> x0 = Vector512.Load(x), x1 = Vector512.Load(x + 16), x2 = Vector512.Load(x + 32), x3 = Vector512.Load(x + 48);
        Vector512<int> k = Vector512.Load(c);
        a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v), Pick512(x0, x1, x2, x3, k, k, 0), a0);
        a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 16), Pick512(x0, x1, x2, x3, Avx512F.ShiftRightLogical(k, 8), k, 1), a1);
        a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 32), Pick512(x0, x1, x2, x3, Avx512F.ShiftRightLogical(k, 16), k, 2), a2);
        a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v + 48), Pick512(x0, x1, x2, x3, Avx512F.ShiftRightLogical(k, 24), k, 3), a3);
    }

    /// <summary>Slot <paramref name="slot"/>'s x value per row: column byte b of each word of <paramref name="k"/> picks x[b] from the window x0..x3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pick512(Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3, Vector512<int> shifted, Vector512<int> k, int slot)
    {
        Vector512<int> upperHalf = Vector512.Create(32 << (8 * slot));
        return Vector512.ConditionalSelect(Avx512F.CompareNotEqual(k & upperHalf, Vector512<int>.Zero).AsSingle(), // vptestmd: 4% faster than comparing with upperHalf
            Avx512F.PermuteVar16x32x2(x2, shifted, x3), Avx512F.PermuteVar16x32x2(x0, shifted, x1));
    }

    /// <summary>
    /// AVX2: one tile's 24 outputs as three registers of 8 rows; each slot loads its own 8-column window once for all
    /// three, and one vpermps per register picks the rows' x values. A group of 8 slots shares one load of each
    /// register's column words (4 bits a slot); a tile's last group may hold 4. Slot j sums into each register's
    /// accumulator j mod 2 (two, not four: twelve accumulators and the window, the three column words and a shifted
    /// index would not fit in 16 registers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile256(float* x, int* s, int* end, float* v, int* c, float* sums)
    {
        Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default, d0 = default, d1 = default;
        for (; s < end; s += 8, v += 192, c += 24)
        {
            Vector256<int> k = Vector256.Load(c), l = Vector256.Load(c + 8), m = Vector256.Load(c + 16);
            Slot256(x + s[0], v, k, l, m, ref a0, ref b0, ref d0);
            Slot256(x + s[1], v + 24, k >>> 4, l >>> 4, m >>> 4, ref a1, ref b1, ref d1);
            Slot256(x + s[2], v + 48, k >>> 8, l >>> 8, m >>> 8, ref a0, ref b0, ref d0);
            Slot256(x + s[3], v + 72, k >>> 12, l >>> 12, m >>> 12, ref a1, ref b1, ref d1);
            if (s + 4 == end)
                break; // a half group
            Slot256(x + s[4], v + 96, k >>> 16, l >>> 16, m >>> 16, ref a0, ref b0, ref d0);
            Slot256(x + s[5], v + 120, k >>> 20, l >>> 20, m >>> 20, ref a1, ref b1, ref d1);
            Slot256(x + s[6], v + 144, k >>> 24, l >>> 24, m >>> 24, ref a0, ref b0, ref d0);
            Slot256(x + s[7], v + 168, k >>> 28, l >>> 28, m >>> 28, ref a1, ref b1, ref d1);
        }

        Vector256.Store(a0 + a1, sums);
        Vector256.Store(b0 + b1, sums + 8);
        Vector256.Store(d0 + d1, sums + 16);
    }

    /// <summary>One AVX2 slot: its window at <paramref name="x"/>, its 24 values at <paramref name="v"/>, each register's permute indices in the low 3 bits of k, l and m.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Slot256(float* x, float* v, Vector256<int> k, Vector256<int> l, Vector256<int> m, ref Vector256<float> a, ref Vector256<float> b, ref Vector256<float> d)
    {
        Vector256<float> window = Vector256.Load(x);
        a = Fma.MultiplyAdd(Vector256.Load(v), Avx2.PermuteVar8x32(window, k), a);
        b = Fma.MultiplyAdd(Vector256.Load(v + 8), Avx2.PermuteVar8x32(window, l), b);
        d = Fma.MultiplyAdd(Vector256.Load(v + 16), Avx2.PermuteVar8x32(window, m), d);
    }

    /// <summary>
    /// Vector128: one tile's 4 outputs; each slot loads its own 4-column window and one shuffle picks the rows' x
    /// values (Vector128.ShuffleNative: vpermilps on x86, TBL on ARM64; the plain Shuffle adds a range check; indices masked to 0..3).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Tile128(float* x, int* s, int* end, float* v, int* c)
    {
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector128<int> low = Vector128.Create(3);
        for (; s < end; s += 4, v += 16, c += 4)
        {
            Vector128<int> k = Vector128.Load(c);
            a0 = Vector128.MultiplyAddEstimate(Vector128.Load(v), Vector128.ShuffleNative(Vector128.Load(x + s[0]), k & low), a0);
            a1 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 4), Vector128.ShuffleNative(Vector128.Load(x + s[1]), (k >>> 8) & low), a1);
            a2 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 8), Vector128.ShuffleNative(Vector128.Load(x + s[2]), (k >>> 16) & low), a2);
            a3 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 12), Vector128.ShuffleNative(Vector128.Load(x + s[3]), k >>> 24), a3);
        }

        return (a0 + a1) + (a2 + a3);
    }

    /// <summary>The scalar tier (the Vector128 geometry): one lane at a time, summing in the same order as <see cref="Tile128"/>.</summary>
    private static void TileScalar(float* x, int* s, int* end, float* v, int* c, float* sums)
    {
        const int tileRows = 4;
        for (int lane = 0; lane < tileRows; lane++)
        {
            float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
            float* vl = v + lane;
            byte* cl = (byte*)(c + lane); // the word's bytes, little-endian: slot j's column is byte j
            for (int* q = s; q < end; q += 4, vl += 4 * tileRows, cl += 4 * tileRows)
            {
                a0 += vl[0] * x[q[0] + cl[0]]; // not MathF.FusedMultiplyAdd: a software routine without FMA
                a1 += vl[tileRows] * x[q[1] + cl[1]];
                a2 += vl[2 * tileRows] * x[q[2] + cl[2]];
                a3 += vl[3 * tileRows] * x[q[3] + cl[3]];
            }

            sums[lane] = (a0 + a1) + (a2 + a3);
        }
    }
}

/// <summary>
/// The shape of a sliced-ELLPACK layout for one tier: rows per tile (one register of outputs), the columns a window
/// spans (the x registers a permute picks from), the slots that share a window, the alignment of a window's start, and
/// the bits a slot's column takes in its row's packed word.
/// </summary>
internal readonly record struct SlicedEllGeometry(int TileRows, int WindowColumns, int SlotsPerWindow, int WindowAlignment, int ColumnBits)
{
    public const int MaxTileRows = 24;

    /// <summary>The slots whose columns share a word: 4 with bytes (a quad), 8 with 4 bits.</summary>
    public int SlotsPerWord => 32 / ColumnBits;

    /// <summary>Whether a row of <paramref name="cols"/> columns can hold every window: windows start at any column and one fits.</summary>
    public bool StaysInside(int cols) => WindowAlignment == 1 && cols >= WindowColumns;

    public static SlicedEllGeometry For(VectorIsa isa) => isa switch
    {
        VectorIsa.Avx512 => new(16, 64, 4, 16, 8),
        VectorIsa.Avx2 => new(24, 8, 1, 1, 4),
        _ => new(4, 4, 1, 1, 8),
    };
}
