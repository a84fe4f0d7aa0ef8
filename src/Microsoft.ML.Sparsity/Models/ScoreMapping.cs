using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// The network's scoring as a block mapping, for <see cref="BlockMappedDataView"/> (what a network model's
/// <see cref="NeuralNetworkModel.Transform"/> returns) and <see cref="BlockRowMapper"/> (what ML.NET's
/// <c>PredictionEngine</c> uses): a block goes through the batched path
/// (<see cref="NeuralNetworkModel.Score"/>), a single row through the single-example path
/// (<see cref="NeuralNetworkModel.Predict"/>); the model's <see cref="OutputHead"/> turns the scores into its columns.
/// </summary>
internal sealed class ScoreMapping(NeuralNetworkModel model) : IBlockMapping
{
    /// <summary>Rows scored at once: enough to keep every engine thread busy with whole chunks.</summary>
    public int BlockRows => 1024;

    public int InputLength => model.Network.InputSize;

    public DataViewSchema.Column InputColumn(DataViewSchema schema) => model.CheckInput(schema);

    public MappedBlock CreateBlock(int rows) => new ScoreBlock(model, rows);
}

/// <summary>One block's scores (<see cref="OutputHead.Width"/> per row) and predicted labels.</summary>
internal sealed class ScoreBlock(NeuralNetworkModel model, int rows) : MappedBlock
{
    public readonly float[] Scores = new float[rows * model.Head.Width];
    public readonly int[] Predicted = new int[rows];

    public override void Map(float[] inputs, int count) => model.Score(inputs, count, Scores, Predicted);

    public override void MapRow(float[] input) => Predicted[0] = model.Predict(input, Scores);

    public override ValueGetter<TValue>? GetGetter<TValue>(int output) => model.Head.Getter<TValue>(output, this);
}
