using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>Saving, loading and exporting models: <c>context.Model</c>, as ML.NET's <c>ModelOperationsCatalog</c>.</summary>
/// <remarks>
/// A model file is a zip holding a versioned JSON manifest (format and package version, architecture, trainer options,
/// class names, the fitted pipeline) and one entry per tensor: weights and normalisation statistics as little-endian
/// float32, masks bit-packed, and the optimiser state needed to continue training. Every entry's SHA-256 is in the
/// manifest; loading checks it all and raises <see cref="ModelFormatException"/> naming the entry at fault.
/// </remarks>
public sealed class ModelOperationsCatalog
{
    private readonly SparsityContext _context;

    internal ModelOperationsCatalog(SparsityContext context) => _context = context;

    /// <summary>Saves a model (or a fitted pipeline) to <paramref name="filePath"/> atomically: an existing file is replaced only once the new one is complete.</summary>
    public void Save(ITransformer model, string filePath)
    {
        ArgumentNullException.ThrowIfNull(model);
        AtomicFile.Write(filePath, stream => ModelFile.Save(model, stream));
    }

    /// <summary>Saves a model (or a fitted pipeline) to a writable stream.</summary>
    public void Save(ITransformer model, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stream);
        ModelFile.Save(model, stream);
    }

    /// <summary>Loads a model saved by <see cref="Save(ITransformer, string)"/>. A single model comes back as its own type (e.g. <see cref="NeuralNetworkMulticlassModel"/>), a pipeline as a <see cref="TransformerChain{TLastTransformer}"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ModelFormatException">The file is damaged, incomplete or of a newer format.</exception>
    public ITransformer Load(string filePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        if (!File.Exists(filePath)) throw new FileNotFoundException($"There is no model file at '{filePath}'.", filePath);
        using var stream = File.OpenRead(filePath);
        return Load(stream);
    }

    /// <summary>Loads a model from a readable, seekable stream.</summary>
    /// <exception cref="ModelFormatException">The content is damaged, incomplete or of a newer format.</exception>
    public ITransformer Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.CanSeek && stream.Length == 0) throw new ModelFormatException(null, "the file is empty.");
        return ModelFile.Load(stream, _context.Pool);
    }

    /// <summary>
    /// Exports a trained model to ONNX (opset 13) for ONNX Runtime, e.g. ML.NET's <c>ApplyOnnxModel</c>. The graph takes
    /// <c>features</c> (float32 [batch, feature count], the flat feature vector) and gives <c>probabilities</c>
    /// (float32 [batch, classes]) and <c>predicted_label</c> (int64 [batch]). Pruned weights are exported as zeros in
    /// dense initialisers (ONNX Runtime densifies sparse initialisers when it loads them anyway). The file is written atomically.
    /// </summary>
    /// <remarks>A frequency-domain transform in front of the network (<c>context.Transforms.ConvertToFrequencyDomain(...).Append(trainer)</c>) is
    /// exported too: <c>features</c> then holds the images, flattened channels-last, as the transform takes them.</remarks>
    /// <exception cref="NotSupportedException">The model has a layer or transform ONNX export does not support (named in the message); no file is written.</exception>
    public void ConvertToOnnx(ITransformer model, string filePath)
    {
        var (network, frequencyDomain) = OnnxModelOf(model);
        AtomicFile.Write(filePath, stream => Export.OnnxExporter.Export(network.Network, network.ClassNames, stream, ModelFile.PackageVersion, frequencyDomain));
    }

    /// <summary>Exports a trained model to ONNX, written to <paramref name="stream"/>; see <see cref="ConvertToOnnx(ITransformer, string)"/>.</summary>
    public void ConvertToOnnx(ITransformer model, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (network, frequencyDomain) = OnnxModelOf(model);
        Export.OnnxExporter.Export(network.Network, network.ClassNames, stream, ModelFile.PackageVersion, frequencyDomain);
    }

    /// <summary>The network, and the frequency-domain transform in front of it if there is one.</summary>
    private static (NeuralNetworkMulticlassModel Network, Transforms.FrequencyDomainTransformer? FrequencyDomain) OnnxModelOf(ITransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var transformers = model is ITransformerChain chain ? chain.Transformers : [model];
        return transformers switch
        {
            [NeuralNetworkMulticlassModel network] => (network, null),
            [Transforms.FrequencyDomainTransformer frequencyDomain, NeuralNetworkMulticlassModel network] => (network, frequencyDomain),
            _ => throw new NotSupportedException(
                "ONNX export takes one neural-network model, optionally behind a frequency-domain transform; this pipeline has " +
                $"{string.Join(", ", transformers.Select(t => t.GetType().Name))}."),
        };
    }

    internal void Save(ITransformer model, string filePath, Func<Stream, Stream> wrap) =>
        AtomicFile.Write(filePath, stream => ModelFile.Save(model, stream), wrap);

    /// <summary>
    /// Creates a typed single-example predictor, as ML.NET's <c>CreatePredictionEngine</c>: features are read from
    /// <typeparamref name="TSrc"/>'s "Features" member, probabilities and the predicted class written into
    /// <typeparamref name="TDst"/>'s "Score" and "PredictedLabel" members (names in <paramref name="options"/>).
    /// </summary>
    /// <param name="model">A trained model, or a pipeline that ends with one and has no other steps.</param>
    /// <param name="options">Member names and the handling of non-finite features; defaults when null.</param>
    /// <exception cref="ArgumentException">A member is missing or of the wrong type; the message names it.</exception>
    public PredictionEngine<TSrc, TDst> CreatePredictionEngine<TSrc, TDst>(ITransformer model, PredictionEngineOptions? options = null)
        where TSrc : class
        where TDst : class, new() =>
        new(PredictingModel(model), options ?? new PredictionEngineOptions());

    /// <summary>Creates a thread-safe pool of typed single-example predictors for concurrent callers (see <see cref="CreatePredictionEngine{TSrc, TDst}"/>).</summary>
    /// <param name="model">A trained model, or a pipeline that ends with one and has no other steps.</param>
    /// <param name="options">Member names and the handling of non-finite features; defaults when null.</param>
    public PredictionEnginePool<TSrc, TDst> CreatePredictionEnginePool<TSrc, TDst>(ITransformer model, PredictionEngineOptions? options = null)
        where TSrc : class
        where TDst : class, new() =>
        new(PredictingModel(model), options ?? new PredictionEngineOptions());

    private static NeuralNetworkMulticlassModel PredictingModel(ITransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model switch
        {
            NeuralNetworkMulticlassModel nn => nn,
            ITransformerChain { Transformers: [NeuralNetworkMulticlassModel nn] } => nn,
            _ => throw new NotSupportedException(
                $"Single-example prediction needs a trained neural network (or a pipeline holding only one); got {model.GetType().Name}."),
        };
    }
}
