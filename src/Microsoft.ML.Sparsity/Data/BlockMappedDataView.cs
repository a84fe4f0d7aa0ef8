using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// A computation that reads one known-size vector of <see cref="float"/> per row and gives the columns a transformer
/// adds (the last columns of its output schema), for a block of rows at once: the network's scores, the
/// frequency-domain transform's coefficients.
/// </summary>
internal interface IBlockMapping
{
    /// <summary>Rows computed at once by a cursor of <see cref="BlockMappedDataView"/>.</summary>
    int BlockRows { get; }

    /// <summary>Values per row of the input column.</summary>
    int InputLength { get; }

    /// <summary>The input column the computation reads, checked against what the computation expects.</summary>
    DataViewSchema.Column InputColumn(DataViewSchema schema);

    /// <summary>Buffers for up to <paramref name="rows"/> rows (one per cursor or row: blocks are not shared between threads).</summary>
    MappedBlock CreateBlock(int rows);
}

/// <summary>The outputs of one block of rows, and getters that read them at <see cref="Row"/>.</summary>
internal abstract class MappedBlock
{
    /// <summary>The row of the block that getters read.</summary>
    public int Row;

    /// <summary>Computes the outputs of <paramref name="count"/> rows whose inputs are <paramref name="inputs"/>, row after row.</summary>
    public abstract void Map(float[] inputs, int count);

    /// <summary>Computes one row's outputs into row 0 (what ML.NET's prediction engine asks for).</summary>
    public abstract void MapRow(float[] input);

    /// <summary>A getter of added column <paramref name="output"/> (0 for the first added column); null when it is not of type <typeparamref name="TValue"/>.</summary>
    public abstract ValueGetter<TValue>? GetGetter<TValue>(int output);
}

/// <summary>
/// The data view a block-mapped transformer's <c>Transform</c> returns: the input's rows with the added columns. A
/// cursor that needs them reads the input column ahead with a second input cursor, a block of rows at a time, and
/// computes each block at once (on all the engine's threads); the input's other columns come from the first cursor,
/// row by row.
/// </summary>
internal sealed class BlockMappedDataView : IDataView
{
    private readonly IBlockMapping _mapping;
    private readonly IDataView _input;

    public BlockMappedDataView(IBlockMapping mapping, IDataView input, DataViewSchema schema)
    {
        _mapping = mapping;
        _input = input;
        Schema = schema;
    }

    public DataViewSchema Schema { get; }

    /// <summary>False: the look-ahead cursor and the row cursor must see the rows in the same order.</summary>
    public bool CanShuffle => false;

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        int inputCount = _input.Schema.Count;
        var needed = columnsNeeded.ToArray();
        bool mapped = needed.Any(c => c.Index >= inputCount);
        var passThrough = needed.Where(c => c.Index < inputCount).Select(c => _input.Schema[c.Index]);
        DataViewRowCursor? lead = null;
        if (mapped)
            lead = _input.GetRowCursor([_mapping.InputColumn(_input.Schema)]);
        return new Cursor(this, _input.GetRowCursor(passThrough), lead, needed.Select(c => c.Index).ToHashSet());
    }

    /// <summary>One cursor: each block is already computed on all the engine's threads.</summary>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly BlockMappedDataView _view;
        private readonly DataViewRowCursor _rows;
        private readonly DataViewRowCursor? _lead;
        private readonly HashSet<int> _active;
        private readonly ValueGetter<VBuffer<float>>? _read;
        private readonly MappedBlock? _block;
        private readonly float[] _inputs = [];
        private readonly int _inputLength, _blockRows;
        private VBuffer<float> _buffer;
        private int _blockCount;
        private bool _disposed;

        public Cursor(BlockMappedDataView view, DataViewRowCursor rows, DataViewRowCursor? lead, HashSet<int> active)
        {
            _view = view;
            _rows = rows;
            _lead = lead;
            _active = active;
            if (lead is not null)
            {
                var mapping = view._mapping;
                _read = lead.GetGetter<VBuffer<float>>(mapping.InputColumn(lead.Schema));
                (_inputLength, _blockRows) = (mapping.InputLength, mapping.BlockRows);
                _inputs = new float[_blockRows * _inputLength];
                _block = mapping.CreateBlock(_blockRows);
                _block.Row = -1;
            }
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _rows.Position;
        public override long Batch => _rows.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _rows.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override bool MoveNext()
        {
            ThrowIfDisposed();
            if (!_rows.MoveNext()) return false;
            if (_block is not null && ++_block.Row >= _blockCount) MapNextBlock();
            return true;
        }

        private void MapNextBlock()
        {
            int count = 0;
            while (count < _blockRows && _lead!.MoveNext())
            {
                _read!(ref _buffer);
                _buffer.CopyTo(_inputs.AsSpan(count * _inputLength, _inputLength));
                count++;
            }
            if (count == 0)
                throw new InvalidOperationException("The input data view gave fewer rows to the look-ahead cursor than to the row cursor; it must give the same rows in the same order to every unshuffled cursor.");
            _block!.Map(_inputs, count);
            _blockCount = count;
            _block.Row = 0;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            ThrowIfDisposed();
            int inputCount = _view._input.Schema.Count;
            if (column.Index < inputCount) return _rows.GetGetter<TValue>(_view._input.Schema[column.Index]);
            if (!IsColumnActive(column)) throw new InvalidOperationException($"Column '{column.Name}' was not asked for when the cursor was made.");
            var getter = _block!.GetGetter<TValue>(column.Index - inputCount)
                ?? throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
            return (ref TValue value) =>
            {
                ThrowIfDisposed();
                getter(ref value);
            };
        }

        private void ThrowIfDisposed()
        {
            if (_disposed)
                throw new ObjectDisposedException(nameof(DataViewRowCursor),
                    "This cursor over a transformer's output was disposed: it cannot move or give values any more. Ask the data view for a new cursor.");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && !_disposed)
            {
                _disposed = true;
                _rows.Dispose();
                _lead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// Maps one row at a time (what ML.NET's <c>PredictionEngine</c> and transformer chains' row mappers call) through
/// <see cref="MappedBlock.MapRow"/>. A row computes its outputs once per input position, whichever added column is
/// read first.
/// </summary>
/// <remarks>
/// A row holds one example's buffers and serves one thread at a time; ML.NET's <c>PredictionEngine</c>, which holds
/// one, is documented as not thread-safe. Used from two threads at once, the engine's input would change under the
/// computation and answers would go to the wrong caller; so a getter of an added column claims the row with one
/// interlocked exchange and checks, when done, that the input row did not move meanwhile, and either finding throws
/// <see cref="InvalidOperationException"/>. This sees every call that overlaps another's computation (most of a
/// prediction's time), not another call's input arriving in ML.NET's own code between this call's input and its computation.
/// </remarks>
internal sealed class BlockRowMapper : IRowToRowMapper
{
    private readonly IBlockMapping _mapping;

    public BlockRowMapper(IBlockMapping mapping, DataViewSchema inputSchema, DataViewSchema outputSchema)
    {
        _mapping = mapping;
        InputSchema = inputSchema;
        OutputSchema = outputSchema;
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var columns = dependingColumns.ToArray();
        var inputs = columns.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]);
        return columns.Any(c => c.Index >= InputSchema.Count) ? inputs.Append(_mapping.InputColumn(InputSchema)).Distinct() : inputs;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new Row(this, input, activeColumns.Select(c => c.Index).ToHashSet());
    }

    private sealed class Row : DataViewRow
    {
        private readonly BlockRowMapper _mapper;
        private readonly DataViewRow _input;
        private readonly HashSet<int> _active;
        private readonly float[] _features;
        private readonly MappedBlock _block;
        private ValueGetter<VBuffer<float>>? _read;
        private VBuffer<float> _buffer;
        private long _mappedPosition = -1;
        private int _busy; // 1 while a getter of an added column runs
        private bool _disposed;

        public Row(BlockRowMapper mapper, DataViewRow input, HashSet<int> active)
        {
            _mapper = mapper;
            _input = input;
            _active = active;
            _features = new float[mapper._mapping.InputLength];
            _block = mapper._mapping.CreateBlock(1);
        }

        public override DataViewSchema Schema => _mapper.OutputSchema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        private void EnsureMapped(long position)
        {
            if (_mappedPosition == position) return;
            _read ??= _input.GetGetter<VBuffer<float>>(_mapper._mapping.InputColumn(_mapper.InputSchema));
            _read(ref _buffer);
            _buffer.CopyTo(_features);
            _block.MapRow(_features);
            _mappedPosition = position;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            ThrowIfDisposed();
            int inputCount = _mapper.InputSchema.Count;
            if (column.Index < inputCount) return _input.GetGetter<TValue>(_mapper.InputSchema[column.Index]);
            var getter = _block.GetGetter<TValue>(column.Index - inputCount)
                ?? throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
            return (ref TValue value) =>
            {
                ThrowIfDisposed();
                if (Interlocked.Exchange(ref _busy, 1) != 0)
                    throw UsedConcurrently(); // the row stays claimed by the thread inside
                try
                {
                    long position = _input.Position;
                    EnsureMapped(position);
                    getter(ref value);
                    if (_input.Position != position)
                        throw UsedConcurrently();
                }
                finally
                {
                    Volatile.Write(ref _busy, 0);
                }
            };
        }

        private static InvalidOperationException UsedConcurrently() => new(
            "A PredictionEngine is not thread-safe, and this one (or another user of this row) was used from two threads at once: " +
            "its input changed while a prediction was computed from it. Create one PredictionEngine per thread, or share them " +
            "through a PredictionEnginePool (Microsoft.Extensions.ML).");

        private void ThrowIfDisposed()
        {
            if (_disposed)
                throw new ObjectDisposedException(nameof(DataViewRow),
                    "This row of a transformer's row mapper (IRowToRowMapper.GetRow) was disposed: it cannot give values any more. Make a new row.");
        }

        /// <summary>Disposes the input row too, as ML.NET's <c>IRowToRowMapper.GetRow</c> contract asks.</summary>
        protected override void Dispose(bool disposing)
        {
            if (disposing && !_disposed)
            {
                _disposed = true;
                _input.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
