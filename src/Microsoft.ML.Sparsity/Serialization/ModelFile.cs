using System.Buffers.Binary;
using System.IO.Compression;
using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>
/// The model file: a zip with <c>manifest.json</c> (its SHA-256 in <c>manifest.json.sha256</c>) and one entry per tensor
/// (little-endian float32, masks bit-packed), each entry's SHA-256 recorded in the manifest. Loading checks everything
/// (<see cref="ZipEntries"/>: sizes before allocating, checksums) and rebuilds a model that predicts bit-identically.
/// </summary>
internal static class ModelFile
{
    /// <summary>Version 2 stores masked tensors' kept values only (<see cref="TensorManifest.KeptOnly"/>) and the requested prediction formats; version 1 files still load.</summary>
    public const int FormatVersion = 2;
    public const string ManifestEntry = "manifest.json";
    private const string ChecksumEntry = ManifestEntry + ZipEntries.ChecksumSuffix;
    private const string NeuralNetworkMulticlass = "neuralNetworkMulticlass";
    private static readonly string TextLabelType = typeof(ReadOnlyMemory<char>).Name; // files written before labels had types held class names

    public static string PackageVersion { get; } =
        typeof(ModelFile).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";

    /// <summary>A model's file as bytes: a checkpoint's entry, the portable form's ride-along, a cluster's transfers.</summary>
    public static byte[] ToBytes(ITransformer model)
    {
        using var stream = new MemoryStream();
        Save(model, stream);
        return stream.ToArray();
    }

    /// <summary>The model a model file's bytes hold.</summary>
    /// <exception cref="ModelFormatException">The bytes are not a whole model file.</exception>
    public static ITransformer FromBytes(byte[] bytes, WorkerPool pool)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        return Load(stream, pool);
    }

    public static void Save(ITransformer model, Stream stream)
    {
        var entries = new List<(string Name, byte[] Bytes)>();
        var manifest = new ModelManifest { FormatVersion = 1, Producer = "Microsoft.ML.Sparsity", ProducerVersion = PackageVersion, ManifestSha256Entry = ChecksumEntry };
        IReadOnlyList<ITransformer> transformers = model is IEnumerable<ITransformer> chain ? [.. chain] : [model];
        for (int t = 0; t < transformers.Count; t++)
            manifest.Transformers.Add(transformers[t] switch
            {
                NeuralNetworkMulticlassModel nn => Describe(nn, $"t{t}/", entries),
                FrequencyDomain.FrequencyDomainTransformer fd => FrequencyDomainFile.Describe(fd, $"t{t}/", entries),
                var other => throw new NotSupportedException($"Transformer {t} ({other.GetType().Name}) cannot be saved."),
            });
        // Format 2 only when a file needs it (kept-only tensors or requested formats), so that older readers still read the rest.
        if (manifest.Transformers.Any(t => t.WeightFormats is not null || t.Tensors.Any(x => x.KeptOnly) || t.Training?.State.Any(x => x.KeptOnly) == true))
            manifest.FormatVersion = FormatVersion;
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        ZipEntries.WriteJson(zip, ManifestEntry, manifest);
        foreach (var (name, bytes) in entries) ZipEntries.Write(zip, name, bytes);
    }

    /// <summary>Loads the model file at <paramref name="path"/>; every error names the file.</summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/> (or a directory is there).</exception>
    /// <exception cref="ModelFormatException">The file is not a model file, or is damaged, truncated or of a newer format.</exception>
    public static ITransformer Load(string path, WorkerPool pool, string what = "model file")
    {
        using var stream = OpenRead(path, what);
        try
        {
            return Load(stream, pool);
        }
        catch (ModelFormatException e)
        {
            throw e.InFile(path);
        }
    }

    /// <summary>Opens the file at <paramref name="path"/> for reading, saying so when there is a directory or nothing there.</summary>
    internal static FileStream OpenRead(string path, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path)) throw new FileNotFoundException($"'{path}' is a directory; a {what} (a zip archive) was expected.", path);
        if (!File.Exists(path)) throw new FileNotFoundException($"There is no {what} at '{path}'.", path);
        return File.OpenRead(path);
    }

    public static ITransformer Load(Stream stream, WorkerPool pool)
    {
        using (var zip = ZipEntries.Open(stream))
        {
            try
            {
                return LoadPipeline(zip, pool);
            }
            catch (Exception e) when (e is InvalidDataException or (IOException and not ModelFormatException))
            {
                // The zip's own structure (central directory, local headers) is damaged.
                throw new ModelFormatException(null, $"the zip structure is damaged: {e.Message}", e);
            }
        }
    }

    private static ITransformer LoadPipeline(ZipArchive zip, WorkerPool pool)
    {
        var manifest = ReadManifest(zip);
        var transformers = new List<ITransformer>();
        for (int t = 0; t < manifest.Transformers.Count; t++)
        {
            var tm = manifest.Transformers[t] ?? throw new ModelFormatException(ManifestEntry, $"transformer {t} is null.");
            transformers.Add(tm.Kind switch
            {
                NeuralNetworkMulticlass => LoadNetwork(zip, tm, pool),
                FrequencyDomainFile.Kind => FrequencyDomainFile.Load(zip, tm, pool),
                _ => throw new ModelFormatException(ManifestEntry, $"transformer {t} has the unknown kind '{tm.Kind}'."),
            });
        }
        if (transformers.Count == 0) throw new ModelFormatException(ManifestEntry, "the pipeline is empty.");
        return transformers.Count == 1 ? transformers[0] : new TransformerChain<ITransformer>([.. transformers]);
    }

    private static TransformerManifest Describe(NeuralNetworkMulticlassModel model, string prefix, List<(string, byte[])> entries)
    {
        var network = model.Network;
        var tm = new TransformerManifest
        {
            Kind = NeuralNetworkMulticlass,
            InputShape = network.InputShape,
            ClassCount = model.ClassCount,
            ClassNames = model.ClassLabels?.Names,
            ClassLabelType = model.ClassLabels?.TypeName,
            FeatureColumnName = model.FeatureColumnName,
            LabelColumnName = model.LabelColumnName,
            Layers = [.. network.Definitions],
            Options = model.Options,
            WeightFormats = model.RequestedFormats.Count == 0 ? null : new(model.RequestedFormats),
            CompactPrediction = model.CompactPrediction ? true : null,
            SparsityLevels = network.SparsityLevels,
            SparsityLevel = network.SparsityLevels is null ? null : network.ActiveLevel,
        };
        var names = TensorNames(network);
        for (int i = 0; i < network.StateArrays.Count; i++)
        {
            var parameter = i < network.Parameters.Count ? network.Parameters[i] : null;
            float[]? mask = parameter?.Mask;
            // A masked tensor keeps only its unmasked values (the mask says where they go): a 90%-sparse weight
            // takes a tenth of its dense bytes plus a bit per value.
            var tensor = AddTensor(entries, $"{prefix}tensors/{i}.f32", names[i], mask is null ? network.StateArrays[i] : Kept(network.StateArrays[i], mask, names[i]),
                parameter?.Shape ?? [network.StateArrays[i].Length]);
            if (mask is not null)
            {
                var bits = PackBits(mask);
                entries.Add(($"{prefix}masks/{i}.bits", bits));
                (tensor.MaskEntry, tensor.MaskSha256, tensor.KeptOnly) = ($"{prefix}masks/{i}.bits", ZipEntries.Sha(bits), true);
                if (parameter!.LevelCodes is { } codes && network.SparsityLevels!.Length > 1)
                {
                    var packed = PackLevelCodes(codes, mask, network.SparsityLevels.Length);
                    entries.Add(($"{prefix}levels/{i}.bits", packed));
                    (tensor.LevelsEntry, tensor.LevelsSha256) = ($"{prefix}levels/{i}.bits", ZipEntries.Sha(packed));
                }
            }
            tensor.SparsityNote = parameter?.SparsityNote;
            tm.Tensors.Add(tensor);
        }
        if (model.Training is { } training)
        {
            tm.Training = new TrainingManifest
            {
                Optimizer = training.Optimizer,
                StateSlots = training.StateSlots,
                OptimizerSteps = training.OptimizerSteps,
                Steps = training.Steps,
            };
            for (int i = 0; i < training.OptimizerState.Length; i++)
            {
                // Optimiser state is exactly 0 where its parameter is masked, so it is stored like the parameter.
                float[] state = training.OptimizerState[i];
                float[]? mask = network.Parameters[i / Math.Max(1, training.StateSlots)].Mask;
                TensorManifest tensor = AddTensor(entries, $"{prefix}training/{i}.f32", $"optimizer.{i}", mask is null ? state : Kept(state, mask, $"optimizer.{i}"), [state.Length]);
                tensor.KeptOnly = mask is not null;
                tm.Training.State.Add(tensor);
            }
        }
        return tm;
    }

    internal static TensorManifest AddTensor(List<(string, byte[])> entries, string entry, string name, float[] values, int[] shape)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        entries.Add((entry, bytes));
        return new TensorManifest { Name = name, Shape = shape, Entry = entry, Sha256 = ZipEntries.Sha(bytes) };
    }

    private static NeuralNetworkMulticlassModel LoadNetwork(ZipArchive zip, TransformerManifest tm, WorkerPool pool)
    {
        if (tm.InputShape is null || tm.InputShape.Length == 0 || tm.InputShape.Any(d => d <= 0))
            throw new ModelFormatException(ManifestEntry, "inputShape must be a list of positive dimensions.");
        if (tm.ClassCount < 2) throw new ModelFormatException(ManifestEntry, $"classCount is {tm.ClassCount}; a classifier has at least 2 classes.");
        if (tm.ClassNames is not null && tm.ClassNames.Length != tm.ClassCount)
            throw new ModelFormatException(ManifestEntry, $"there are {tm.ClassNames.Length} class names for {tm.ClassCount} classes.");
        if (tm.Layers is null || tm.Layers.Count == 0 || tm.Layers.Any(l => l is null)) throw new ModelFormatException(ManifestEntry, "the network has no layers.");
        ClassLabels? labels;
        try
        {
            labels = tm.ClassNames is null ? null : ClassLabels.FromNames(tm.ClassLabelType ?? TextLabelType, tm.ClassNames);
        }
        catch (FormatException e)
        {
            throw new ModelFormatException(ManifestEntry, $"classLabelType: {e.Message}", e);
        }
        SequentialNetwork network;
        long capacity = Capacity(zip, tm.Tensors);
        try
        {
            // The architecture may not ask for more parameters than the file's tensors can hold, so that an edited
            // layer size is refused before its weights are allocated.
            network = new SequentialNetwork(tm.Layers, tm.InputShape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 0) { ParameterBudget = capacity });
        }
        catch (Exception e) when (e is ArgumentException or OverflowException or OutOfMemoryException)
        {
            throw new ModelFormatException(ManifestEntry, $"the architecture cannot be built (its parameters may not exceed the {capacity} values the file's tensors hold): {e.Message}", e);
        }
        if (network.OutputSize != tm.ClassCount)
            throw new ModelFormatException(ManifestEntry, $"the network outputs {network.OutputSize} values for {tm.ClassCount} classes.");
        var names = TensorNames(network);
        if (tm.Tensors.Count != network.StateArrays.Count)
            throw new ModelFormatException(ManifestEntry, $"the network needs {network.StateArrays.Count} tensors; the manifest lists {tm.Tensors.Count}.");
        for (int i = 0; i < network.StateArrays.Count; i++)
        {
            var tensor = tm.Tensors[i];
            if (tensor.Name != names[i])
                throw new ModelFormatException(ManifestEntry, $"tensor {i} is '{tensor.Name}'; the architecture expects '{names[i]}'.");
            var target = network.StateArrays[i];
            var parameter = i < network.Parameters.Count ? network.Parameters[i] : null;
            int[] expectedShape = parameter?.Shape ?? [target.Length];
            if (tensor.Shape is null || !tensor.Shape.SequenceEqual(expectedShape))
                throw new ModelFormatException(ManifestEntry,
                    $"tensor '{tensor.Name}' has shape {Shape.Format(tensor.Shape ?? [])}; the architecture expects {Shape.Format(expectedShape)}.");
            if (tensor.KeptOnly && tensor.MaskEntry is null)
                throw new ModelFormatException(tensor.Entry, $"'{tensor.Name}' stores kept values only but has no mask.");
            if (!tensor.KeptOnly)
                ReadFloats(zip, tensor.Entry, tensor.Sha256, target);
            if (tensor.MaskEntry is null) continue;
            if (parameter is null) throw new ModelFormatException(tensor.MaskEntry, $"'{tensor.Name}' is not a parameter and cannot have a mask.");
            parameter.Mask = ReadMask(zip, tensor.MaskEntry, tensor.MaskSha256, target.Length);
            if (tensor.KeptOnly)
                ReadKept(zip, tensor.Entry, tensor.Sha256, parameter.Mask, target);
            for (int k = 0; k < target.Length; k++)
                if (parameter.Mask[k] == 0 && target[k] != 0)
                    throw new ModelFormatException(tensor.MaskEntry, $"the mask prunes value {k} of '{tensor.Name}', but the stored weight is {target[k]}, not 0.");
            parameter.SparsityNote = tensor.SparsityNote;
            if (tensor.LevelsEntry is not null)
            {
                if (tm.SparsityLevels is not { Length: > 1 } levels)
                    throw new ModelFormatException(tensor.LevelsEntry, $"'{tensor.Name}' has level codes, but the model lists fewer than two sparsity levels.");
                parameter.LevelCodes = ReadLevelCodes(zip, tensor.LevelsEntry, tensor.LevelsSha256, parameter.Mask, levels.Length, tensor.Name);
            }
        }
        if (tm.SparsityLevels is { } sparsityLevels)
        {
            try
            {
                NestedSparsity.NestedSparsityOptions.CheckLevels(sparsityLevels, nameof(tm.SparsityLevels));
            }
            catch (ArgumentException e)
            {
                throw new ModelFormatException(ManifestEntry, $"sparsityLevels: {e.Message}", e);
            }
            if (tm.SparsityLevel is < 0 || tm.SparsityLevel >= sparsityLevels.Length)
                throw new ModelFormatException(ManifestEntry, $"sparsityLevel is {tm.SparsityLevel}; the model has {sparsityLevels.Length} levels.");
            network.SparsityLevels = sparsityLevels;
            network.ActiveLevel = tm.SparsityLevel ?? 0;
        }
        else if (tm.SparsityLevel is not null)
            throw new ModelFormatException(ManifestEntry, "sparsityLevel is set, but the model lists no sparsity levels.");
        TrainingState? training = null;
        if (tm.Training is { } t)
        {
            int expected = network.Parameters.Count * t.StateSlots;
            if (t.StateSlots is < 0 or > 2 || t.State is null || t.State.Count != expected || t.OptimizerSteps < 0 || t.Steps < 0 || t.Optimizer is not ("sgd" or "adam"))
                throw new ModelFormatException(ManifestEntry, $"the training state is inconsistent: optimizer '{t.Optimizer}', {t.State?.Count ?? 0} state tensors for {expected} expected.");
            var state = new float[expected][];
            for (int i = 0; i < expected; i++)
            {
                state[i] = new float[network.Parameters[i / Math.Max(1, t.StateSlots)].Length];
                if (t.State[i].Shape is null || !t.State[i].Shape.SequenceEqual([state[i].Length]))
                    throw new ModelFormatException(t.State[i].Entry, $"optimizer state {i} should hold {state[i].Length} values.");
                float[]? mask = network.Parameters[i / Math.Max(1, t.StateSlots)].Mask;
                if (t.State[i].KeptOnly && mask is null)
                    throw new ModelFormatException(t.State[i].Entry, $"optimizer state {i} stores kept values only, but its parameter has no mask.");
                if (t.State[i].KeptOnly)
                    ReadKept(zip, t.State[i].Entry, t.State[i].Sha256, mask!, state[i]);
                else
                    ReadFloats(zip, t.State[i].Entry, t.State[i].Sha256, state[i]);
            }
            training = new TrainingState(t.Optimizer, t.StateSlots, state, t.OptimizerSteps, t.Steps);
        }
        try
        {
            return new NeuralNetworkMulticlassModel(network, tm.ClassCount, labels, tm.FeatureColumnName ?? "Features", [], training, tm.Options, tm.WeightFormats,
                tm.LabelColumnName ?? "Label", tm.CompactPrediction ?? false);
        }
        catch (ArgumentException e)
        {
            throw new ModelFormatException(ManifestEntry, $"the requested weight formats or compact prediction do not fit the weights: {e.Message}", e);
        }
    }

    private static ModelManifest ReadManifest(ZipArchive zip)
    {
        if (zip.GetEntry(ManifestEntry) is null)
            throw new ModelFormatException(ManifestEntry,
                "the zip has no manifest.json, so it is not a model file of this package (a model saved with mlContext.Model.Save loads with mlContext.Sparsity().LoadModel).");
        var manifest = ZipEntries.ReadJson<ModelManifest>(zip, ManifestEntry, out bool checksummed);
        // Files written before the manifest had a checksum load as before; a file that says it has one must have it.
        if (!checksummed && manifest.ManifestSha256Entry is not null)
            throw new ModelFormatException(ChecksumEntry, $"the entry is missing, but the manifest says its checksum is there.");
        if (manifest.FormatVersion > FormatVersion)
            throw new ModelFormatException(ManifestEntry,
                $"the file has format version {manifest.FormatVersion}, written by {manifest.Producer} {manifest.ProducerVersion}; this version ({PackageVersion}) reads up to format {FormatVersion}. Update the package.");
        if (manifest.FormatVersion < 1) throw new ModelFormatException(ManifestEntry, $"formatVersion {manifest.FormatVersion} is not a valid format version.");
        if (manifest.Transformers is null) throw new ModelFormatException(ManifestEntry, "the manifest lists no transformers.");
        return manifest;
    }

    /// <summary>
    /// How many values the listed tensors hold, once each tensor's entry (a masked tensor's mask) is there and declares
    /// at least the size its shape implies: the most parameters the architecture may have. Names the entry or tensor at fault.
    /// </summary>
    private static long Capacity(ZipArchive zip, List<TensorManifest>? tensors)
    {
        if (tensors is null) throw new ModelFormatException(ManifestEntry, "the transformer lists no tensors.");
        long capacity = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var tensor = tensors[i] ?? throw new ModelFormatException(ManifestEntry, $"tensor {i} is null.");
            string? name = tensor.KeptOnly ? tensor.MaskEntry : tensor.Entry;
            if (string.IsNullOrEmpty(name)) throw new ModelFormatException(ManifestEntry, $"tensor {i} ('{tensor.Name}') has no entry name.");
            long values = 1;
            foreach (int d in tensor.Shape ?? []) values = Math.Min(values * Math.Max(d, 0), (long)Array.MaxLength + 1);
            if (tensor.Shape is null || values > Array.MaxLength)
                throw new ModelFormatException(ManifestEntry, $"tensor '{tensor.Name}' has shape {Shape.Format(tensor.Shape ?? [])}; a tensor holds 1 to {Array.MaxLength} values.");
            // Too short an entry is named here; too long a one when it is read (exactly as long as the architecture needs).
            long needed = tensor.KeptOnly ? (values + 7) / 8 : values * 4;
            long declared = (zip.GetEntry(name) ?? throw new ModelFormatException(name, "the entry is missing.")).Length;
            if (declared < needed)
                throw new ModelFormatException(name, $"the entry is truncated: its header declares {declared} bytes; '{tensor.Name}' of shape {Shape.Format(tensor.Shape)} needs {needed}.");
            capacity += values;
        }
        return capacity;
    }

    internal static void ReadFloats(ZipArchive zip, string? entry, string? sha, float[] target)
    {
        var bytes = ZipEntries.ReadChecked(zip, entry, sha, (long)target.Length * 4);
        for (int i = 0; i < target.Length; i++)
        {
            target[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
            if (!float.IsFinite(target[i])) throw new ModelFormatException(entry, $"value {i} is {target[i]}; stored values must be finite.");
        }
    }

    internal static float[] ReadMask(ZipArchive zip, string entry, string? sha, int length)
    {
        var bytes = ZipEntries.ReadChecked(zip, entry, sha, (length + 7L) / 8);
        var mask = new float[length];
        for (int i = 0; i < length; i++) mask[i] = (bytes[i >> 3] >> (i & 7) & 1) == 1 ? 1f : 0f;
        return mask;
    }

    /// <summary>The values where the mask is 1, in order; the others must be exactly 0 (the masked-training invariant), or nothing is written.</summary>
    private static float[] Kept(float[] values, float[] mask, string name)
    {
        var kept = new float[mask.Length - mask.AsSpan().Count(0f)];
        for (int i = 0, k = 0; i < values.Length; i++)
        {
            if (mask[i] != 0f)
                kept[k++] = values[i];
            else if (values[i] != 0f)
                throw new InvalidOperationException($"'{name}' value {i} is {values[i]} where its mask prunes it; masked values must be exactly 0 to be saved.");
        }

        return kept;
    }

    /// <summary>Reads an entry of kept values and scatters them where <paramref name="mask"/> is 1 (0 elsewhere).</summary>
    private static void ReadKept(ZipArchive zip, string? entry, string? sha, float[] mask, float[] target)
    {
        var kept = new float[mask.Length - mask.AsSpan().Count(0f)];
        ReadFloats(zip, entry, sha, kept);
        Array.Clear(target);
        for (int i = 0, k = 0; i < target.Length; i++)
            if (mask[i] != 0f) target[i] = kept[k++];
    }

    /// <summary>Parameter names, then "layer.runningMean" / "layer.runningVariance" for batch norms, matching <see cref="SequentialNetwork.StateArrays"/>.</summary>
    private static string[] TensorNames(SequentialNetwork network) =>
        [.. network.Parameters.Select(p => p.Name),
         .. network.Layers.OfType<BatchNormLayer>().SelectMany(b => new[] { b.Name + ".runningMean", b.Name + ".runningVariance" })];

    /// <summary>Bits per kept value for the codes of <paramref name="levels"/> levels: ⌈log₂ levels⌉.</summary>
    private static int LevelCodeBits(int levels) => 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(levels - 1));

    /// <summary>The codes (1 … levels) of the values <paramref name="mask"/> keeps, minus 1, packed in <see cref="LevelCodeBits"/> bits each.</summary>
    private static byte[] PackLevelCodes(byte[] codes, float[] mask, int levels)
    {
        int bits = LevelCodeBits(levels);
        long kept = mask.Length - mask.AsSpan().Count(0f);
        var packed = new byte[(kept * bits + 7) / 8];
        long at = 0;
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] == 0) continue;
            int value = codes[i] - 1;
            for (int b = 0; b < bits; b++, at++)
                if ((value >> b & 1) != 0) packed[at >> 3] |= (byte)(1 << (int)(at & 7));
        }
        return packed;
    }

    /// <summary>Reads the codes <see cref="PackLevelCodes"/> wrote; a code beyond the model's levels is refused, naming the tensor.</summary>
    private static byte[] ReadLevelCodes(ZipArchive zip, string entry, string? sha, float[] mask, int levels, string name)
    {
        int bits = LevelCodeBits(levels);
        long kept = mask.Length - mask.AsSpan().Count(0f);
        var packed = ZipEntries.ReadChecked(zip, entry, sha, (kept * bits + 7) / 8);
        var codes = new byte[mask.Length];
        long at = 0;
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] == 0) continue;
            int value = 0;
            for (int b = 0; b < bits; b++, at++) value |= (packed[at >> 3] >> (int)(at & 7) & 1) << b;
            if (value >= levels)
                throw new ModelFormatException(entry, $"value {i} of '{name}' is kept by {value + 1} levels; the model has {levels}.");
            codes[i] = (byte)(value + 1);
        }
        return codes;
    }

    internal static byte[] PackBits(float[] mask)
    {
        var bits = new byte[(mask.Length + 7) / 8];
        for (int i = 0; i < mask.Length; i++) if (mask[i] != 0) bits[i >> 3] |= (byte)(1 << (i & 7));
        return bits;
    }

}
