using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>The JSON manifest (<c>manifest.json</c>) of a model file: what the file holds and where.</summary>
internal sealed class ModelManifest
{
    public int FormatVersion { get; set; }
    public string Producer { get; set; } = "";
    public string ProducerVersion { get; set; } = "";

    /// <summary>
    /// The entry holding this manifest's SHA-256 (<c>manifest.json.sha256</c>); null in files written before the manifest
    /// had one. Readers that know it require the entry; older readers ignore both, so the format version stays as it was.
    /// </summary>
    public string? ManifestSha256Entry { get; set; }

    /// <summary>The fitted pipeline, in order.</summary>
    public List<TransformerManifest> Transformers { get; set; } = [];

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        IncludeFields = true,
    };
}

/// <summary>One fitted transformer of the pipeline.</summary>
internal sealed class TransformerManifest
{
    /// <summary>"neuralNetworkMulticlass" or "frequencyDomain".</summary>
    public string Kind { get; set; } = "";
    public int[] InputShape { get; set; } = [];
    public int ClassCount { get; set; }
    public string[]? ClassNames { get; set; }

    /// <summary>The ML.NET type of the class names (the label's key values), by its CLR name; null means text.</summary>
    public string? ClassLabelType { get; set; }

    /// <summary>The features column the model reads; null means "Features".</summary>
    public string? FeatureColumnName { get; set; }

    /// <summary>The label column a multiclass model was trained on; null means "Label".</summary>
    public string? LabelColumnName { get; set; }
    public List<LayerDefinition> Layers { get; set; } = [];

    /// <summary>The trainer options used (informational; not needed to predict).</summary>
    public JsonObject? Options { get; set; }

    /// <summary>Parameter values, then batch-norm running statistics, in network order.</summary>
    public List<TensorManifest> Tensors { get; set; } = [];

    /// <summary>Prediction formats asked for by layer name ("*" for all), when not all automatic (format 2).</summary>
    public Dictionary<string, Inference.WeightFormat>? WeightFormats { get; set; }

    public TrainingManifest? Training { get; set; }

    /// <summary>The model predicts through its compact form (<c>NeuralNetworkModel.CompactPrediction</c>); null means false. Readers that do not know it predict through the network as saved, which gives the same predictions.</summary>
    public bool? CompactPrediction { get; set; }

    /// <summary>Nested sparsity: the levels the network serves, densest first (<c>NeuralNetworkModel.SparsityLevels</c>); null for a network of one level.</summary>
    public double[]? SparsityLevels { get; set; }

    /// <summary>Nested sparsity: the index in <see cref="SparsityLevels"/> of the level the model predicts at; null means 0.</summary>
    public int? SparsityLevel { get; set; }

    /// <summary>Frequency-domain transform: the DCT block side.</summary>
    public int? BlockSize { get; set; }

    /// <summary>Frequency-domain transform: the value of a white pixel.</summary>
    public float? PixelRange { get; set; }

    /// <summary>Frequency-domain transform: the full channel indices it outputs, increasing.</summary>
    public int[]? Channels { get; set; }
}

/// <summary>A float32 tensor stored little-endian in <see cref="Entry"/>, with an optional bit-packed mask.</summary>
internal sealed class TensorManifest
{
    public string Name { get; set; } = "";
    public int[] Shape { get; set; } = [];
    public string Entry { get; set; } = "";
    public string Sha256 { get; set; } = "";
    public string? MaskEntry { get; set; }
    public string? MaskSha256 { get; set; }
    public string? SparsityNote { get; set; }

    /// <summary>
    /// Nested sparsity: an entry holding, for each kept value in order, the number of levels that keep it minus 1, in
    /// ⌈log₂ levels⌉ bits (least significant first); null when every kept value is kept by every level.
    /// </summary>
    public string? LevelsEntry { get; set; }
    public string? LevelsSha256 { get; set; }

    /// <summary>The entry holds only the values the mask keeps, in order (format 2).</summary>
    public bool KeptOnly { get; set; }
}

/// <summary>The optimiser state for continuing training.</summary>
internal sealed class TrainingManifest
{
    public string Optimizer { get; set; } = "";
    public int StateSlots { get; set; }
    public long OptimizerSteps { get; set; }
    public long Steps { get; set; }
    public List<TensorManifest> State { get; set; } = [];
}
