using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// Scores one row at a time on the model's single-example path: what ML.NET's <c>PredictionEngine</c> and
/// transformer chains' row mappers call. A row scores its example once per input position, whichever of
/// <c>Score</c> and <c>PredictedLabel</c> is read first.
/// </summary>
internal sealed class ScoringRowMapper : IRowToRowMapper
{
    private readonly NeuralNetworkMulticlassModel _model;

    public ScoringRowMapper(NeuralNetworkMulticlassModel model, DataViewSchema inputSchema, DataViewSchema outputSchema)
    {
        _model = model;
        InputSchema = inputSchema;
        OutputSchema = outputSchema;
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var columns = dependingColumns.ToArray();
        var inputs = columns.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]);
        return columns.Any(c => c.Index >= InputSchema.Count) ? inputs.Append(InputSchema[_model.FeatureColumnName]).Distinct() : inputs;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new Row(this, input, activeColumns.Select(c => c.Index).ToHashSet());
    }

    private sealed class Row : DataViewRow
    {
        private readonly ScoringRowMapper _mapper;
        private readonly DataViewRow _input;
        private readonly HashSet<int> _active;
        private readonly float[] _features, _scores;
        private ValueGetter<VBuffer<float>>? _getFeatures;
        private VBuffer<float> _buffer;
        private long _scoredPosition = -1;
        private int _predicted;

        public Row(ScoringRowMapper mapper, DataViewRow input, HashSet<int> active)
        {
            _mapper = mapper;
            _input = input;
            _active = active;
            _features = new float[mapper._model.Network.InputSize];
            _scores = new float[mapper._model.ClassCount];
        }

        public override DataViewSchema Schema => _mapper.OutputSchema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        private void EnsureScored()
        {
            if (_scoredPosition == _input.Position) return;
            _getFeatures ??= _input.GetGetter<VBuffer<float>>(_mapper.InputSchema[_mapper._model.FeatureColumnName]);
            _getFeatures(ref _buffer);
            _buffer.CopyTo(_features);
            _predicted = _mapper._model.Predict(_features, _scores);
            _scoredPosition = _input.Position;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = _mapper.InputSchema.Count;
            if (column.Index < inputCount) return _input.GetGetter<TValue>(_mapper.InputSchema[column.Index]);
            if (column.Index == inputCount && typeof(TValue) == typeof(VBuffer<float>))
            {
                ValueGetter<VBuffer<float>> score = (ref VBuffer<float> value) =>
                {
                    EnsureScored();
                    var editor = VBufferEditor.Create(ref value, _scores.Length);
                    _scores.CopyTo(editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)score;
            }
            if (column.Index == inputCount + 1 && typeof(TValue) == typeof(uint))
            {
                ValueGetter<uint> predicted = (ref uint value) =>
                {
                    EnsureScored();
                    value = (uint)(_predicted + 1);
                };
                return (ValueGetter<TValue>)(Delegate)predicted;
            }
            throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
        }
    }
}
