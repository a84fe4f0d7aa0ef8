using Microsoft.ML.Sparsity.Engine;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Engine;

public sealed class NMMatrixTests : IDisposable
{
    private readonly WorkerPool _pool = new(2);

    public void Dispose() => _pool.Dispose();

    public static TheoryData<int, int> Patterns() => new() { { 1, 4 }, { 2, 4 }, { 1, 8 }, { 2, 8 }, { 4, 8 } };

    [Theory]
    [MemberData(nameof(Patterns))]
    public void RoundTripsAndStoresValuesInGroupOrder(int n, int m)
    {
        var random = new Random(n * 100 + m);
        foreach ((int rows, int cols) in new[] { (1, m), (7, 3 * m), (13, 200 / m * m), (40, 5 * m), (5, 0) })
        {
            float[] w = RandomNM(rows, cols, n, m, random);
            NMMatrix sparse = NMMatrix.FromDense(w, rows, cols, n, m);

            Assert.Equal(w, sparse.ToDense());
            Assert.Equal((n, m, rows, cols), (sparse.N, sparse.M, sparse.Rows, sparse.Cols));
            // Row r's slot s is at ((r / 16) · Slots + s) · 16 + r % 16: the group's non-zeros in column order, zero-padded to N.
            for (int r = 0; r < rows; r++)
            {
                for (int g = 0; g < cols / m; g++)
                {
                    float[] nonZeros = w.AsSpan(r * cols + g * m, m).ToArray().Where(v => v != 0f).ToArray();
                    float[] kept = Enumerable.Range(g * n, n)
                        .Select(slot => sparse.Values[((r / 16) * sparse.Slots + slot) * 16 + r % 16]).ToArray();
                    Assert.Equal(nonZeros, kept.Where(v => v != 0f));
                }
            }
        }
    }

    [Theory]
    [InlineData(2, 4, 300, 784, 2)]
    [InlineData(1, 4, 100, 300, 2)]
    [InlineData(2, 8, 3, 16, 4)]
    [InlineData(4, 8, 5, 8, 4)]
    [InlineData(1, 8, 9, 40, 4)]
    [InlineData(3, 5, 4, 10, 4)]
    [InlineData(1, 32, 17, 64, 8)]
    public void StorageIsTilesOfPackedValuesAndIndices(int n, int m, int rows, int cols, int bits)
    {
        NMMatrix sparse = NMMatrix.FromDense(RandomNM(rows, cols, n, m, new Random(1)), rows, cols, n, m);
        int kept = cols / m * n, slots = (kept + 3) / 4 * 4, tiles = (rows + 15) / 16;

        Assert.Equal(bits, sparse.IndexBits);
        Assert.Equal((kept, slots, tiles), (sparse.KeptPerRow, sparse.Slots, sparse.Tiles));
        Assert.Equal(tiles * slots * 16, sparse.Values.Length);
        Assert.Equal(tiles * slots * bits / 8 * 16, sparse.Indices.Length);
        Assert.Equal(4L * sparse.Values.Length + sparse.Indices.Length, sparse.StorageBytes);
    }

    [Fact]
    public void TwoOfFourStorageIsUnderSixTenthsOfDense()
    {
        // Per group of 4 dense floats (16 bytes): 2 floats (8 bytes) and 2 two-bit indices (half a byte): 17/32 of
        // dense when the rows fill whole tiles; LeNet's 300 rows pad to 304.
        NMMatrix sparse = NMMatrix.FromDense(RandomNM(320, 768, 2, 4, new Random(2)), 320, 768, 2, 4);
        Assert.Equal(17.0 / 32, (double)sparse.StorageBytes / (320 * 768 * sizeof(float)));
        sparse = NMMatrix.FromDense(RandomNM(300, 784, 2, 4, new Random(2)), 300, 784, 2, 4);
        Assert.Equal(17.0 / 32 * 304 / 300, (double)sparse.StorageBytes / (300 * 784 * sizeof(float)), 12);
    }

    [Fact]
    public void IndicesArePackedTwoBitsLowFirstPerRowLane()
    {
        // Row 0: groups {_, a, _, b} and {c, _, _, _} -> slots 1, 3, 0, 1 (second group padded with its first zero);
        // row 1: {_, _, d, _} and {_, _, _, _} -> 0, 2, 0, 1. Each row is a lane of the 16-row tile.
        float[] w = [0, 1, 0, 2, 3, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0];
        NMMatrix sparse = NMMatrix.FromDense(w, 2, 8, 2, 4);

        var values = new float[4 * 16];
        (values[0], values[16], values[32], values[48]) = (1, 2, 3, 0);
        (values[1], values[17], values[33], values[49]) = (0, 4, 0, 0);
        Assert.Equal(values, sparse.Values.Span.ToArray());
        var indices = new byte[16];
        indices[0] = 1 | 3 << 2 | 0 << 4 | 1 << 6;
        indices[1] = 0 | 2 << 2 | 0 << 4 | 1 << 6;
        Assert.Equal(indices, sparse.Indices.Span.ToArray());
    }

    /// <summary>Every (N, M, shape) with every tier this process runs (the tier as an int: VectorIsa is internal).</summary>
    public static TheoryData<int, int, int, int, int> KernelCases()
    {
        var data = new TheoryData<int, int, int, int, int>();
        (int N, int M)[] patterns = [(1, 4), (2, 4), (3, 4), (1, 8), (2, 8), (4, 8), (2, 6), (1, 2)];
        (int Rows, int Cols)[] shapes = [(300, 784), (100, 300), (10, 100), (7, 8), (33, 136), (16, 64), (48, 24)];
        foreach ((int n, int m) in patterns)
        {
            foreach ((int rows, int cols) in shapes)
            {
                if (cols % m != 0)
                    continue;
                foreach (VectorIsa isa in VectorIsas.Available)
                    data.Add(n, m, rows, cols, (int)isa);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(KernelCases))]
    public void MultiplyTransposedMatchesDoublePrecisionReference(int n, int m, int rows, int cols, int tier)
    {
        var isa = (VectorIsa)tier;
        var random = new Random(rows * 1009 + cols * 31 + n * 7 + m);
        float[] w = RandomNM(rows, cols, n, m, random);
        NMMatrix sparse = NMMatrix.FromDense(w, rows, cols, n, m, isa);
        Assert.Equal(m is 4 or 8 ? isa : VectorIsa.Scalar, sparse.KernelIsa);
        WeightMatrixReference.AssertMultiplyMatches(sparse, w, _pool, random, $"{n}:{m} {isa}", 1, 3, 17, 64, 70);
    }

    /// <summary>
    /// Ragged shapes on every tier: dense layers (one run of C inputs) and im2col convolution rows (9 runs of C) with
    /// C mod M = 1 .. M − 1.
    /// </summary>
    public static TheoryData<int, int, int, int, int, int> RaggedCases()
    {
        var data = new TheoryData<int, int, int, int, int, int>();
        foreach ((int n, int m) in new[] { (1, 4), (2, 4), (3, 4), (1, 8), (2, 8), (4, 8) })
        {
            for (int r = 1; r < m; r++)
            {
                foreach (VectorIsa isa in VectorIsas.Available)
                {
                    data.Add(n, m, 17 + r, 3 * m + r, 3 * m + r, (int)isa);   // dense: one run
                    data.Add(n, m, 9, 9 * (m + r), m + r, (int)isa);          // 3×3 convolution: 9 runs
                }
            }
        }

        data.Add(1, 8, 300, 784, 784, (int)VectorIsas.Best);   // LeNet's layers at 1:8: 784 is a multiple of 8, 300 and 100 are not
        data.Add(1, 8, 100, 300, 300, (int)VectorIsas.Best);
        data.Add(1, 8, 10, 100, 100, (int)VectorIsas.Best);
        return data;
    }

    [Theory]
    [MemberData(nameof(RaggedCases))]
    public void RaggedMatrixRoundTripsAndMultipliesAsTheDoubleReference(int n, int m, int rows, int cols, int run, int tier)
    {
        var isa = (VectorIsa)tier;
        var random = new Random(rows * 1009 + cols * 31 + run * 7 + n * 3 + m + tier);
        float[] w = RandomNM(rows, cols, n, m, random, run);
        NMMatrix sparse = NMMatrix.FromDense(w, rows, cols, n, m, isa, run);

        Assert.Equal(w, sparse.ToDense());
        Assert.Equal(cols / run * ((run + m - 1) / m) * n, sparse.KeptPerRow);
        WeightMatrixReference.AssertMultiplyMatches(sparse, w, _pool, random, $"{n}:{m} {rows}x{cols} runs of {run} {isa}", 1, 3, 17);
    }

    [Fact]
    public void RaggedGroupsStartAtEachRun()
    {
        // Runs of 6 with M = 4: groups {0..3}, {4, 5}, {6..9}, {10, 11}. Three non-zeros in columns 4..6 fit 2:4 only
        // because column 6 starts the second run; read as one run of 12 they would fill the group {4..7}.
        float[] w = [1, 0, 2, 0, 3, 4, 5, 0, 0, 0, 0, 6];
        NMMatrix sparse = NMMatrix.FromDense(w, 1, 12, 2, 4, run: 6);
        Assert.Equal(w, sparse.ToDense());
        Assert.Equal(8, sparse.KeptPerRow);
        // A ragged group is stored as the window of M columns that ends its run ({2..5}, {8..11}), its kept positions
        // shifted by M − r = 2; the window's columns of the previous group are zeros to it (column 2's 2 is not its own).
        // Slots: {1, 2} -> positions 0, 2; {3, 4} -> 2, 3 of {2..5}; {5} -> 0, padded by the first zero 1; {6} -> 3,
        // padded by 0 (column 8, a zero before the window's own columns).
        float[] values = Enumerable.Range(0, 8).Select(slot => sparse.Values[slot * 16]).ToArray();
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 0f, 0f, 6f], values);
        byte[] indices = [sparse.Indices[0], sparse.Indices[16]];
        Assert.Equal([(byte)(0 | 2 << 2 | 2 << 4 | 3 << 6), (byte)(0 | 1 << 2 | 0 << 4 | 3 << 6)], indices);
        var error = Assert.Throws<ArgumentException>(() => NMMatrix.FromDense(w, 1, 12, 2, 4));
        Assert.Contains("Row 0, group 1 (columns 4..7)", error.Message);
    }

    public static TheoryData<int> Tiers() => [.. VectorIsas.Available.Select(isa => (int)isa)];

    [Theory]
    [MemberData(nameof(Tiers))]
    public void EveryTierHandlesAllZeroWeightsAndTilesCutShort(int tier)
    {
        // All zeros (every group padded with zero values); 1, 9 and 23 rows cut the 16-row tile, AVX2's 8-row
        // halves and Vector128's 4-row quarters short; 12 columns leave the last quad of slots padded.
        var isa = (VectorIsa)tier;
        var random = new Random(tier);
        foreach ((int n, int m) in new[] { (2, 4), (1, 4), (2, 8), (1, 8) })
        {
            foreach ((int rows, int cols) in new[] { (1, 8), (9, 24), (23, 16), (17, 40) })
            {
                float[] zeros = new float[rows * cols];
                WeightMatrixReference.AssertMultiplyMatches(NMMatrix.FromDense(zeros, rows, cols, n, m, isa), zeros, _pool, random, $"zero {n}:{m} {isa}", 1, 2);
                float[] w = RandomNM(rows, cols, n, m, random);
                WeightMatrixReference.AssertMultiplyMatches(NMMatrix.FromDense(w, rows, cols, n, m, isa), w, _pool, random, $"{n}:{m} {isa}", 1, 2);
            }
        }
    }

    [Fact]
    public void ResultIsIdenticalForAnyThreadCount()
    {
        var random = new Random(3);
        NMMatrix sparse = NMMatrix.FromDense(RandomNM(300, 784, 2, 4, random), 300, 784, 2, 4);
        foreach (int batch in new[] { 1, 2, 40 })
        {
            float[] x = RandomVector(batch * 784, random);
            float[]? first = null;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var pool = new WorkerPool(threads);
                float[] y = new float[batch * 300];
                Array.Fill(y, float.NaN);  // every output written, whichever thread has its tile
                sparse.MultiplyTransposed(pool, x, batch, y);
                Assert.False(y.Any(float.IsNaN), $"batch {batch}, {threads} threads" + ": an output was not written");
                first ??= y;
                Assert.True(first.AsSpan().SequenceEqual(y), $"batch {batch}, {threads} threads");
            }
        }
    }

    [Theory]
    [InlineData(2, 4, 300, 784)]
    [InlineData(1, 4, 10, 100)]
    [InlineData(2, 8, 100, 304)]
    [InlineData(1, 8, 100, 300)]
    public void BatchOneAllocatesNothingOnceWarm(int n, int m, int rows, int cols)
    {
        var random = new Random(4);
        NMMatrix sparse = NMMatrix.FromDense(RandomNM(rows, cols, n, m, random), rows, cols, n, m);
        float[] x = RandomVector(cols, random), y = new float[rows];
        sparse.MultiplyTransposed(_pool, x, 1, y);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++)
            sparse.MultiplyTransposed(_pool, x, 1, y);

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void RejectsBadInput()
    {
        var run = Assert.Throws<ArgumentException>(() => NMMatrix.FromDense(new float[2 * 6], 2, 6, 2, 4, run: 4));
        Assert.Equal("run", run.ParamName);
        Assert.Contains("run length 4 does not divide the column count 6", run.Message);
        var shortRun = Assert.Throws<ArgumentException>(() => NMMatrix.FromDense(new float[2 * 6], 2, 6, 2, 4, run: 3));
        Assert.Equal("run", shortRun.ParamName);
        Assert.Contains("shorter than the group size M = 4", shortRun.Message);

        float[] w = new float[3 * 8];
        w[2 * 8 + 4] = w[2 * 8 + 5] = w[2 * 8 + 7] = 1f; // row 2, group 1: three non-zeros
        var group = Assert.Throws<ArgumentException>(() => NMMatrix.FromDense(w, 3, 8, 2, 4));
        Assert.Equal("w", group.ParamName);
        Assert.Contains("Row 2, group 1", group.Message);
        Assert.Contains("3 non-zeros", group.Message);

        Assert.Throws<ArgumentException>(() => NMMatrix.FromDense(new float[7], 2, 4, 2, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => NMMatrix.FromDense(new float[8], 2, 4, 0, 4));

        NMMatrix sparse = NMMatrix.FromDense(new float[8], 2, 4, 2, 4);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => sparse.MultiplyTransposed(_pool, new float[7], 2, new float[4])).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => sparse.MultiplyTransposed(_pool, new float[8], 2, new float[3])).ParamName);
    }

    /// <summary>
    /// A random matrix with N:M sparsity along runs of <paramref name="run"/> columns (0: one run per row), a ragged last
    /// group of r holding up to ⌈N·r/M⌉; about a quarter of its groups hold fewer than they may.
    /// </summary>
    private static float[] RandomNM(int rows, int cols, int n, int m, Random random, int run = 0)
    {
        float[] w = new float[rows * cols];
        if (run == 0) run = Math.Max(cols, 1);
        for (int runStart = 0; runStart < w.Length; runStart += run)
        {
            for (int g = 0; g < run; g += m)
            {
                int size = Math.Min(m, run - g), keep = (n * size + m - 1) / m;
                int[] positions = Enumerable.Range(0, size).ToArray();
                random.Shuffle(positions);
                int count = random.Next(4) == 0 ? random.Next(keep) : keep;
                for (int j = 0; j < count; j++)
                    w[runStart + g + positions[j]] = (float)(random.NextDouble() * 2 - 1);
            }
        }

        return w;
    }

    private static float[] RandomVector(int length, Random random)
    {
        float[] x = new float[length];
        for (int i = 0; i < length; i++)
            x[i] = (float)(random.NextDouble() * 2 - 1);
        return x;
    }
}
