using System.IO.Compression;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.FrequencyDomain;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>
/// A <see cref="FrequencyDomainTransformer"/> in a model file: the image shape, block size, pixel range and selected
/// channels in the manifest (the column names and the input's pixel layout in its options); the means, standard deviations and (gate selection) selection frequencies as tensors.
/// </summary>
internal static class FrequencyDomainFile
{
    public const string Kind = "frequencyDomain";
    private const string Mean = "mean", Std = "std", Frequencies = "selectionFrequencies";
    private const string InputColumn = "inputColumnName", OutputColumn = "outputColumnName", Interleaved = "interleavedPixelColors";

    public static TransformerManifest Describe(FrequencyDomainTransformer transform, string prefix, List<(string, byte[])> entries)
    {
        var tm = new TransformerManifest
        {
            Kind = Kind,
            InputShape = [.. transform.InputShape],
            BlockSize = transform.BlockSize,
            PixelRange = transform.Dct.PixelRange,
            Channels = [.. transform.Channels],
            Options = new JsonObject
            {
                [InputColumn] = transform.InputColumnName,
                [OutputColumn] = transform.OutputColumnName,
                [Interleaved] = transform.InterleavedPixelColors,
            },
        };
        int k = transform.Channels.Length;
        tm.Tensors.Add(ModelFile.AddTensor(entries, $"{prefix}tensors/0.f32", Mean, transform.Mean, [k]));
        tm.Tensors.Add(ModelFile.AddTensor(entries, $"{prefix}tensors/1.f32", Std, transform.Std, [k]));
        if (transform.Frequencies is { } f)
            tm.Tensors.Add(ModelFile.AddTensor(entries, $"{prefix}tensors/2.f32", Frequencies, [.. f.Select(v => (float)v)], [f.Length]));
        return tm;
    }

    public static FrequencyDomainTransformer Load(ZipArchive zip, TransformerManifest tm, WorkerPool pool)
    {
        string entry = ModelFile.ManifestEntry;
        var shape = tm.InputShape;
        if (shape is null || shape.Length != 3 || shape[0] <= 0 || shape[1] <= 0 || shape[2] is not (1 or 3))
            throw new ModelFormatException(entry, $"the frequency-domain transform's input shape {Shape.Format(shape ?? [])} is not [height, width, 1 or 3].");
        if ((long)(shape[0] + 8) * (shape[1] + 8) * shape[2] > int.MaxValue)
            throw new ModelFormatException(entry, $"the frequency-domain transform's input shape {Shape.Format(shape)} has more values than an image column can hold.");
        if (tm.BlockSize is not (4 or 8))
            throw new ModelFormatException(entry, $"the frequency-domain transform's block size {tm.BlockSize} is not 4 or 8.");
        if (tm.PixelRange is not float range || !(range > 0 && float.IsFinite(range)))
            throw new ModelFormatException(entry, $"the frequency-domain transform's pixel range {tm.PixelRange} is not a positive number.");
        var dct = new ImageDct(shape, tm.BlockSize.Value, range);
        var channels = tm.Channels;
        if (channels is null || channels.Length == 0 || channels[0] < 0 || channels[^1] >= dct.Channels || channels.Zip(channels.Skip(1)).Any(p => p.First >= p.Second))
            throw new ModelFormatException(entry, $"the frequency-domain transform's channels must be increasing indices in [0, {dct.Channels}).");
        int k = channels.Length;
        if (tm.Tensors is null || tm.Tensors.Count is not (2 or 3))
            throw new ModelFormatException(entry, $"the frequency-domain transform needs 2 or 3 tensors ({Mean}, {Std}[, {Frequencies}]); the manifest lists {tm.Tensors?.Count ?? 0}.");
        var mean = Read(zip, tm.Tensors[0], Mean, k);
        var std = Read(zip, tm.Tensors[1], Std, k);
        if (std.Any(s => !(s > 0)))
            throw new ModelFormatException(tm.Tensors[1].Entry, "every standard deviation must be positive.");
        double[]? frequencies = tm.Tensors.Count == 3 ? [.. Read(zip, tm.Tensors[2], Frequencies, dct.Channels).Select(v => (double)v)] : null;
        // Files written before the transform read ML.NET columns have no options: "Features", interleaved.
        string Name(string key) => tm.Options?[key] is JsonValue v && v.TryGetValue(out string? name) && name.Length > 0 ? name : FrequencyDomainTransformer.DefaultColumnName;
        bool planar = tm.Options?[Interleaved] is JsonValue i && i.TryGetValue(out bool interleaved) && !interleaved;
        return new FrequencyDomainTransformer(dct, channels, mean, std, frequencies, pool, Name(InputColumn), Name(OutputColumn), planar);
    }

    private static float[] Read(ZipArchive zip, TensorManifest tensor, string name, int length)
    {
        if (tensor is null || tensor.Name != name || tensor.Shape is null || !tensor.Shape.SequenceEqual([length]))
            throw new ModelFormatException(ModelFile.ManifestEntry, $"the frequency-domain transform expects the tensor '{name}' of shape [{length}].");
        var values = new float[length];
        ModelFile.ReadFloats(zip, tensor.Entry, tensor.Sha256, values);
        return values;
    }
}
