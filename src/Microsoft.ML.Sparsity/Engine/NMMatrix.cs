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
/// its group (0 .. M−1) is an index of <see cref="IndexBits"/> = ⌈log₂ M⌉ bits (2 for M = 4, 3 for M = 8) in
/// <see cref="Indices"/>. Each row's indices are a little-endian bit stream (the row's i-th kept value occupies bits
/// [i·b, (i+1)·b), bit 0 being the low bit of the row's first byte) padded to a whole number of 32-bit words, so for
/// M = 4 every 16 kept values of a row have their indices in one aligned 32-bit word, which the kernels broadcast
/// and decode in vector registers (the padding costs under 4 bytes per row). Inside a group the kept positions are
/// strictly increasing; a group with fewer than N non-zeros is padded with its lowest zero positions, whose values
/// are 0. Nothing else is held in memory (no decoded column indices), so <see cref="StorageBytes"/> is the whole
/// footprint: for 2:4, 8.5 bytes per 16 dense ones (0.53125 of dense float32) plus the row padding.
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
        IndexRowBytes = RowBytes(cols / m * n, IndexBits);
        _groups = cols / m;
        _keptPerRow = _groups * n;
        Values = values;
        Indices = indices;
        _kernel = Avx512F.IsSupported && m == 4 && n == 2 ? RowKernel.TwoOfFour
            : Avx512F.IsSupported && m == 4 && n == 1 ? RowKernel.OneOfFour
            : RowKernel.Scalar;
        _chunks = _kernel == RowKernel.Scalar ? 0 : cols / ChunkColumns;
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

    /// <summary>The kept values' positions inside their groups, row by row (see remarks).</summary>
    public byte[] Indices { get; }

    /// <summary>Bytes of one row's indices: 4 · ⌈(cols / M) · N · b / 32⌉.</summary>
    public int IndexRowBytes { get; }

    /// <summary>Bytes of <see cref="Values"/> and <see cref="Indices"/>: rows · (4 · (cols / M) · N + <see cref="IndexRowBytes"/>).</summary>
    public long StorageBytes => Values.LongLength * sizeof(float) + Indices.LongLength;

    private readonly int _groups;
    private readonly int _keptPerRow;

    /// <summary>Whole 16-value chunks per row of the AVX-512 kernels (0 for the scalar one).</summary>
    private readonly int _chunks;

    /// <summary>⌈log₂ m⌉: the bits one index inside a group of <paramref name="m"/> needs.</summary>
    public static int BitsPerIndex(int m) => 32 - BitOperations.LeadingZeroCount((uint)(m - 1));

    private static int RowBytes(int keptPerRow, int bits) => (int)(((long)keptPerRow * bits + 31) / 32 * 4);

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

        int groups = cols / m, bits = BitsPerIndex(m), rowBytes = RowBytes(groups * n, bits);
        var values = new float[(long)rows * groups * n];
        var indices = new byte[(long)rows * rowBytes];
        long k = 0;
        for (int r = 0; r < rows; r++)
        {
            Span<byte> rowIndices = indices.AsSpan(r * rowBytes, rowBytes);
            for (int g = 0, i = 0; g < groups; g++)
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

                    values[k++] = group[t];
                    WriteIndex(rowIndices, i++, bits, t);
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
            ReadOnlySpan<byte> rowIndices = Indices.AsSpan(r * IndexRowBytes, IndexRowBytes);
            for (int g = 0, i = 0; g < _groups; g++)
            {
                for (int j = 0; j < N; j++, k++, i++)
                    w[(long)r * Cols + g * M + ReadIndex(rowIndices, i, IndexBits)] = Values[k];
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

    /// <summary>Stores the i-th index of a row's bit stream.</summary>
    private static void WriteIndex(Span<byte> rowIndices, int i, int bits, int index)
    {
        int bit = i * bits;
        for (int b = 0; b < bits; b++, bit++)
            rowIndices[bit >> 3] |= (byte)(((index >> b) & 1) << (bit & 7));
    }

    /// <summary>The i-th index of a row's bit stream.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ReadIndex(ReadOnlySpan<byte> rowIndices, int i, int bits)
    {
        // An index has at most 8 bits, so it lies within two consecutive bytes.
        int bit = i * bits, at = bit >> 3;
        int window = rowIndices[at] | (at + 1 < rowIndices.Length ? rowIndices[at + 1] << 8 : 0);
        return (window >> (bit & 7)) & ((1 << bits) - 1);
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
