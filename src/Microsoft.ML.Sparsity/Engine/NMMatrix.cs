using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A row-major weight matrix W [rows, cols] with N:M sparsity along its rows (every group of M consecutive columns
/// holds at most N non-zeros), stored compressed for inference: per group N values and N small indices.
/// </summary>
/// <remarks>
/// <para>
/// Layout. Kept value k = (row · groups + group) · N + j (j = 0 .. N−1) is <c>Values[k]</c>; its position inside
/// its group (0 .. M−1) is index k of <see cref="Indices"/>, a little-endian bit stream of
/// <see cref="IndexBits"/> = ⌈log₂ M⌉ bits per index (index k occupies bits [k·b, (k+1)·b), bit 0 being the low bit
/// of byte 0), continuous across rows: 2 bits for M = 4 (a 32-bit word holds 16 indices), 3 bits for M = 8. Inside
/// a group the kept positions are strictly increasing; a group with fewer than N non-zeros is padded with its
/// lowest zero positions, whose values are 0. Nothing else is held in memory: the kernels decode the indices on
/// the fly, so <see cref="StorageBytes"/> is the whole footprint (2:4: 0.5 + 1/16 = 0.5625 of dense float32).
/// </para>
/// <para>
/// <see cref="MultiplyTransposed"/> computes y = x · Wᵀ (a dense layer's forward pass). It is safe to call from
/// several threads at once (per-thread job objects and scratch, as in <see cref="Gemm"/>) and allocates nothing
/// once warm. Each output is summed in an order fixed by the matrix and the batch size alone, so results do not
/// depend on the thread count.
/// </para>
/// </remarks>
internal sealed unsafe partial class NMMatrix
{
    private NMMatrix(int rows, int cols, int n, int m, float[] values, byte[] indices)
    {
        Rows = rows;
        Cols = cols;
        N = n;
        M = m;
        IndexBits = BitsPerIndex(m);
        Values = values;
        Indices = indices;
        _kernel = Avx512F.IsSupported && m == 4 && n == 2 ? RowKernel.TwoOfFour
            : Avx512F.IsSupported && m == 4 && n == 1 ? RowKernel.OneOfFour
            : RowKernel.Scalar;
    }

    public int Rows { get; }
    public int Cols { get; }

    /// <summary>Values kept per group.</summary>
    public int N { get; }

    /// <summary>Group size (consecutive columns).</summary>
    public int M { get; }

    /// <summary>Bits per stored index: ⌈log₂ M⌉.</summary>
    public int IndexBits { get; }

    /// <summary>The kept values, [rows, cols / M, N], zero where a group had fewer than N non-zeros.</summary>
    public float[] Values { get; }

    /// <summary>The kept values' positions inside their groups, <see cref="IndexBits"/> bits each (see remarks).</summary>
    public byte[] Indices { get; }

    /// <summary>Bytes of <see cref="Values"/> and <see cref="Indices"/>: 4 · rows · cols/M · N + ⌈rows · cols/M · N · b / 8⌉.</summary>
    public long StorageBytes => Values.LongLength * sizeof(float) + Indices.LongLength;

    private int Groups => Cols / M;

    private int KeptPerRow => Cols / M * N;

    /// <summary>⌈log₂ m⌉: the bits one index inside a group of <paramref name="m"/> needs.</summary>
    public static int BitsPerIndex(int m) => 32 - BitOperations.LeadingZeroCount((uint)(m - 1));

    /// <summary>
    /// Compresses the row-major matrix <paramref name="w"/> [<paramref name="rows"/>, <paramref name="cols"/>], whose
    /// every group of <paramref name="m"/> consecutive columns holds at most <paramref name="n"/> non-zeros.
    /// </summary>
    /// <exception cref="ArgumentException">cols is not a multiple of m, w has the wrong length, or a group has more
    /// than n non-zeros (the message names the row and group).</exception>
    public static NMMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols, int n, int m)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (m < 2 || m > 256)
            throw new ArgumentOutOfRangeException(nameof(m), m, "The group size M must be between 2 and 256.");
        if (n < 1 || n > m)
            throw new ArgumentOutOfRangeException(nameof(n), n, $"N must satisfy 1 <= N <= M = {m}.");
        if (cols % m != 0)
            throw new ArgumentException($"The column count {cols} is not a multiple of the group size M = {m}.", nameof(cols));
        if (w.Length != (long)rows * cols)
            throw new ArgumentException($"Length {w.Length} does not match a {rows}x{cols} matrix.", nameof(w));

        int groups = cols / m, bits = BitsPerIndex(m);
        long kept = (long)rows * groups * n;
        var values = new float[kept];
        var indices = new byte[(kept * bits + 7) / 8];
        long k = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < groups; g++)
            {
                ReadOnlySpan<float> group = w.Slice(r * cols + g * m, m);
                int nonZeros = m - group.Count(0f);
                if (nonZeros > n)
                {
                    throw new ArgumentException(
                        $"Row {r}, group {g} (columns {g * m}..{g * m + m - 1}) has {nonZeros} non-zeros; " +
                        $"{n}:{m} sparsity allows at most {n}.", nameof(w));
                }

                // Keep the non-zeros and, if there are fewer than n, the first zeros, in position order.
                int paddingZeros = n - nonZeros;
                for (int t = 0; t < m; t++)
                {
                    if (group[t] == 0f)
                    {
                        if (paddingZeros == 0)
                            continue;
                        paddingZeros--;
                    }

                    values[k] = group[t];
                    WriteIndex(indices, k, bits, t);
                    k++;
                }
            }
        }

        return new NMMatrix(rows, cols, n, m, values, indices);
    }

    /// <summary>The dense row-major matrix [Rows, Cols].</summary>
    public float[] ToDense()
    {
        var w = new float[(long)Rows * Cols];
        long k = 0;
        for (int r = 0; r < Rows; r++)
        {
            for (int g = 0; g < Groups; g++)
            {
                for (int j = 0; j < N; j++, k++)
                    w[(long)r * Cols + g * M + ReadIndex(Indices, k, IndexBits)] = Values[k];
            }
        }

        return w;
    }

    /// <summary>
    /// y[batch, Rows] = x[batch, Cols] · Wᵀ (row-major, y overwritten): a dense layer's forward pass without bias.
    /// Batch 1 runs on the calling thread unless the matrix is large; larger batches are split over the pool.
    /// </summary>
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
        fixed (float* pv = Values)
        fixed (byte* pi = Indices)
        {
            Job job = RentJob();
            try
            {
                job.Run(pool, this, px, py, pv, pi, batch);
            }
            finally
            {
                job.Release();
            }
        }
    }

    private static void WriteIndex(byte[] indices, long k, int bits, int index)
    {
        long bit = k * bits;
        for (int b = 0; b < bits; b++, bit++)
            indices[bit >> 3] |= (byte)(((index >> b) & 1) << (int)(bit & 7));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ReadIndex(ReadOnlySpan<byte> indices, long k, int bits)
    {
        // An index has at most 8 bits, so it lies within two consecutive bytes.
        long bit = k * bits;
        int at = (int)(bit >> 3);
        int window = indices[at] | (at + 1 < indices.Length ? indices[at + 1] << 8 : 0);
        return (window >> (int)(bit & 7)) & ((1 << bits) - 1);
    }

    /// <summary>Which row kernel serves this matrix (the AVX-512 ones need M = 4).</summary>
    private enum RowKernel
    {
        Scalar,
        TwoOfFour,
        OneOfFour,
    }

    private readonly RowKernel _kernel;

    /// <summary>A thread-local scratch array on the pinned object heap; it only grows.</summary>
    private sealed class Scratch<T>
        where T : unmanaged
    {
        private T[]? _array;

        public T* Get(int length)
        {
            if (_array is null || _array.Length < length)
                _array = GC.AllocateUninitializedArray<T>(length, pinned: true);
            return (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        }
    }
}
