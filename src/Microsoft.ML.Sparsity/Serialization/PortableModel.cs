using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>TODO: portable save (being written).</summary>
internal static class PortableModel
{
    public static void Save(NeuralNetworkMulticlassModel model, ModelSaveContext ctx) => throw new NotSupportedException("TODO");

    public static ITransformer Load(MLContext context, string filePath, WorkerPool pool, out DataViewSchema inputSchema) => throw new NotSupportedException("TODO");
}
