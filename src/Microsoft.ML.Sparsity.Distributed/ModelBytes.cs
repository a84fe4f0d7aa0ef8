using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Serialization;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>A trained model as its model file's bytes: how it travels from a worker and lives in the cluster's journal.</summary>
internal static class ModelBytes
{
    public static byte[] Save(NeuralNetworkMulticlassModel model)
    {
        using var stream = new MemoryStream();
        ModelFile.Save(model, stream);
        return stream.ToArray();
    }

    /// <exception cref="ModelFormatException">The bytes are not a whole model file.</exception>
    public static NeuralNetworkMulticlassModel Load(byte[] bytes, WorkerPool pool)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        return (NeuralNetworkMulticlassModel)ModelFile.Load(stream, pool);
    }
}
