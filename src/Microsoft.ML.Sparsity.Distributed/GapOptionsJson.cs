using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.GrowAndPrune;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>
/// P-GaP's options as JSON, field by field, so a worker trains a copy with exactly the coordinator's options. Every
/// public field of <see cref="ParallelGapOptions"/>, its <c>Training</c> and its <c>Gap</c> is written (a test checks
/// that each one survives the trip), except the training's <c>Sparsity</c> (P-GaP's must be null) and its thread count
/// (the worker's own).
/// </summary>
internal static class GapOptionsJson
{
    public static string Write(ParallelGapOptions options)
    {
        var t = options.Training;
        var g = options.Gap;
        var (kind, epochs, value, warmup) = t.LearningRateSchedule.Values;
        var json = new JsonObject
        {
            ["training"] = new JsonObject
            {
                ["labelColumnName"] = t.LabelColumnName,
                ["featureColumnName"] = t.FeatureColumnName,
                ["inputShape"] = t.InputShape is null ? null : new JsonArray([.. t.InputShape.Select(d => JsonValue.Create(d))]),
                ["layers"] = JsonSerializer.SerializeToNode<LayerDefinition[]>([.. t.Layers], ModelManifest.Json),
                ["epochs"] = t.Epochs,
                ["batchSize"] = t.BatchSize,
                ["optimizerType"] = t.Optimizer.GetType().FullName,
                ["optimizer"] = JsonSerializer.SerializeToNode(t.Optimizer, t.Optimizer.GetType(), ModelManifest.Json),
                ["schedule"] = new JsonObject { ["kind"] = kind, ["epochs"] = epochs, ["value"] = value, ["warmupSteps"] = warmup },
                ["weightInitializer"] = t.WeightInitializer.ToString(),
                ["validationFraction"] = t.ValidationFraction,
                ["earlyStoppingPatience"] = t.EarlyStoppingPatience,
                ["shuffle"] = t.Shuffle,
                ["batchNormScaleL1"] = t.BatchNormScaleL1,
                ["seed"] = t.Seed,
            },
            ["gap"] = new JsonObject
            {
                ["targetSparsity"] = g.TargetSparsity,
                ["pattern"] = g.Pattern.ToString(),
                ["allocation"] = g.Allocation.ToString(),
                ["layerSparsity"] = new JsonObject([.. g.LayerSparsity.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value)))]),
                ["excludedLayers"] = new JsonArray([.. g.ExcludedLayers.Select(l => JsonValue.Create(l))]),
                ["outputLayerAtHalfRate"] = g.OutputLayerAtHalfRate,
                ["leaveMisfitLayersDense"] = g.LeaveMisfitLayersDense,
                ["maskSeed"] = g.MaskSeed,
                ["partitionCount"] = g.PartitionCount,
                ["partitions"] = new JsonArray([.. g.Partitions.Select(p => (JsonNode)new JsonArray([.. p.Select(l => JsonValue.Create(l))]))]),
                ["stepEpochs"] = g.StepEpochs,
                ["rounds"] = g.Rounds,
                ["order"] = g.Order.ToString(),
            },
        };
        return json.ToJsonString();
    }

    /// <exception cref="ArgumentException">The JSON is not P-GaP options of this package version.</exception>
    public static ParallelGapOptions Read(string text)
    {
        try
        {
            var json = JsonNode.Parse(text)!;
            var t = json["training"]!;
            var g = json["gap"]!;
            var s = t["schedule"]!;
            var optimizerType = typeof(OptimizerOptions).Assembly.GetType(t["optimizerType"]!.GetValue<string>()) is { } type && type.IsSubclassOf(typeof(OptimizerOptions))
                ? type : throw new ArgumentException($"'{t["optimizerType"]}' is not an optimiser of this package version.");
            return new ParallelGapOptions
            {
                Training = new NeuralNetworkMulticlassTrainer.Options
                {
                    LabelColumnName = t["labelColumnName"]!.GetValue<string>(),
                    FeatureColumnName = t["featureColumnName"]!.GetValue<string>(),
                    InputShape = t["inputShape"]?.AsArray().Select(d => d!.GetValue<int>()).ToArray(),
                    Layers = t["layers"].Deserialize<LayerDefinition[]>(ModelManifest.Json)!,
                    Epochs = t["epochs"]!.GetValue<int>(),
                    BatchSize = t["batchSize"]!.GetValue<int>(),
                    Optimizer = (OptimizerOptions)t["optimizer"].Deserialize(optimizerType, ModelManifest.Json)!,
                    LearningRateSchedule = LearningRateSchedule.FromValues(s["kind"]!.GetValue<string>(), s["epochs"]!.GetValue<int>(), s["value"]!.GetValue<float>(), s["warmupSteps"]!.GetValue<int>()),
                    WeightInitializer = Enum.Parse<WeightInitializer>(t["weightInitializer"]!.GetValue<string>()),
                    ValidationFraction = t["validationFraction"]!.GetValue<float>(),
                    EarlyStoppingPatience = t["earlyStoppingPatience"]!.GetValue<int>(),
                    Shuffle = t["shuffle"]!.GetValue<bool>(),
                    BatchNormScaleL1 = t["batchNormScaleL1"]!.GetValue<float>(),
                    Seed = t["seed"]?.GetValue<int>(),
                },
                Gap = new GapOptions
                {
                    TargetSparsity = g["targetSparsity"]!.GetValue<double>(),
                    Pattern = SparsityPattern.Parse(g["pattern"]!.GetValue<string>()),
                    Allocation = LayerAllocation.Parse(g["allocation"]!.GetValue<string>()),
                    LayerSparsity = g["layerSparsity"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<double>()),
                    ExcludedLayers = [.. g["excludedLayers"]!.AsArray().Select(l => l!.GetValue<string>())],
                    OutputLayerAtHalfRate = g["outputLayerAtHalfRate"]!.GetValue<bool>(),
                    LeaveMisfitLayersDense = g["leaveMisfitLayersDense"]!.GetValue<bool>(),
                    MaskSeed = g["maskSeed"]?.GetValue<int>(),
                    PartitionCount = g["partitionCount"]?.GetValue<int>(),
                    Partitions = [.. g["partitions"]!.AsArray().Select(p => (IList<string>)[.. p!.AsArray().Select(l => l!.GetValue<string>())])],
                    StepEpochs = g["stepEpochs"]?.GetValue<int>(),
                    Rounds = g["rounds"]?.GetValue<int>(),
                    Order = Enum.Parse<GapPartitionOrder>(g["order"]!.GetValue<string>()),
                },
            };
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new ArgumentException($"The P-GaP options sent to the worker cannot be read ({e.Message}).", nameof(text), e);
        }
    }
}
