using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// What <see cref="NeuralNetworkMulticlassModel.Transform"/> returns: the input's rows with <c>Score</c> and
/// <c>PredictedLabel</c>, each block of rows scored through the engine's batched path (see <see cref="BlockMappedDataView"/>).
/// </summary>
internal sealed class ScoredDataView(NeuralNetworkMulticlassModel model, IDataView input, DataViewSchema schema)
    : BlockMappedDataView(new ScoreMapping(model), input, schema);

/// <summary>
/// The network's scoring as a block mapping: a block goes through the batched path
/// (<see cref="NeuralNetworkMulticlassModel.Score"/>), a single row through the single-example path
/// (<see cref="NeuralNetworkMulticlassModel.Predict"/>). Adds <c>Score</c> (probabilities) and <c>PredictedLabel</c> (a key).
/// </summary>
internal sealed class ScoreMapping(NeuralNetworkMulticlassModel model) : IBlockMapping
{
    /// <summary>Rows scored at once: enough to keep every engine thread busy with whole chunks.</summary>
    public int BlockRows => 1024;

    public int InputLength => model.Network.InputSize;

    public DataViewSchema.Column InputColumn(DataViewSchema schema) => model.CheckInput(schema);

    public MappedBlock CreateBlock(int rows) => new Block(model, rows);

    private sealed class Block(NeuralNetworkMulticlassModel model, int rows) : MappedBlock
    {
        private readonly int _classes = model.ClassCount;
        private readonly float[] _scores = new float[rows * model.ClassCount];
        private readonly int[] _predicted = new int[rows];

        public override void Map(float[] inputs, int count) => model.Score(inputs, count, _scores, _predicted);

        public override void MapRow(float[] input) => _predicted[0] = model.Predict(input, _scores);

        public override ValueGetter<TValue>? GetGetter<TValue>(int output)
        {
            if (output == 0 && typeof(TValue) == typeof(VBuffer<float>))
            {
                ValueGetter<VBuffer<float>> score = (ref VBuffer<float> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, _classes);
                    _scores.AsSpan(Row * _classes, _classes).CopyTo(editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)score;
            }
            if (output == 1 && typeof(TValue) == typeof(uint))
            {
                ValueGetter<uint> predicted = (ref uint value) => value = (uint)(_predicted[Row] + 1);
                return (ValueGetter<TValue>)(Delegate)predicted;
            }
            return null;
        }
    }
}
