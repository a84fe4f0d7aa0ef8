namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// A row-major weight matrix W [rows, cols] with N:M sparsity along its rows (every group of M consecutive columns
/// holds at most N non-zeros), stored compressed for inference: per group N values and N small indices.
/// </summary>
/// <remarks>
/// <para>
/// Layout. Rows go in tiles of <see cref="TileRows"/> = 16 (the last tile padded with zero rows). A row's kept values
/// are its slots: slot s = g · N + j is the j-th kept value of group g, for <see cref="KeptPerRow"/> = (cols / M) · N
/// slots, padded with zero slots to <see cref="Slots"/>, a multiple of 4. <see cref="Values"/> holds, tile after tile
/// and slot after slot, the 16 rows' values of that slot: value (row r, slot s) is at
/// <c>((r / 16) · Slots + s) · 16 + r % 16</c>. Its position inside its group (0 .. M−1) is an index of
/// <see cref="IndexBits"/> bits (2 for M ≤ 4, 4 for M ≤ 16, else 8) in <see cref="Indices"/>, which packs the
/// indices of 8 / IndexBits consecutive slots of one row into a byte, laid out like the values: byte
/// <c>((r / 16) · Slots · IndexBits / 8 + s · IndexBits / 8) · 16 + r % 16</c>, low bits first. Inside a group the
/// kept positions are strictly increasing; a group with fewer than N non-zeros is padded with its lowest zero
/// positions, whose values are 0. For 2:4, 16 dense floats (64 bytes) become 8 values and one index byte
/// (33 bytes): 0.516 of dense, plus the padding of the last tile.
/// </para>
/// <para>
/// Kernel. <see cref="RowKernelMatrix.MultiplyTransposed"/> computes y = x · Wᵀ (a dense layer's forward pass) one batch row at a
/// time, with the kernel of the tier chosen at construction (<see cref="KernelIsa"/>). With M = 4, the group's 4 x values
/// are broadcast to every 128-bit lane of a register, and one in-lane permute (vpermilps; TBL on ARM64) picks, for
/// each row of the register, the x value its index names; one FMA meets it with the rows' values. The index bytes
/// widen to 32-bit lanes once per 4 slots and shift by 2 bits per slot (vpermilps reads only the low 2 bits). M = 8
/// puts the group's 8 x values in each 256-bit half and uses vpermps (low 3 bits of the 4 it reads); Vector128
/// shuffles both 4-value halves and selects by bit 2. AVX-512 runs two tiles (32 outputs) at a time with eight
/// accumulators (4 slots × 2 tiles); AVX2 runs a tile as two registers of 8 rows in one pass, sharing each slot's
/// broadcast and column load (8 accumulators; two passes of 8 rows, each loading the group again, were 1.5× slower on
/// the 300×784 2:4 layer), and Vector128 as four registers of 4, one accumulator per slot mod 4. No gather, no decoded
/// column table per row. Other M run a scalar loop over the same layout.
/// </para>
/// <para>
/// Ragged groups. The columns are runs of <see cref="Run"/> (a layer's group axis: a dense layer's inputs, a
/// convolution's input channels at one kernel position, so an im2col row holds kh·kw runs); groups start at each run's
/// start, ⌈Run/M⌉ per run. When M does not divide the run, its last group of r = Run mod M columns is stored as the M
/// columns that end the run: the window starts M − r columns early, those positions (the previous group's columns)
/// hold zeros, and the kept positions of the r columns are stored shifted by M − r. The kernels above then read x as
/// for any group — the window never leaves the run, so nothing past a row is read and x is never copied — and stay
/// unchanged. (An earlier version padded each run of x with zeros into a per-thread buffer: 1.5× the time of a
/// 100×304 1:8 multiply at batch 1 for 100×300, against none here.) A run must hold at least M columns.
/// </para>
/// <para>
/// Batch 1 runs on the calling thread; larger batches split their rows over the pool. Each output is summed in an
/// order fixed by the matrix alone, so results do not depend on the thread count or batch size. Safe to call from
/// several threads at once; allocates nothing once warm.
/// </para>
/// </remarks>
internal sealed unsafe partial class NMMatrix : RowKernelMatrix
{
    /// <summary>Rows per tile: one 512-bit register of outputs.</summary>
    public const int TileRows = 16;

    private NMMatrix(int rows, int cols, int run, int n, int m, VectorIsa isa, AlignedArray<float> values, AlignedArray<byte> indices)
        : base(rows, cols)
    {
        N = n;
        M = m;
        Run = run;
        IndexBits = BitsPerIndex(m);
        KeptPerRow = GroupsPerRow(cols, run, m) * n;
        Slots = (KeptPerRow + 3) / 4 * 4;
        Tiles = (rows + TileRows - 1) / TileRows;
        Values = values;
        Indices = indices;
        _slotColumns = new int[Slots];
        for (int s = 0; s < KeptPerRow; s++)
            _slotColumns[s] = GroupStart(s / n, run, m);
        KernelIsa = m is 4 or 8 ? isa : VectorIsa.Scalar;
    }

    /// <summary>The tier whose kernel serves this matrix: the one asked for when M is 4 or 8, else <see cref="VectorIsa.Scalar"/>.</summary>
    public override VectorIsa KernelIsa { get; }

    /// <summary>Values kept per group.</summary>
    public int N { get; }

    /// <summary>Group size (consecutive columns).</summary>
    public int M { get; }

    /// <summary>Bits per stored index: 2 for M ≤ 4, 4 for M ≤ 16, else 8.</summary>
    public int IndexBits { get; }

    /// <summary>The run length along a row: groups start at each run's start (see remarks); <see cref="RowKernelMatrix.Cols"/> for one run.</summary>
    public int Run { get; }

    /// <summary>Kept values per row: N per group, ⌈Run / M⌉ groups per run.</summary>
    public int KeptPerRow { get; }

    /// <summary>Slots per row in storage: <see cref="KeptPerRow"/> rounded up to a multiple of 4.</summary>
    public int Slots { get; }

    /// <summary>Tiles of <see cref="TileRows"/> rows.</summary>
    public int Tiles { get; }

    /// <summary>The kept values in tile-slot-row order (see remarks), zero in padding.</summary>
    public AlignedArray<float> Values { get; }

    /// <summary>The kept values' positions inside their groups, packed (see remarks).</summary>
    public AlignedArray<byte> Indices { get; }

    /// <summary>Bytes of <see cref="Values"/> and <see cref="Indices"/>: what the matrix occupies.</summary>
    public override long StorageBytes => (long)Values.Length * sizeof(float) + Indices.Length;

    protected override long RowMultiplyAdds => (long)Rows * KeptPerRow;

    /// <summary>Column where each slot's group starts (shared by all rows).</summary>
    private readonly int[] _slotColumns;

    /// <summary>Slots whose indices share one byte.</summary>
    private int SlotsPerByte => 8 / IndexBits;

    /// <summary>Index bytes per tile.</summary>
    private int IndexTileBytes => Slots / SlotsPerByte * TileRows;

    /// <summary>Groups per row: ⌈run / m⌉ per run of <paramref name="run"/> columns.</summary>
    private static int GroupsPerRow(int cols, int run, int m) => run == 0 ? 0 : checked(cols / run * ((run + m - 1) / m));

    /// <summary>The first column the kernels read for group <paramref name="g"/> of a row: a ragged last group's window ends at its run's end.</summary>
    private static int GroupStart(int g, int run, int m)
    {
        int perRun = (run + m - 1) / m, k = g / perRun;
        return k * run + Math.Min(g % perRun * m, run - m);
    }

    /// <summary>The bits one index inside a group of <paramref name="m"/> takes in storage: 2, 4 or 8.</summary>
    public static int BitsPerIndex(int m) => m <= 4 ? 2 : m <= 16 ? 4 : 8;

    /// <summary>
    /// Compresses the row-major matrix <paramref name="w"/> [<paramref name="rows"/>, <paramref name="cols"/>], whose
    /// rows are runs of <paramref name="run"/> columns (0: one run of <paramref name="cols"/>) cut into groups of
    /// <paramref name="m"/> from each run's start, the last one ragged when m does not divide the run; every group holds
    /// at most <paramref name="n"/> non-zeros.
    /// </summary>
    /// <exception cref="ArgumentException">run does not divide cols or is shorter than m, w has the wrong length, or a
    /// group has more than n non-zeros (the message names the row and columns).</exception>
    public static NMMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols, int n, int m, int run = 0) => FromDense(w, rows, cols, n, m, VectorIsas.Best, run);

    /// <summary>As <see cref="FromDense(ReadOnlySpan{float}, int, int, int, int, int)"/>, with the kernel of tier <paramref name="isa"/> (only an available tier multiplies).</summary>
    public static NMMatrix FromDense(ReadOnlySpan<float> w, int rows, int cols, int n, int m, VectorIsa isa, int run = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (m < 2 || m > 256)
            throw new ArgumentOutOfRangeException(nameof(m), m, "The group size M must be between 2 and 256.");
        if (n < 1 || n > m)
            throw new ArgumentOutOfRangeException(nameof(n), n, $"N must satisfy 1 <= N <= M = {m}.");
        if (run == 0) run = cols;
        if (run < 0 || (cols > 0 && cols % run != 0))
            throw new ArgumentException($"The run length {run} does not divide the column count {cols}.", nameof(run));
        if (cols > 0 && run < m)
            throw new ArgumentException($"The run length {run} is shorter than the group size M = {m}; every group would be ragged.", nameof(run));
        if (w.Length != (long)rows * cols)
            throw new ArgumentException($"Length {w.Length} does not match a {rows}x{cols} matrix.", nameof(w));

        int groups = GroupsPerRow(cols, run, m), perRun = (run + m - 1) / m, bits = BitsPerIndex(m), perByte = 8 / bits;
        int slots = (groups * n + 3) / 4 * 4, tiles = (rows + TileRows - 1) / TileRows;
        var valueArray = new AlignedArray<float>(checked(tiles * slots * TileRows));
        var indexArray = new AlignedArray<byte>(checked(tiles * (slots / perByte) * TileRows));
        Span<float> values = valueArray.Span;
        Span<byte> indices = indexArray.Span;
        Span<float> group = stackalloc float[m];
        for (int r = 0; r < rows; r++)
        {
            int valueBase = r / TileRows * slots * TileRows + r % TileRows;
            int indexBase = r / TileRows * (slots / perByte) * TileRows + r % TileRows;
            for (int g = 0, s = 0; g < groups; g++)
            {
                // The window the kernels read; a ragged last group's starts early, its leading positions zeroed.
                int start = GroupStart(g, run, m), first = g / perRun * run + g % perRun * m, size = Math.Min(m, run - first % run);
                w.Slice(r * cols + start, m).CopyTo(group);
                group[..(first - start)].Clear();
                int nonZeros = m - group.Count(0f);
                if (nonZeros > n)
                {
                    throw new ArgumentException(
                        $"Row {r}, group {g} (columns {first}..{first + size - 1}) has {nonZeros} non-zeros; " +
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

                    values[valueBase + s * TileRows] = group[t];
                    indices[indexBase + s / perByte * TileRows] |= (byte)(t << (s % perByte * bits));
                    s++;
                }
            }
        }

        return new NMMatrix(rows, cols, run, n, m, isa, valueArray, indexArray);
    }

    /// <summary>The dense row-major matrix [Rows, Cols].</summary>
    public float[] ToDense()
    {
        var w = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++)
        {
            for (int s = 0; s < KeptPerRow; s++)
            {
                // A zero may pad a ragged group at a column of the previous group: never written.
                float value = Values[ValueOffset(r, s)];
                if (value != 0f)
                    w[(long)r * Cols + _slotColumns[s] + IndexOf(r, s)] = value;
            }
        }

        return w;
    }

    /// <summary>Where value (row <paramref name="r"/>, slot <paramref name="s"/>) lies in <see cref="Values"/>.</summary>
    private long ValueOffset(int r, int s) => ((long)r / TileRows * Slots + s) * TileRows + r % TileRows;

    /// <summary>The position inside its group of the value in row <paramref name="r"/>, slot <paramref name="s"/>.</summary>
    private int IndexOf(int r, int s)
    {
        int perByte = SlotsPerByte;
        byte packed = Indices[((long)r / TileRows * (Slots / perByte) + s / perByte) * TileRows + r % TileRows];
        return (packed >> (s % perByte * IndexBits)) & ((1 << IndexBits) - 1);
    }

}
