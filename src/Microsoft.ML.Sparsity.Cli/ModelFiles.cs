using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>
/// The tool's model files: what <c>mlContext.Model.Save</c> writes (portable: any ML.NET application loads them with
/// ML.NET's ONNX transformer), holding the network and a <c>PredictedClass</c> column with the class names.
/// </summary>
internal static class ModelFiles
{
    /// <summary>The network in a model file, with its fast sparse formats (<c>mlContext.Sparsity().LoadModel</c>).</summary>
    public static NeuralNetworkMulticlassModel Load(MLContext ml, string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"The model file '{path}' does not exist.", path);
        var model = ml.Sparsity().LoadModel(path, out _);
        return Find(model) ?? throw new InvalidDataException($"'{path}' holds no multiclass neural-network model of Microsoft.ML.Sparsity.");
    }

    private static NeuralNetworkMulticlassModel? Find(ITransformer transformer) => transformer switch
    {
        NeuralNetworkMulticlassModel network => network,
        IEnumerable<ITransformer> chain => chain.Select(Find).FirstOrDefault(n => n is not null),
        _ => null,
    };

    /// <summary>Saves <paramref name="network"/> with a <c>PredictedClass</c> column (the class name) to <paramref name="path"/>, atomically.</summary>
    public static void Save(MLContext ml, NeuralNetworkMulticlassModel network, IDataView data, string path)
    {
        var chain = network.Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel").Fit(network.Transform(data)));
        Serialization.AtomicFile.Write(path, stream => ml.Model.Save(chain, data.Schema, stream));
    }
}
