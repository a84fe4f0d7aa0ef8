using System.IO.Compression;
using Google.Protobuf;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Export.Onnx;
using Microsoft.ML.Transforms.Onnx;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>
/// How this package's transformers go into a zip of ML.NET's <c>mlContext.Model.Save</c>, whose writers are internal:
/// each as a portable chain of ML.NET's own transformers that starts with <c>ApplyOnnxModel</c> on the transformer's
/// unbatched ONNX graph and reproduces its output columns (<see cref="PortableNetwork"/>, <see cref="PortableFrequencyDomain"/>),
/// with the transformer's own file riding along.
/// </summary>
/// <remarks>
/// The transformer's own file (<see cref="ModelFile"/>) rides along base64-encoded in the ONNX model's metadata under
/// <see cref="RideAlongKey"/>; <see cref="Load"/> finds it in the zip's <c>OnnxModel</c> entries and puts the fast
/// transformer back where the portable chain was.
/// </remarks>
internal static class PortableModel
{
    public const string RideAlongKey = "microsoft.ml.sparsity.model";
    private const string OnnxModelEntry = "OnnxModel";
    private const string ChainDirectory = "TransformerChain/";

    /// <summary>Names the temporary copies of the ONNX graph a save hands to OnnxTransformer (<c>.sparsity-portable.onnx.{32 hex}.tmp</c>).</summary>
    private static readonly string OnnxCopy = Path.Combine(Path.GetTempPath(), "sparsity-portable.onnx");

    /// <summary>
    /// Writes the portable chain of <paramref name="transformer"/> into <paramref name="ctx"/>: the estimators
    /// <paramref name="chain"/> builds around the path of <paramref name="onnx"/> (the transformer's unbatched graph, to
    /// which the transformer's own file is added), fitted (they only read the schema) on an empty view with the input
    /// column, a vector of <paramref name="inputSize"/> Singles.
    /// </summary>
    public static void Save(ITransformer transformer, ModelProto onnx, string inputColumnName, int inputSize,
        Func<MLContext, string, IEstimator<ITransformer>> chain, ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        onnx.MetadataProps.Add(new StringStringEntryProto { Key = RideAlongKey, Value = Convert.ToBase64String(ModelFile.ToBytes(transformer)) });
        // OnnxTransformer re-reads its file while saving: keep it until the chain is disposed. A save killed meanwhile
        // leaves it behind; as with AtomicFile's temporaries, the next save removes the copies nobody holds open. This
        // one is held open read-only (a shared lock; ML.NET opens it read-only too) from its creation to its deletion.
        string onnxPath = AtomicFile.TemporaryPath(OnnxCopy);
        AtomicFile.RemoveStaleTemporaries(OnnxCopy);
        try
        {
            FileStream inUse;
            using (var writer = new FileStream(onnxPath, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite))
            {
                inUse = new FileStream(onnxPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                writer.Write(onnx.ToByteArray());
            }
            using (inUse)
            {
                var empty = new ColumnsDataView((inputColumnName, new VectorDataViewType(NumberDataViewType.Single, inputSize), null, Array.Empty<VBuffer<float>>()));
                using var fitted = new TransformerChain<ITransformer>([.. (IEnumerable<ITransformer>)chain(new MLContext(), onnxPath).Fit(empty)]);
                ((ICanSaveModel)fitted).Save(ctx);
            }
        }
        finally
        {
            File.Delete(onnxPath);
        }
    }

    /// <summary>
    /// Loads a zip ML.NET's <c>mlContext.Model.Save</c> wrote and puts back, for every portable chain that carries a
    /// transformer of this package, the transformer itself (a network with its weights, masks, formats and optimiser
    /// state; a frequency-domain transform with its statistics and selection).
    /// </summary>
    public static ITransformer Load(MLContext ml, string filePath, WorkerPool pool, out DataViewSchema inputSchema)
    {
        using var stream = ModelFile.OpenRead(filePath, "model file");
        try
        {
            using var zip = ZipEntries.Open(stream);
            ITransformer loaded;
            try
            {
                stream.Position = 0;
                loaded = ml.Model.Load(stream, out inputSchema);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException or (IOException and not ModelFormatException))
            {
                throw new ModelFormatException(null,
                    $"ML.NET cannot load it as a model saved with mlContext.Model.Save (a lottery ticket loads with mlContext.Sparsity().LoadLotteryTicket): {e.Message}", e);
            }
            return Restore(loaded, ChainDirectory, zip, pool, filePath);
        }
        catch (ModelFormatException e)
        {
            throw e.InFile(filePath);
        }
    }

    private static ITransformer Restore(ITransformer transformer, string directory, ZipArchive zip, WorkerPool pool, string filePath)
    {
        if (transformer is not TransformerChain<ITransformer> chain) return transformer;
        var parts = chain.ToArray();
        if (parts.Length > 0 && parts[0] is OnnxTransformer && RideAlong(zip, $"{directory}Transform_000/{OnnxModelEntry}", pool, filePath) is { } ours)
        {
            chain.Dispose(); // its OnnxTransformer holds a temporary copy of the ONNX file
            return ours;
        }
        for (int i = 0; i < parts.Length; i++)
            parts[i] = Restore(parts[i], $"{directory}Transform_{i:000}/", zip, pool, filePath);
        return new TransformerChain<ITransformer>(parts);
    }

    /// <summary>The transformer riding along in the ONNX model stored at <paramref name="entryName"/>, or null when that model carries none.</summary>
    private static ITransformer? RideAlong(ZipArchive zip, string entryName, WorkerPool pool, string filePath)
    {
        var entry = zip.GetEntry(entryName);
        if (entry is null) return null;
        ModelProto onnx;
        using (var stream = entry.Open())
        using (var reader = new BinaryReader(stream))
        {
            int length = reader.ReadInt32(); // OnnxTransformer frames the ONNX bytes with their length
            if (length < 0 || length > entry.Length - 4)
                throw new ModelFormatException(filePath, entryName, $"the entry frames an ONNX model of {length} bytes, but holds {entry.Length} in all.", null);
            onnx = ModelProto.Parser.ParseFrom(reader.ReadBytes(length));
        }
        var value = onnx.MetadataProps.FirstOrDefault(p => p.Key == RideAlongKey)?.Value;
        if (value is null) return null;
        try
        {
            return ModelFile.FromBytes(Convert.FromBase64String(value), pool);
        }
        catch (Exception e) when (e is FormatException or ModelFormatException)
        {
            throw new ModelFormatException(filePath, entryName,
                $"the Microsoft.ML.Sparsity model riding along in the ONNX metadata '{RideAlongKey}' of this entry is damaged " +
                $"({e.Message}). The portable model still loads with mlContext.Model.Load.", e);
        }
    }
}
