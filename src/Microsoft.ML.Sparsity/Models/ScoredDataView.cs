using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// What <see cref="NeuralNetworkMulticlassModel.Transform"/> returns: the input's rows with <c>Score</c> and
/// <c>PredictedLabel</c>. A cursor that needs them reads the features ahead with a second input cursor, a block of
/// rows at a time, and scores each block through the engine's batched path; the input's other columns come from the
/// first cursor, row by row.
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    /// <summary>Rows scored at once: enough to keep every engine thread busy with whole chunks.</summary>
    private const int BlockRows = 1024;
    private readonly NeuralNetworkMulticlassModel _model;
    private readonly IDataView _input;

    public ScoredDataView(NeuralNetworkMulticlassModel model, IDataView input, DataViewSchema schema)
    {
        _model = model;
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
        bool scores = needed.Any(c => c.Index >= inputCount);
        var passThrough = needed.Where(c => c.Index < inputCount).Select(c => _input.Schema[c.Index]);
        DataViewRowCursor? lead = null;
        if (scores)
            lead = _input.GetRowCursor([_model.CheckInput(_input.Schema)]);
        return new Cursor(this, _input.GetRowCursor(passThrough), lead, needed.Select(c => c.Index).ToHashSet());
    }

    /// <summary>One cursor: the engine already scores each block on all its threads.</summary>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ScoredDataView _view;
        private readonly DataViewRowCursor _rows;
        private readonly DataViewRowCursor? _lead;
        private readonly HashSet<int> _active;
        private readonly ValueGetter<VBuffer<float>>? _features;
        private readonly float[] _inputs = [], _scores = [];
        private readonly int[] _predicted = [];
        private readonly int _classes, _inputSize;
        private VBuffer<float> _buffer;
        private int _blockRow = -1, _blockCount;

        public Cursor(ScoredDataView view, DataViewRowCursor rows, DataViewRowCursor? lead, HashSet<int> active)
        {
            _view = view;
            _rows = rows;
            _lead = lead;
            _active = active;
            _classes = view._model.ClassCount;
            _inputSize = view._model.Network.InputSize;
            if (lead is not null)
            {
                _features = lead.GetGetter<VBuffer<float>>(lead.Schema[view._model.FeatureColumnName]);
                _inputs = new float[BlockRows * _inputSize];
                _scores = new float[BlockRows * _classes];
                _predicted = new int[BlockRows];
            }
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _rows.Position;
        public override long Batch => _rows.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _rows.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override bool MoveNext()
        {
            if (!_rows.MoveNext()) return false;
            if (_lead is not null && ++_blockRow >= _blockCount) ScoreNextBlock();
            return true;
        }

        private void ScoreNextBlock()
        {
            int count = 0;
            while (count < BlockRows && _lead!.MoveNext())
            {
                _features!(ref _buffer);
                _buffer.CopyTo(_inputs.AsSpan(count * _inputSize, _inputSize));
                count++;
            }
            if (count == 0)
                throw new InvalidOperationException("The input data view gave fewer rows to the look-ahead cursor than to the row cursor; it must give the same rows in the same order to every unshuffled cursor.");
            _view._model.Score(_inputs, count, _scores, _predicted);
            _blockCount = count;
            _blockRow = 0;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = _view._input.Schema.Count;
            if (column.Index < inputCount) return _rows.GetGetter<TValue>(_view._input.Schema[column.Index]);
            if (!IsColumnActive(column)) throw new InvalidOperationException($"Column '{column.Name}' was not asked for when the cursor was made.");
            if (column.Index == inputCount && typeof(TValue) == typeof(VBuffer<float>))
            {
                ValueGetter<VBuffer<float>> score = (ref VBuffer<float> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, _classes);
                    _scores.AsSpan(_blockRow * _classes, _classes).CopyTo(editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)score;
            }
            if (column.Index == inputCount + 1 && typeof(TValue) == typeof(uint))
            {
                ValueGetter<uint> predicted = (ref uint value) => value = (uint)(_predicted[_blockRow] + 1);
                return (ValueGetter<TValue>)(Delegate)predicted;
            }
            throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _rows.Dispose();
                _lead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
