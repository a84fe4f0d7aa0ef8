using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// A few columns of values held in arrays, each with any ML.NET type and annotations (ML.NET's own
/// <c>LoadFromEnumerable</c> cannot give a column annotations): lookup tables and the empty views estimators are
/// fitted on when only the schema matters.
/// </summary>
internal sealed class ColumnsDataView : IDataView
{
    private readonly Array[] _values;

    public ColumnsDataView(params (string Name, DataViewType Type, DataViewSchema.Annotations? Annotations, Array Values)[] columns)
    {
        var builder = new DataViewSchema.Builder();
        foreach (var (name, type, annotations, _) in columns) builder.AddColumn(name, type, annotations);
        Schema = builder.ToSchema();
        _values = columns.Select(c => c.Values).ToArray();
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => false;

    public long? GetRowCount() => _values.Length == 0 ? 0 : _values[0].Length;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [new Cursor(this)];

    private sealed class Cursor(ColumnsDataView view) : DataViewRowCursor
    {
        private long _position = -1;

        public override DataViewSchema Schema => view.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);
        public override bool IsColumnActive(DataViewSchema.Column column) => true;
        public override bool MoveNext() => ++_position < view.GetRowCount();

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            var values = (TValue[])view._values[column.Index];
            return (ref TValue value) => value = values[_position];
        }
    }
}
