using Microsoft.ML.Sparsity.Engine;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Engine;

/// <summary>The unstructured sparse formats (CSR, sliced ELLPACK) against a double-precision dense reference.</summary>
public sealed class SparseFormatTests : IDisposable
{
    private readonly WorkerPool _pool = new(2);

    public void Dispose() => _pool.Dispose();

    /// <summary>Every (format, shape, sparsity) with every tier this process runs (the tier as an int: VectorIsa is internal).</summary>
    public static TheoryData<string, int, int, double, int> Cases()
    {
        var data = new TheoryData<string, int, int, double, int>();
        foreach (string format in new[] { "csr", "ell" })
        {
            foreach ((int rows, int cols, double sparsity) in new[]
            {
                (300, 784, 0.9), (100, 300, 0.95), (10, 100, 0.5), (1, 1, 0.0), (17, 33, 0.8), (33, 31, 0.98),
                (16, 64, 1.0), (5, 70000, 0.999), (40, 32, 0.0),
            })
            {
                if (format == "ell" && cols > 10000)
                    continue;
                foreach (VectorIsa isa in VectorIsas.Available)
                    data.Add(format, rows, cols, sparsity, (int)isa);
            }
        }

        return data;
    }

    private static IWeightMatrix Build(string format, float[] w, int rows, int cols, VectorIsa isa) =>
        format == "csr" ? CsrMatrix.FromDense(w, rows, cols, isa) : SlicedEllMatrix.FromDense(w, rows, cols, isa);

    private static float[] ToDense(IWeightMatrix m) => m is CsrMatrix c ? c.ToDense() : ((SlicedEllMatrix)m).ToDense();

    [Theory]
    [MemberData(nameof(Cases))]
    public void MultiplyMatchesDoublePrecisionReferenceAndRoundTrips(string format, int rows, int cols, double sparsity, int tier)
    {
        var random = new Random(rows * 31 + cols);
        float[] w = RandomSparse(rows, cols, sparsity, random, emptyRows: true);
        if (rows > 1)
            w.AsSpan((rows - 2) * cols, cols).Fill(0.5f); // a full dense row beside the sparse ones
        IWeightMatrix matrix = Build(format, w, rows, cols, (VectorIsa)tier);
        Assert.Equal(w, ToDense(matrix));

        WeightMatrixReference.AssertMultiplyMatches(matrix, w, _pool, random, $"{format} {(VectorIsa)tier}", 1, 3, 17, 40, 70);
    }

    [Fact]
    public void CsrUsesSixteenBitColumnsWhereTheyFit()
    {
        var random = new Random(5);
        CsrMatrix narrow = CsrMatrix.FromDense(RandomSparse(3, 65536, 0.99, random, emptyRows: false), 3, 65536);
        CsrMatrix wide = CsrMatrix.FromDense(RandomSparse(3, 65537, 0.99, random, emptyRows: false), 3, 65537);

        Assert.NotNull(narrow.NarrowColumns);
        Assert.Null(narrow.WideColumns);
        Assert.Equal(narrow.NonZeros * 6L + 4 * 4, narrow.StorageBytes);
        Assert.Null(wide.NarrowColumns);
        Assert.Equal(wide.NonZeros * 8L + 4 * 4, wide.StorageBytes);
    }

    [Fact]
    public void SlicedEllQuadsStartTheirWindowAtTheLeftmostPendingColumn()
    {
        // 100 columns, 17 rows = 2 tiles. Every row of 0-15 has non-zeros at columns 0-3, row 0 two more at 10 and
        // 11, row 15 one more at 63, rows 0-4 five more at 70-74; row 16 one at column 7. By their counts (11, 9 × 4,
        // 5, 4 × 10, 1) the rows are stored 0-4, 15, 5-14 in tile 0 (row 15 in lane 5) and 16 in tile 1. Quad 0:
        // window 0, every row takes columns 0-3. Quad 1: the leftmost pending column is 10, window 0 (columns 0-63):
        // row 0 takes 10 and 11, row 15 takes 63. Quad 2: leftmost 70, window 64: rows 0-4 take 70-73. Quad 3: window
        // 64, rows 0-4 take 74. Tile 1: one quad at window 0.
        float[] w = new float[17 * 100];
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 4; c++)
                w[r * 100 + c] = r + c + 1;
        w[10] = 50f;
        w[11] = 51f;
        w[15 * 100 + 63] = 63f;
        for (int r = 0; r < 5; r++)
            for (int c = 70; c < 75; c++)
                w[r * 100 + c] = -c;
        w[16 * 100 + 7] = 3f;
        SlicedEllMatrix ell = SlicedEllMatrix.FromDense(w, 17, 100, VectorIsa.Avx512);

        Assert.Equal([0, 1, 2, 3, 4, 15, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16], ell.RowOrder);
        Assert.Equal(new[] { 0, 16, 20 }, ell.TileSlots);
        Assert.Equal(new[] { 0, 0, 0, 0, 0, 0, 0, 0, 64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0 }, ell.SlotWindows);
        Assert.Equal(5 * 64, ell.StoredValues);
        // Row 0's fifth and sixth non-zeros are slots 0 and 1 of quad 1, lane 0; row 15's fifth is slot 0, lane 5.
        Assert.Equal(new[] { 50f, 51f, 63f }, new[] { ell.Values[64], ell.Values[64 + 16], ell.Values[64 + 5] });
        Assert.Equal((10, 11, 63), (ell.Column(0, 4, 0), ell.Column(0, 5, 0), ell.Column(0, 4, 5)));
        // A quad's columns are one word a row: row 3's slots in quad 2 hold columns 70-73, 6-9 inside window 64, bytes 0-3.
        Assert.Equal(new[] { 0, 64, 80 }, ell.TileColumns);
        Assert.Equal(0x09080706, ell.Columns[2 * 16 + 3]);
        Assert.Equal(new[] { -70f, -71f, -72f, -73f }, Enumerable.Range(0, 4).Select(j => ell.Values[2 * 64 + 16 * j + 3]));
        Assert.Equal((-74f, 10), (ell.Values[3 * 64 + 4], ell.Column(0, 12, 4)));
        Assert.Equal((3f, 7), (ell.Values[4 * 64], ell.Column(1, 16, 0)));
        Assert.Equal(w, ell.ToDense());

        if (!VectorIsas.IsAvailable(VectorIsa.Avx512))
            return;
        float[] x = Enumerable.Range(0, 100).Select(i => (float)(i % 7) - 3f).ToArray(), y = new float[17];
        ell.MultiplyTransposed(_pool, x, 1, y);
        for (int r = 0; r < 17; r++)
            Assert.Equal(Enumerable.Range(0, 100).Sum(c => (double)w[r * 100 + c] * x[c]), y[r], 3);
    }

    [Fact]
    public void SlicedEllTilesRowsByTheirNumberOfNonZeros()
    {
        // 32 rows of 64 columns: even rows full, odd rows four non-zeros (columns 0-3). In row order every tile would
        // hold 8 full rows and take 16 quads; sorted, tile 0 holds the 16 full rows (16 quads) and tile 1 the rest (1).
        float[] w = new float[32 * 64];
        for (int r = 0; r < 32; r++)
            for (int c = 0; c < (r % 2 == 0 ? 64 : 4); c++)
                w[r * 64 + c] = r + c + 1;
        SlicedEllMatrix ell = SlicedEllMatrix.FromDense(w, 32, 64, VectorIsa.Avx512);

        Assert.Equal([.. Enumerable.Range(0, 16).Select(i => 2 * i), .. Enumerable.Range(0, 16).Select(i => 2 * i + 1)], ell.RowOrder);
        Assert.Equal(new[] { 0, 64, 68 }, ell.TileSlots);
        Assert.Equal(w, ell.ToDense());
        if (VectorIsas.IsAvailable(VectorIsa.Avx512))
            WeightMatrixReference.AssertMultiplyMatches(ell, w, _pool, new Random(2), "ell", 1, 5);
    }

    [Theory]
    [InlineData(300, 784, 0.9)]
    [InlineData(100, 300, 0.95)]
    [InlineData(16, 40, 0.5)]
    [InlineData(7, 20, 0.7)]
    public void SlicedEllRowsAlreadyInTileOrderGiveTheSameSumsWritten(int rows, int cols, double sparsity)
    {
        // The same weight with its rows put in tile order builds the same tiles; its full tiles then store their sums
        // straight into y (the last, partial tile still scatters). Row p must equal row order[p] of the original, bit for bit.
        var random = new Random(rows + cols);
        float[] w = RandomSparse(rows, cols, sparsity, random, emptyRows: true);
        int[] order = SlicedEllMatrix.TileRowOrder(w, rows, cols);
        Assert.NotEqual(Enumerable.Range(0, rows), order); // the test needs rows out of order
        float[] sorted = new float[w.Length];
        for (int p = 0; p < rows; p++)
            w.AsSpan(order[p] * cols, cols).CopyTo(sorted.AsSpan(p * cols, cols));
        Assert.Equal(Enumerable.Range(0, rows), SlicedEllMatrix.TileRowOrder(sorted, rows, cols));

        const int batch = 3;
        float[] x = Random(batch * cols, random);
        foreach (VectorIsa isa in VectorIsas.Available)
        {
            SlicedEllMatrix original = SlicedEllMatrix.FromDense(w, rows, cols, isa), inOrder = SlicedEllMatrix.FromDense(sorted, rows, cols, isa);
            Assert.Equal(original.TileSlots, inOrder.TileSlots);
            float[] y = new float[batch * rows], ySorted = new float[batch * rows];
            original.MultiplyTransposed(_pool, x, batch, y);
            inOrder.MultiplyTransposed(_pool, x, batch, ySorted);
            for (int b = 0; b < batch; b++)
                for (int p = 0; p < rows; p++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(y[b * rows + order[p]]), BitConverter.SingleToInt32Bits(ySorted[b * rows + p]));
            WeightMatrixReference.AssertMultiplyMatches(inOrder, sorted, _pool, random, $"ell in tile order {isa}", 1, 2);
        }
    }

    [Fact]
    public void SlicedEllWindowsStayInsideThePaddedInput()
    {
        // Each tier's kernel reads a whole window from each slot's window start, out of x itself where the windows stay
        // inside the row, else out of a zero-padded copy: no window may reach past either, whatever the width (a read
        // past it would meet stale memory or another row, multiplied by a zero weight, and pass unseen). Layouts build
        // for any tier, so all are checked here.
        var random = new Random(12);
        for (int cols = 1; cols <= 200; cols++)
        {
            float[] w = RandomSparse(17, cols, 0.7, random, emptyRows: false);
            w[16 * cols + cols - 1] = 1f; // a non-zero in the last column: the rightmost window there can be
            foreach (VectorIsa isa in Enum.GetValues<VectorIsa>())
            {
                SlicedEllMatrix ell = SlicedEllMatrix.FromDense(w, 17, cols, isa);
                SlicedEllGeometry g = ell.Geometry;
                int end = ell.ReadsInPlace ? cols : ell.PaddedCols;
                Assert.Equal(isa != VectorIsa.Avx512 && cols >= g.WindowColumns, ell.ReadsInPlace);
                Assert.All(ell.SlotWindows, window => Assert.True(window % g.WindowAlignment == 0 && window < cols && window + g.WindowColumns <= end,
                    $"{isa}, {cols} columns: window {window}, read up to {end}"));
                Assert.All(ell.TileSlots, s => Assert.Equal(0, s % 4));
                Assert.Equal(w, ell.ToDense());
            }
        }
    }

    [Fact]
    public void NarrowSlicedEllSlotsStartTheirOwnWindowAtTheLeftmostPendingColumn()
    {
        // AVX2 geometry: tiles of 24 rows, one 8-column window per slot, starting at any column; columns in 4 bits, 8
        // slots a word. 25 rows of 40 columns: rows 0-23 hold columns 3 and 20 (row 2 also 9, 10 and 11; row 0 also 25;
        // row 1 also 22; row 5 also 39), row 24 column 0. Sorted by count, tile 0 holds rows 2, 0, 1, 5, 3, 4, 6, ...,
        // 23. Slot 0: window 3, every row takes column 3. Slots 1-3: windows 9, 10 and 11, row 2 takes each. Slot 4:
        // window 20, every row takes 20. Slot 5: window 22 (row 1's next), row 1 takes 22 and row 0 takes 25, column 3 of
        // the window. Slot 6: window 32, the row's last 8 columns (windows stay inside the row, so the kernel reads x in
        // place), row 5 takes 39, column 7 of it; slot 7 pads. Tile 1: slot 0 at window 0, 1-3 pad: a half group.
        const int L = 24;
        float[] w = new float[(L + 1) * 40];
        for (int r = 0; r < L; r++)
            (w[r * 40 + 3], w[r * 40 + 20]) = (r + 1, -r - 1);
        (w[2 * 40 + 9], w[2 * 40 + 10], w[2 * 40 + 11], w[25], w[40 + 22], w[5 * 40 + 39], w[L * 40]) = (9, 10, 11, 25, 22, 39, 8);
        SlicedEllMatrix ell = SlicedEllMatrix.FromDense(w, L + 1, 40, VectorIsa.Avx2);

        Assert.Equal(new SlicedEllGeometry(L, 8, 1, 1, 4), ell.Geometry);
        Assert.Equal([2, 0, 1, 5, 3, 4, .. Enumerable.Range(6, L - 6), L], ell.RowOrder);
        Assert.Equal(new[] { 0, 8, 12 }, ell.TileSlots);
        Assert.Equal(new[] { 3, 9, 10, 11, 20, 22, 32, 0, 0, 0, 0, 0 }, ell.SlotWindows);
        Assert.True(ell.ReadsInPlace);
        // Lane 0 (row 2): slots 0-4 hold 3, 9, 10, 11, -3; lane 1 (row 0) and lane 2 (row 1) slot 5 hold 25 and 22;
        // lane 3 (row 5) slot 6 holds 39; lane 23 (row 23) slots 0 and 4 hold 24 and -24.
        Assert.Equal(new[] { 3f, 9f, 10f, 11f, -3f, 0f }, Enumerable.Range(0, 6).Select(s => ell.Values[s * L]));
        Assert.Equal((25f, 22f, 39f), (ell.Values[5 * L + 1], ell.Values[5 * L + 2], ell.Values[6 * L + 3]));
        Assert.Equal((24f, -24f), (ell.Values[L - 1], ell.Values[4 * L + L - 1]));
        Assert.Equal(8f, ell.Values[8 * L]);
        // One group of 24 words a tile (tile 1's half full); the only columns off their window's start are row 0's 25
        // in slot 5 (bits 20-23 of lane 1's word) and row 5's 39 in slot 6 (bits 24-27 of lane 3's).
        Assert.Equal(new[] { 0, L, 2 * L }, ell.TileColumns);
        Assert.Equal([0, 3 << 20, 0, 7 << 24, .. new int[2 * L - 4]], ell.Columns.Span.ToArray());
        Assert.Equal((3, 7), (ell.Column(0, 5, 1), ell.Column(0, 6, 3)));
        Assert.Equal(w, ell.ToDense());
        if (VectorIsas.IsAvailable(VectorIsa.Avx2))
            WeightMatrixReference.AssertMultiplyMatches(ell, w, _pool, new Random(3), "ell avx2", 1, 4);
    }

    [Theory]
    [InlineData("csr")]
    [InlineData("ell")]
    public void ResultIsIdenticalForAnyThreadCountAndBatchOneAllocatesNothing(string format)
    {
        var random = new Random(3);
        // Empty rows make sliced-ELL tiles without slots (the last ones, rows sorted by their non-zeros): a single example
        // split over threads must still write their zeros (y starts as NaN).
        float[] w = RandomSparse(300, 784, 0.9, random, emptyRows: true);
        IWeightMatrix matrix = Build(format, w, 300, 784, VectorIsas.Best);
        foreach (int batch in new[] { 1, 2, 40 })
        {
            float[] x = Random(batch * 784, random);
            float[]? first = null;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var pool = new WorkerPool(threads);
                float[] y = new float[batch * 300];
                Array.Fill(y, float.NaN);
                matrix.MultiplyTransposed(pool, x, batch, y);
                Assert.False(y.Any(float.IsNaN), $"{format} batch {batch}, {threads} threads" + ": an output was not written");
                first ??= y;
                Assert.True(first.AsSpan().SequenceEqual(y), $"{format} batch {batch}, {threads} threads");
            }
        }

        float[] one = Random(784, random), output = new float[300];
        matrix.MultiplyTransposed(_pool, one, 1, output);
        long quietest = long.MaxValue; // of five windows: the runtime may allocate on this thread once
        for (int window = 0; window < 5; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++)
                matrix.MultiplyTransposed(_pool, one, 1, output);
            quietest = Math.Min(quietest, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, quietest);
    }

    [Fact]
    public void CsrBatchRowsGetTheSameSumsInBlocksOfSixteenAndOfThirtyTwo()
    {
        // A batch of at most 16 runs one block of 16 lanes, a larger one blocks of 32: a row's outputs must not change.
        var random = new Random(4);
        float[] w = RandomSparse(300, 784, 0.9, random, emptyRows: true);
        float[] x = Random(40 * 784, random);
        foreach (VectorIsa isa in VectorIsas.Available)
        {
            CsrMatrix csr = CsrMatrix.FromDense(w, 300, 784, isa);
            float[] large = new float[40 * 300];
            csr.MultiplyTransposed(_pool, x, 40, large);
            foreach (int batch in new[] { 2, 9, 16 })
            {
                float[] small = new float[batch * 300];
                csr.MultiplyTransposed(_pool, x.AsSpan(0, batch * 784), batch, small);
                Assert.True(large.AsSpan(0, batch * 300).SequenceEqual(small), $"{isa} batch {batch}");
            }
        }
    }

    [Fact]
    public void RejectsBadInput()
    {
        Assert.Equal("w", Assert.Throws<ArgumentException>(() => CsrMatrix.FromDense(new float[7], 2, 4)).ParamName);
        Assert.Equal("w", Assert.Throws<ArgumentException>(() => SlicedEllMatrix.FromDense(new float[7], 2, 4)).ParamName);
        foreach (IWeightMatrix m in new IWeightMatrix[] { CsrMatrix.FromDense(new float[8], 2, 4), SlicedEllMatrix.FromDense(new float[8], 2, 4) })
        {
            Assert.Equal("x", Assert.Throws<ArgumentException>(() => m.MultiplyTransposed(_pool, new float[7], 2, new float[4])).ParamName);
            Assert.Equal("y", Assert.Throws<ArgumentException>(() => m.MultiplyTransposed(_pool, new float[8], 2, new float[3])).ParamName);
        }
    }

    /// <summary>A random matrix with about the given fraction of zeros; with <paramref name="emptyRows"/>, every fifth row is all zero.</summary>
    private static float[] RandomSparse(int rows, int cols, double sparsity, Random random, bool emptyRows)
    {
        float[] w = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            if (emptyRows && r % 5 == 4)
                continue;
            for (int c = 0; c < cols; c++)
            {
                if (random.NextDouble() >= sparsity)
                    w[r * cols + c] = (float)(random.NextDouble() * 2 - 1);
            }
        }

        return w;
    }

    private static float[] Random(int length, Random random)
    {
        float[] x = new float[length];
        for (int i = 0; i < length; i++)
            x[i] = (float)(random.NextDouble() * 2 - 1);
        return x;
    }
}
