using Microsoft.ML.Sparsity.Engine;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Engine;

public sealed class GemmTests : IDisposable
{
    private readonly WorkerPool _pool = new(2);

    public void Dispose() => _pool.Dispose();

    /// <summary>
    /// Every tier this process runs, by (m, k, n) (op(A) is m x k, op(B) is k x n): single rows and columns, sizes
    /// one off the tiles (MR 4/6/8, NR 4/8/16/32), k past one reduction slice (256) and uneven.
    /// </summary>
    public static TheoryData<string, int, int, int, bool, bool, bool> Cases()
    {
        var data = new TheoryData<string, int, int, int, bool, bool, bool>();
        (int M, int K, int N)[] shapes =
        [
            (1, 1, 1), (7, 13, 5), (1, 784, 300), (16, 784, 300), (33, 17, 65), (129, 257, 31), (45, 70, 1),
            (2, 40, 3), (9, 600, 33), (5, 3, 17),
        ];
        foreach (VectorIsa isa in VectorIsas.Available)
        {
            foreach ((int m, int k, int n) in shapes)
            {
                foreach (bool transA in new[] { false, true })
                {
                    foreach (bool transB in new[] { false, true })
                    {
                        data.Add(isa.ToString(), m, k, n, transA, transB, false);
                        data.Add(isa.ToString(), m, k, n, transA, transB, true);
                    }
                }
            }
        }

        return data;
    }

    /// <summary>The tiers by name (the enum is internal; theories are public).</summary>
    public static TheoryData<string> Tiers() => [.. VectorIsas.Available.Select(isa => isa.ToString())];

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesDoublePrecisionReference(string tier, int m, int k, int n, bool transA, bool transB,
        bool general)
    {
        var isa = Enum.Parse<VectorIsa>(tier);
        // "general": beta other than 0 and padded leading dimensions; otherwise tight, beta = 0 over NaN. Alpha is
        // never 1, so that the beta = 0 updates (full and edge tiles) must scale too.
        float alpha = general ? -0.75f : 1.5f, beta = general ? 0.5f : 0f;
        int pad = general ? 3 : 0;
        var random = new Random(m * 1_000_003 + k * 1009 + n);
        Matrix a = Matrix.Random(transA ? k : m, transA ? m : k, pad, random);
        Matrix b = Matrix.Random(transB ? n : k, transB ? k : n, pad, random);
        Matrix c = general ? Matrix.Random(m, n, pad, random) : Matrix.Filled(m, n, pad, float.NaN);
        float[] c0 = (float[])c.Data.Clone();

        Gemm.Multiply(isa, _pool, transA, transB, m, n, k, alpha, a.Data, a.Ld, b.Data, b.Ld, beta, c.Data, c.Ld);

        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = transA ? a[p, i] : a[i, p], y = transB ? b[j, p] : b[p, j];
                    sum += x * y;
                    magnitude += Math.Abs(x * y);
                }

                double c0ij = c0[i * c.Ld + j];
                double expected = alpha * sum + (beta == 0 ? 0 : beta * c0ij);
                double bound = Math.Abs(alpha) * magnitude + (beta == 0 ? 0 : Math.Abs(beta * c0ij));
                double tolerance = (k + 2) * 1.2e-7 * bound + 1e-30;
                float actual = c[i, j];
                Assert.True(Math.Abs(actual - expected) <= tolerance,
                    $"C[{i},{j}] = {actual}, expected {expected} (tolerance {tolerance})");
            }

            // Padding between rows of C is never written.
            for (int j = n; j < c.Ld && i * c.Ld + j < c.Data.Length; j++)
                Assert.Equal(BitConverter.SingleToInt32Bits(c0[i * c.Ld + j]),
                    BitConverter.SingleToInt32Bits(c.Data[i * c.Ld + j]));
        }
    }

    [Theory]
    [InlineData(0f, 0f)]
    [InlineData(0f, 2f)]
    public void ZeroKOrAlphaOnlyScalesC(float alpha, float beta)
    {
        float[] c = [1, 2, float.NaN, 4];
        if (beta != 0f)
            c[2] = 3;
        Gemm.Multiply(_pool, false, false, 2, 2, 3, alpha, new float[6], 3, new float[6], 2, beta, c, 2);
        Assert.Equal(beta == 0f ? new float[4] : new float[] { 2, 4, 6, 8 }, c);

        float[] d = [float.NaN, float.NaN];
        Gemm.Multiply(_pool, false, false, 1, 2, 0, 1f, [], 1, [], 2, 0f, d, 2);
        Assert.Equal(new float[2], d);
    }

    public static TheoryData<string, int, int, int> ThreadCases()
    {
        var data = new TheoryData<string, int, int, int>();
        foreach (VectorIsa isa in VectorIsas.Available)
        {
            data.Add(isa.ToString(), 200, 300, 260);
            data.Add(isa.ToString(), 24, 200, 500); // splits N on every tier (200 x 300 x 260 splits M)
            data.Add(isa.ToString(), 1, 2000, 1000);
            data.Add(isa.ToString(), 1000, 2000, 1);
        }

        return data;
    }

    /// <summary>The split's costs worked by hand (per unit of k: the busiest thread's multiply-adds + 8 × the floats it packs).</summary>
    [Theory]
    [InlineData("Avx2", 256, 300, 2, false, false)] // 6 x 16 tiles; N: 160·258 + 8·(160 + 258) = 44624; M: 132·304 + 8·(132 + 304) = 43616
    [InlineData("Avx2", 16, 300, 2, false, true)] // 4 x 24 tiles; N: 168·16 + 8·(168 + 16) = 4160; M: 8·312 + 8·(8 + 312) = 5056
    [InlineData("Avx2", 256, 300, 2, true, true)] // a packed B always splits N
    [InlineData("Avx512", 256, 300, 2, false, true)] // 8 x 32 tiles; N: 160·256 + 8·(160 + 256) = 44288; M: 128·320 + 8·(128 + 320) = 44544
    [InlineData("Avx512", 128, 256, 2, false, true)] // N: 128·128 + 8·(128 + 128) = 18432; M: 64·256 + 8·(64 + 256) = 18944
    [InlineData("Avx512", 256, 256, 2, false, false)] // a tie (128·256 + 8·384 = 35840 each) splits M
    public void SplitsTheDimensionCheaperForTheBusiestThread(string tier, int m, int n, int threads, bool packedB, bool splitsN) =>
        Assert.Equal(splitsN, Gemm.SplitsN(Gemm.Blocking.For(Enum.Parse<VectorIsa>(tier), m), m, n, threads, packedB));

    [Theory]
    [MemberData(nameof(ThreadCases))]
    public void ResultIsIdenticalForAnyThreadCount(string tier, int m, int k, int n)
    {
        var isa = Enum.Parse<VectorIsa>(tier);
        var random = new Random(7);
        foreach (bool transA in new[] { false, true })
        {
            foreach (bool transB in new[] { false, true })
            {
                float[] a = Matrix.Random(m, k, 0, random).Data, b = Matrix.Random(k, n, 0, random).Data;
                float[] c0 = Matrix.Random(m, n, 0, random).Data;
                int lda = transA ? m : k, ldb = transB ? k : n;
                float[]? first = null;
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    using var pool = new WorkerPool(threads);
                    float[] c = (float[])c0.Clone();
                    Gemm.Multiply(isa, pool, transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0.25f, c, n);
                    if (first is null)
                        first = c;
                    else
                        Assert.True(first.AsSpan().SequenceEqual(c), $"threads={threads} tA={transA} tB={transB}");

                    // Called from inside a body, a call runs on the caller alone: its items' one-block whole.
                    float[] nested = (float[])c0.Clone();
                    pool.For(2, i =>
                    {
                        if (i == 0)
                            Gemm.Multiply(isa, pool, transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0.25f, nested, n);
                    });
                    Assert.True(first.AsSpan().SequenceEqual(nested), $"nested, threads={threads} tA={transA} tB={transB}");
                }
            }
        }
    }

    [Fact]
    public void ValidatesArguments()
    {
        float[] a = new float[6], b = new float[12], c = new float[8];
        void Call(int m, int n, int k, float[] av, int lda, float[] bv, int ldb, float[] cv, int ldc, bool tA = false,
            bool tB = false) => Gemm.Multiply(_pool, tA, tB, m, n, k, 1f, av, lda, bv, ldb, 0f, cv, ldc);

        Call(2, 4, 3, a, 3, b, 4, c, 4); // valid: A 2x3, B 3x4, C 2x4
        Assert.Equal("m", Assert.ThrowsAny<ArgumentException>(() => Call(-1, 4, 3, a, 3, b, 4, c, 4)).ParamName);
        Assert.Equal("n", Assert.ThrowsAny<ArgumentException>(() => Call(2, -4, 3, a, 3, b, 4, c, 4)).ParamName);
        Assert.Equal("k", Assert.ThrowsAny<ArgumentException>(() => Call(2, 4, -3, a, 3, b, 4, c, 4)).ParamName);
        Assert.Equal("lda", Assert.Throws<ArgumentException>(() => Call(2, 4, 3, a, 2, b, 4, c, 4)).ParamName);
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => Call(2, 4, 3, a, 4, b, 4, c, 4)).ParamName);
        Assert.Equal("ldb", Assert.Throws<ArgumentException>(() => Call(2, 4, 3, a, 3, b, 3, c, 4)).ParamName);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => Call(2, 4, 3, a, 3, b, 5, c, 4)).ParamName);
        Assert.Equal("ldc", Assert.Throws<ArgumentException>(() => Call(2, 4, 3, a, 3, b, 4, c, 3)).ParamName);
        Assert.Equal("c", Assert.Throws<ArgumentException>(() => Call(2, 4, 3, a, 3, b, 4, c, 5)).ParamName);
        // Transposed storage: A stored 3x2 (lda >= 2), B stored 4x3 (ldb >= 3).
        Call(2, 4, 3, a, 2, b, 3, c, 4, true, true);
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => Call(2, 4, 3, a, 3, b, 3, c, 4, true, true)).ParamName);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => Call(2, 4, 3, a, 2, b, 4, c, 4, true, true)).ParamName);
        Assert.Throws<ArgumentNullException>(
            () => Gemm.Multiply(null!, false, false, 2, 4, 3, 1f, a, 3, b, 4, 0f, c, 4));
    }

    /// <summary>A pre-packed B gives the same bits as packing it in the call (m, n > 1: not a GEMV), for any thread count.</summary>
    [Theory]
    [MemberData(nameof(Tiers))]
    public void PackedMatrixEqualsUnpackedCall(string tier)
    {
        var isa = Enum.Parse<VectorIsa>(tier);
        var random = new Random(11);
        foreach ((int m, int k, int n) in new[] { (16, 784, 300), (2, 3, 2), (7, 513, 45), (64, 100, 10) })
        {
            foreach (bool transA in new[] { false, true })
            {
                foreach (bool transB in new[] { false, true })
                {
                    float[] a = Matrix.Random(m, k, 0, random).Data, b = Matrix.Random(k, n, 0, random).Data;
                    float[] c0 = Matrix.Random(m, n, 0, random).Data;
                    int lda = transA ? m : k, ldb = transB ? k : n;
                    var packed = new Gemm.PackedMatrix(isa, transB, k, n, b, ldb);
                    float[] expected = (float[])c0.Clone();
                    Gemm.Multiply(isa, _pool, transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0.25f, expected, n);
                    foreach (int threads in new[] { 1, 2, 3 })
                    {
                        using var pool = new WorkerPool(threads);
                        float[] c = (float[])c0.Clone();
                        Gemm.Multiply(pool, transA, m, 1.5f, a, lda, packed, 0.25f, c, n);
                        Assert.True(expected.AsSpan().SequenceEqual(c), $"m={m} k={k} n={n} tA={transA} tB={transB} threads={threads}");

                        // From inside a body: the one-block whole.
                        float[] nested = (float[])c0.Clone();
                        pool.For(2, i =>
                        {
                            if (i == 0)
                                Gemm.Multiply(pool, transA, m, 1.5f, a, lda, packed, 0.25f, nested, n);
                        });
                        Assert.True(expected.AsSpan().SequenceEqual(nested), $"nested: m={m} k={k} n={n} tA={transA} tB={transB} threads={threads}");
                    }
                }
            }
        }
    }

    [Fact]
    public void TierBeyondTheProcessIsRefused()
    {
        Assert.Equal(VectorIsas.Describe(VectorIsas.Best), Gemm.Isa);
        if (VectorIsas.Best == VectorIsa.Avx512)
            return;
        var isa = VectorIsas.Best + 1;
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Multiply(isa, _pool, false, false, 1, 1, 1, 1f, [1f], 1, [1f], 1, 0f, new float[1], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Gemm.PackedMatrix(isa, false, 1, 1, [1f], 1));
    }

    /// <summary>A row-major matrix with leading dimension Ld = Cols + pad; padding holds NaN.</summary>
    internal sealed class Matrix
    {
        private Matrix(int rows, int cols, int pad)
        {
            Ld = cols + pad;
            Data = new float[Math.Max(0, (rows - 1) * Ld + cols)];
            Data.AsSpan().Fill(float.NaN);
        }

        public float[] Data { get; }

        public int Ld { get; }

        public float this[int i, int j] => Data[i * Ld + j];

        public static Matrix Random(int rows, int cols, int pad, Random random)
        {
            var matrix = new Matrix(rows, cols, pad);
            for (int i = 0; i < rows; i++)
            {
                for (int j = 0; j < cols; j++)
                    matrix.Data[i * matrix.Ld + j] = (float)(random.NextDouble() * 2 - 1);
            }

            return matrix;
        }

        public static Matrix Filled(int rows, int cols, int pad, float value)
        {
            var matrix = new Matrix(rows, cols, pad);
            matrix.Data.AsSpan().Fill(value);
            return matrix;
        }
    }
}

/// <summary>Steady-state calls allocate nothing; measured process-wide, so this runs on its own.</summary>
[Collection(nameof(GemmAllocationTests))]
public sealed class GemmAllocationTests
{
    [Fact]
    public void RepeatedCallsDoNotAllocate()
    {
        using var pool = new WorkerPool(2);
        var random = new Random(3);
        float[] a = GemmTests.Matrix.Random(64, 784, 0, random).Data;
        float[] w = GemmTests.Matrix.Random(300, 784, 0, random).Data;
        float[] c = new float[64 * 300], y = new float[300], dx = new float[64 * 784];
        void Calls()
        {
            Gemm.Multiply(pool, false, true, 64, 300, 784, 1f, a, 784, w, 784, 0f, c, 300); // X * W^T
            Gemm.Multiply(pool, false, false, 64, 784, 300, 1f, c, 300, w, 784, 0f, dx, 784); // dY * W
            Gemm.Multiply(pool, true, false, 300, 784, 64, 1f, c, 300, a, 784, 1f, w, 784); // dY^T * X
            Gemm.Multiply(pool, false, true, 1, 300, 784, 1f, a, 784, w, 784, 0f, y, 300); // batch-1 GEMV
        }

        for (int i = 0; i < 20; i++)
            Calls();

        // The calling thread must never allocate. The process-wide count also sees the test runner's own
        // background work (and a pool thread allocating its packing buffers the first time it happens to run an
        // item), so it only has to be zero in one of several short windows; a per-call allocation never is.
        bool quiet = false;
        for (int attempt = 0; attempt < 50 && !quiet; attempt++)
        {
            long thread = GC.GetAllocatedBytesForCurrentThread();
            long total = GC.GetTotalAllocatedBytes(precise: true);
            Calls();
            quiet = GC.GetTotalAllocatedBytes(precise: true) - total == 0;
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - thread);
        }

        Assert.True(quiet, "GEMM calls allocated on pool threads.");
    }

    [Fact]
    public void ACallRunAsOneBlockNeedsNoMoreBufferThanItsItems()
    {
        // On a fresh thread (its packing buffers empty): calls split over the pool size the caller's buffers; the same
        // call run as one block (nested in a body, so on the caller alone) must not grow them. It did when the buffers
        // were sized for the block: 64 x 784 x 300 splits N, and a block spans all 300 columns where an item spans half.
        using var pool = new WorkerPool(2);
        var random = new Random(5);
        float[] a = GemmTests.Matrix.Random(64, 784, 0, random).Data, w = GemmTests.Matrix.Random(300, 784, 0, random).Data;
        float[] c = new float[64 * 300];
        void Call() => Gemm.Multiply(pool, false, true, 64, 300, 784, 1f, a, 784, w, 784, 0f, c, 300);
        long grown = -1;
        var thread = new Thread(() =>
        {
            for (int i = 0; i < 20; i++)
                Call();
            pool.For(2, i =>
            {
                if (i != 0)
                    return;
                long before = GC.GetAllocatedBytesForCurrentThread();
                Call();
                grown = GC.GetAllocatedBytesForCurrentThread() - before;
            });
        });
        thread.Start();
        thread.Join();
        Assert.True(Gemm.SplitsN(Gemm.Blocking.For(VectorIsas.Best, 64), 64, 300, 2, packedB: false));
        Assert.Equal(0, grown);
    }
}

[CollectionDefinition(nameof(GemmAllocationTests), DisableParallelization = true)]
public sealed class GemmAllocationCollection;

/// <summary>The dense weight format: GEMV at batch 1, the pre-packed weight for batches.</summary>
public sealed class DenseMatrixTests : IDisposable
{
    private readonly WorkerPool _pool = new(2);

    public void Dispose() => _pool.Dispose();

    [Theory]
    [InlineData(300, 784)]
    [InlineData(17, 9)] // one output too many for the transposed single-example kernel
    [InlineData(16, 33)]
    [InlineData(10, 100)]
    [InlineData(7, 5)]
    public void MatchesDoublePrecisionReference(int rows, int cols)
    {
        var random = new Random(rows * 31 + cols);
        float[] w = WeightMatrixReference.RandomVector(rows * cols, random);
        var matrix = new DenseMatrix(w, rows, cols);
        WeightMatrixReference.AssertMultiplyMatches(matrix, w, _pool, random, "dense", 1, 2, 16, 33);
    }

    public static TheoryData<string> Tiers() => [.. VectorIsas.Available.Select(isa => isa.ToString())];

    /// <summary>
    /// The single-example kernel of weights with at most 16 outputs, on each tier: every input count around its
    /// steps of 8 (AVX-512), 4 (AVX2) and 2 (Vector128, scalar), outputs within 1e-5 of a double-precision reference
    /// relative to Σ|x·w|, and nothing written past the outputs.
    /// </summary>
    [Theory]
    [MemberData(nameof(Tiers))]
    public unsafe void NarrowWeightsMatchTheReferenceOnEveryTier(string tier)
    {
        var isa = Enum.Parse<VectorIsa>(tier);
        var random = new Random(11);
        foreach (int rows in new[] { 1, 5, 10, 16 })
        {
            foreach (int k in new[] { 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 100, 131 })
            {
                float[] w = WeightMatrixReference.RandomVector(rows * k, random), x = WeightMatrixReference.RandomVector(k, random);
                var transposed = new AlignedArray<float>(k * Gemm.NarrowLanes);
                for (int r = 0; r < rows; r++)
                {
                    for (int c = 0; c < k; c++)
                        transposed[(long)c * Gemm.NarrowLanes + r] = w[r * k + c];
                }

                float[] y = Enumerable.Repeat(float.NaN, Gemm.NarrowLanes + 1).ToArray();
                fixed (float* px = x, py = y)
                    Gemm.MultiplyNarrow(isa, transposed.Pointer, px, k, py, rows);
                for (int r = 0; r < rows; r++)
                {
                    double sum = 0, magnitude = 0;
                    for (int c = 0; c < k; c++)
                    {
                        sum += (double)x[c] * w[r * k + c];
                        magnitude += Math.Abs((double)x[c] * w[r * k + c]);
                    }

                    Assert.True(Math.Abs(y[r] - sum) <= 1e-5 * magnitude + 1e-30, $"{tier} {rows}x{k}: y[{r}] = {y[r]}, expected {sum}");
                }

                Assert.All(y.Skip(rows), v => Assert.True(float.IsNaN(v), $"{tier} {rows}x{k} wrote past its outputs"));
            }
        }
    }
}
