using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.Data;

/// <summary>
/// An in-memory <see cref="Dataset"/> seen as an ML.NET <see cref="IDataView"/>: a <c>Features</c> column (known-size
/// vector of <see cref="float"/> whose dimensions are the feature shape) and a <c>Label</c> key column whose key
/// values are the class names. Used for the data sets the package ships a loader for (Fashion-MNIST).
/// </summary>
internal sealed class DatasetDataView : IDataView
{
    public const string FeaturesColumn = "Features";
    public const string LabelColumn = "Label";
    private readonly Dataset _data;

    public DatasetDataView(Dataset data)
    {
        _data = data;
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(FeaturesColumn, new VectorDataViewType(NumberDataViewType.Single, data.FeatureShapeArray));
        var labels = new DataViewSchema.Annotations.Builder();
        data.ClassLabels?.AddTo(labels, AnnotationNames.KeyValues);
        builder.AddColumn(LabelColumn, new KeyDataViewType(typeof(uint), data.ClassCount), labels.ToAnnotations());
        Schema = builder.ToSchema();
    }

    public bool CanShuffle => true;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _data.Count;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new Cursor(this, rand is null ? null : Permutation(_data.Count, rand));

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private static int[] Permutation(int count, Random random)
    {
        var order = Enumerable.Range(0, count).ToArray();
        random.Shuffle(order);
        return order;
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly DatasetDataView _view;
        private readonly int[]? _order;
        private long _position = -1;

        public Cursor(DatasetDataView view, int[]? order)
        {
            _view = view;
            _order = order;
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _position;
        public override long Batch => 0;

        private int Row => _order is null ? (int)_position : _order[_position];

        public override bool MoveNext()
        {
            if (_position + 1 >= _view._data.Count)
            {
                _position = _view._data.Count;
                return false;
            }
            _position++;
            return true;
        }

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<DataViewRowId> GetIdGetter() =>
            (ref DataViewRowId id) => id = new DataViewRowId((ulong)Row, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            Dataset data = _view._data;
            if (column.Index == 0 && typeof(TValue) == typeof(VBuffer<float>))
            {
                ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, data.FeatureLength);
                    data.GetFeatures(Row).CopyTo(editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)features;
            }
            if (column.Index == 1 && typeof(TValue) == typeof(uint))
            {
                ValueGetter<uint> label = (ref uint value) => value = (uint)data.GetLabel(Row) + 1;
                return (ValueGetter<TValue>)(Delegate)label;
            }
            throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
        }
    }
}
