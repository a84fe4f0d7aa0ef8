using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// A trained binary-classification neural network (one output logit), as an ML.NET transformer:
/// <see cref="NeuralNetworkModel.Transform"/> adds the columns ML.NET's binary trainers add, <c>Score</c> (the logit, a
/// <see cref="float"/>), <c>Probability</c> (its sigmoid) and <c>PredictedLabel</c> (a <see cref="bool"/>: the logit is
/// positive), so ML.NET's <c>BinaryClassification.Evaluate</c>, <c>CreatePredictionEngine</c> and cross-validation work on it.
/// </summary>
/// <remarks>
/// Scoring is the same as the multiclass model's (<see cref="NeuralNetworkModel"/>): blocks on the batched path,
/// single rows on the single-example path, sparse prediction formats. A NaN or infinite feature gives that example a
/// NaN score and probability and a false predicted label (a Boolean has no missing value: test the score with
/// <see cref="float.IsNaN(float)"/>), on both paths. <c>mlContext.Model.Save</c> does not support this model yet: it throws
/// <see cref="NotSupportedException"/>.
/// </remarks>
public sealed class NeuralNetworkBinaryModel : NeuralNetworkModel
{
    internal NeuralNetworkBinaryModel(SequentialNetwork network, string featureColumnName, IReadOnlyList<TrainingProgress> history,
        TrainingState? training = null, System.Text.Json.Nodes.JsonObject? options = null, IReadOnlyDictionary<string, WeightFormat>? requestedFormats = null,
        bool compactPrediction = false)
        : base(network, SigmoidHead.Instance, featureColumnName, history, training, options, requestedFormats, compactPrediction)
    {
    }

    /// <summary>The same model with every dense and convolution layer's prediction weight in <paramref name="format"/>.</summary>
    /// <exception cref="ArgumentException">A layer cannot take the format; the message names the layer.</exception>
    public override NeuralNetworkBinaryModel WithWeightFormats(WeightFormat format) => (NeuralNetworkBinaryModel)base.WithWeightFormats(format);

    /// <summary>The same model with the named layers' prediction weights in the given formats (others stay <see cref="WeightFormat.Auto"/>).</summary>
    /// <param name="formats">Formats by layer name; the key "*" applies to every layer not named.</param>
    /// <exception cref="ArgumentException">A name is not a dense or convolution layer of the model, or a layer cannot take its format.</exception>
    public override NeuralNetworkBinaryModel WithWeightFormats(IReadOnlyDictionary<string, WeightFormat> formats) =>
        (NeuralNetworkBinaryModel)base.WithWeightFormats(formats);

    /// <summary>The same model, predicting through its compact form or not (see <see cref="NeuralNetworkModel.CompactPrediction"/>).</summary>
    /// <exception cref="ArgumentException">The network has no pruned channel that can be removed, or a layer compaction cannot follow; the message names the layer.</exception>
    public override NeuralNetworkBinaryModel WithCompactPrediction(bool compact = true) => (NeuralNetworkBinaryModel)base.WithCompactPrediction(compact);

    /// <summary>The same model predicting at another of its sparsity levels (see <see cref="NeuralNetworkModel.AtSparsityLevel"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The model has no such level; the message lists the levels it has.</exception>
    public override NeuralNetworkBinaryModel AtSparsityLevel(double level) => (NeuralNetworkBinaryModel)base.AtSparsityLevel(level);

    private protected override NeuralNetworkModel With(SequentialNetwork network, TrainingState? training, IReadOnlyDictionary<string, WeightFormat> formats,
        bool compactPrediction) =>
        new NeuralNetworkBinaryModel(network, FeatureColumnName, TrainingHistory, training, Options, formats, compactPrediction);

    private protected override void Save(ModelSaveContext ctx) =>
        throw new NotSupportedException(
            "Saving a binary-classification neural network with mlContext.Model.Save is not supported yet: its portable (ONNX) form is " +
            "not written. Save and load multiclass networks (NeuralNetworkMulticlassModel), or keep the trained model in memory.");
}
