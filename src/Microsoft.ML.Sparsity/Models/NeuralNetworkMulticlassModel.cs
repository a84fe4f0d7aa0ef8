using System.Numerics.Tensors;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// A trained multiclass neural network, as an ML.NET transformer: <see cref="NeuralNetworkModel.Transform"/> adds a <c>Score</c> column
/// (class probabilities, a known-size vector of <see cref="float"/>) and a <c>PredictedLabel</c> column (a key with the
/// training label's key values) to any <see cref="IDataView"/> that has the features column, so ML.NET's
/// <c>MulticlassClassification.Evaluate</c>, <c>MapKeyToValue</c>, <c>CreatePredictionEngine</c> and cross-validation
/// work on it as on ML.NET's own trainers' models.
/// </summary>
/// <remarks>
/// <para>
/// Each dense and convolution layer's weight is held for prediction in a format chosen from its sparsity
/// (<see cref="NeuralNetworkModel.WeightFormats"/>; <see cref="WithWeightFormats(WeightFormat)"/> forces one): sparse models predict faster
/// than dense ones.
/// </para>
/// <para>
/// <see cref="NeuralNetworkModel.Transform"/> scores rows in blocks through the engine's batched path on all its threads;
/// ML.NET's <c>PredictionEngine</c> goes through <see cref="NeuralNetworkModel.GetRowToRowMapper"/>, one example at a time on the
/// single-example path (threads: see <see cref="NeuralNetworkModel"/>). A NaN or infinite feature gives that example
/// NaN scores and a missing predicted label (key value 0, which <c>MapKeyToValue</c> turns into the label type's
/// missing value), on both paths. <c>Transform</c> also checks a key-typed <c>Label</c> column of the input: it must not have more
/// values than the model has classes.
/// </para>
/// <para>
/// <c>mlContext.Model.Save</c> writes a portable form (the model's ONNX export, run by Microsoft.ML.OnnxTransformer)
/// that any ML.NET application loads with <c>mlContext.Model.Load</c>, and carries this model's own file along, from
/// which <c>mlContext.Sparsity().LoadModel</c> restores the fast transformer with its weight formats.
/// </para>
/// </remarks>
public sealed class NeuralNetworkMulticlassModel : NeuralNetworkModel
{
    internal NeuralNetworkMulticlassModel(SequentialNetwork network, int classCount, ClassLabels? classLabels, string featureColumnName,
        IReadOnlyList<TrainingProgress> history, TrainingState? training = null, System.Text.Json.Nodes.JsonObject? options = null,
        IReadOnlyDictionary<string, WeightFormat>? requestedFormats = null, string labelColumnName = "Label", bool compactPrediction = false)
        : base(network, new SoftmaxHead(classCount, classLabels), featureColumnName, history, training, options, requestedFormats, compactPrediction)
    {
        ClassCount = classCount;
        ClassLabels = classLabels;
        LabelColumnName = labelColumnName;
    }

    /// <summary>The label column the model was trained on; a key column of that name in data to score must not have more values than the model has classes.</summary>
    public string LabelColumnName { get; }

    /// <summary>The same model with every dense and convolution layer's prediction weight in <paramref name="format"/>.</summary>
    /// <exception cref="ArgumentException">A layer cannot take the format (e.g. <see cref="WeightFormat.NM"/> on a weight that is not N:M sparse); the message names the layer.</exception>
    public override NeuralNetworkMulticlassModel WithWeightFormats(WeightFormat format) => (NeuralNetworkMulticlassModel)base.WithWeightFormats(format);

    /// <summary>The same model with the named layers' prediction weights in the given formats (others stay <see cref="WeightFormat.Auto"/>).</summary>
    /// <param name="formats">Formats by layer name (see <see cref="NeuralNetworkModel.Layers"/>); the key "*" applies to every layer not named.</param>
    /// <exception cref="ArgumentException">A name is not a dense or convolution layer of the model, or a layer cannot take its format.</exception>
    public override NeuralNetworkMulticlassModel WithWeightFormats(IReadOnlyDictionary<string, WeightFormat> formats) =>
        (NeuralNetworkMulticlassModel)base.WithWeightFormats(formats);

    /// <summary>The same model, predicting through its compact form or not (see <see cref="NeuralNetworkModel.CompactPrediction"/>).</summary>
    /// <exception cref="ArgumentException">The network has no pruned channel that can be removed, or a layer compaction cannot follow; the message names the layer.</exception>
    public override NeuralNetworkMulticlassModel WithCompactPrediction(bool compact = true) => (NeuralNetworkMulticlassModel)base.WithCompactPrediction(compact);

    /// <summary>The same model predicting at another of its sparsity levels (see <see cref="NeuralNetworkModel.AtSparsityLevel"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The model has no such level; the message lists the levels it has.</exception>
    public override NeuralNetworkMulticlassModel AtSparsityLevel(double level) => (NeuralNetworkMulticlassModel)base.AtSparsityLevel(level);

    private protected override NeuralNetworkModel With(SequentialNetwork network, TrainingState? training, IReadOnlyDictionary<string, WeightFormat> formats,
        bool compactPrediction) =>
        new NeuralNetworkMulticlassModel(network, ClassCount, ClassLabels, FeatureColumnName, TrainingHistory, training, Options, formats, LabelColumnName, compactPrediction);

    /// <summary>The number of classes.</summary>
    public int ClassCount { get; }

    /// <summary>The training label's key values as text (what <c>PredictedLabel</c>'s keys stand for), if it had them.</summary>
    public IReadOnlyList<string>? ClassNames => ClassLabels?.Names;

    internal ClassLabels? ClassLabels { get; }

    /// <summary>Saves the portable form (ONNX, for ML.NET's OnnxTransformer) with this model's own file riding along.</summary>
    private protected override void Save(ModelSaveContext ctx) => Serialization.PortableNetwork.Save(this, ctx);

    /// <summary>The features column of <paramref name="schema"/>, checked against the model's input size, and a key-typed label column (<see cref="LabelColumnName"/>) against the classes.</summary>
    internal override DataViewSchema.Column CheckInput(DataViewSchema schema)
    {
        var features = base.CheckInput(schema);
        if (schema.GetColumnOrNull(LabelColumnName) is { Type: KeyDataViewType key } label && key.Count > (ulong)ClassCount)
            throw new ArgumentOutOfRangeException("inputSchema", label.Name,
                $"The label column '{label.Name}' has {key.Count} key values; the model was trained on {ClassCount} classes. " +
                "Map labels to keys with the key values the model was trained on (fit MapValueToKey on the training data).");
        return features;
    }

    /// <summary>The same model with other weights (e.g. pruned); the optimiser state no longer applies and is dropped.</summary>
    internal NeuralNetworkMulticlassModel WithNetwork(SequentialNetwork network) =>
        new(network, ClassCount, ClassLabels, FeatureColumnName, TrainingHistory, null, Options, RequestedFormats, LabelColumnName, CompactPrediction);

    /// <summary>
    /// Class probabilities from logits, computed as exp(z − max z) / Σ: without the shift, a confident model's logits
    /// above ~88 overflow exp to ∞ and the probabilities become NaN.
    /// </summary>
    internal static void Softmax(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        TensorPrimitives.Subtract(logits, TensorPrimitives.Max(logits), probabilities);
        TensorPrimitives.Exp(probabilities, probabilities);
        TensorPrimitives.Divide(probabilities, TensorPrimitives.Sum(probabilities), probabilities);
    }
}
