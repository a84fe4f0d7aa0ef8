using System.Text.Json.Nodes;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>
/// A lottery ticket (Frankle &amp; Carbin, "The Lottery Ticket Hypothesis", 2019): a mask and the weights the masked
/// network starts from (θ₀, or θ_k when rewinding). Save it, load it with <c>mlContext.Sparsity().LoadLotteryTicket</c>, and
/// train it by giving it to a trainer as <c>Options.Sparsity</c>: the trainer's fresh network (which must have the
/// ticket's architecture) takes the ticket's weights and masks, and trains with the masks fixed.
/// </summary>
/// <remarks>The trainer starts its own schedule at step 0; a ticket rewound to step k carries θ_k but not the optimiser state of step k.</remarks>
public sealed class LotteryTicket : SparsityMethod
{
    private const string Key = "lotteryTicket";

    internal LotteryTicket(NeuralNetworkMulticlassModel start, int level, double weightsRemaining, LotteryTicketReset reset, long rewindStep)
    {
        Start = start;
        Level = level;
        WeightsRemaining = weightsRemaining;
        Reset = reset;
        RewindStep = rewindStep;
    }

    /// <summary>The pruning level the ticket comes from (0 = dense).</summary>
    public int Level { get; }

    /// <summary>The fraction of dense and convolution weights the mask keeps.</summary>
    public double WeightsRemaining { get; }

    /// <summary>What the weights were reset to when the ticket was found.</summary>
    public LotteryTicketReset Reset { get; }

    /// <summary>The step whose weights the ticket carries (0 for θ₀).</summary>
    public long RewindStep { get; }

    /// <summary>The masked starting weights (no optimiser state).</summary>
    internal NeuralNetworkMulticlassModel Start { get; }

    /// <summary>Saves the ticket (architecture, masked weights, bit-packed masks; a model file) atomically.</summary>
    public void Save(string filePath)
    {
        var model = new NeuralNetworkMulticlassModel(Start.Network, Start.ClassCount, Start.ClassLabels, Start.FeatureColumnName, [], null,
            new JsonObject
            {
                [Key] = new JsonObject
                {
                    ["level"] = Level, ["weightsRemaining"] = WeightsRemaining, ["reset"] = Reset.ToString(), ["rewindStep"] = RewindStep,
                },
            });
        AtomicFile.Write(filePath, stream => ModelFile.Save(model, stream));
    }

    internal static LotteryTicket Load(string filePath, Engine.WorkerPool pool)
    {
        ITransformer loaded = ModelFile.Load(filePath, pool, "lottery ticket");
        if (loaded is not NeuralNetworkMulticlassModel model || model.Options?[Key] is not JsonObject info)
            throw new ModelFormatException(filePath, ModelFile.ManifestEntry, $"the file is a model file but not a lottery ticket (its options have no '{Key}').", null);
        try
        {
            return new LotteryTicket(model, (int)info["level"]!, (double)info["weightsRemaining"]!,
                Enum.Parse<LotteryTicketReset>((string)info["reset"]!), (long)info["rewindStep"]!);
        }
        catch (Exception e) when (e is NullReferenceException or FormatException or InvalidOperationException or ArgumentException)
        {
            throw new ModelFormatException(filePath, ModelFile.ManifestEntry, $"the lottery ticket's description is damaged: {e.Message}", e);
        }
    }

    internal override SparsityController CreateController(SequentialNetwork network, Optimizer optimizer, int seed, Action<string>? log)
    {
        var source = Start.Network;
        if (network.InputSize != source.InputSize)
            throw new ArgumentException($"The ticket's network takes {source.InputSize} features; the trainer's takes {network.InputSize}.", nameof(NeuralNetworkMulticlassTrainer.Options.Layers));
        if (network.StateArrays.Count != source.StateArrays.Count)
            throw new ArgumentException($"The ticket's network has {source.StateArrays.Count} tensors; the trainer's has {network.StateArrays.Count}: the architectures differ.", nameof(NeuralNetworkMulticlassTrainer.Options.Layers));
        for (int i = 0; i < network.Parameters.Count; i++)
        {
            Parameter ours = network.Parameters[i], theirs = source.Parameters[i];
            if (ours.Name != theirs.Name || !ours.Shape.SequenceEqual(theirs.Shape))
                throw new ArgumentException(
                    $"The ticket's tensor {i} is '{theirs.Name}' of shape {Engine.Shape.Format(theirs.Shape)}; the trainer's network has '{ours.Name}' of shape {Engine.Shape.Format(ours.Shape)}.",
                    nameof(NeuralNetworkMulticlassTrainer.Options.Layers));
        }
        for (int i = 0; i < source.StateArrays.Count; i++) source.StateArrays[i].CopyTo(network.StateArrays[i], 0);
        for (int i = 0; i < source.Parameters.Count; i++)
        {
            network.Parameters[i].Mask = (float[]?)source.Parameters[i].Mask?.Clone();
            network.Parameters[i].SparsityNote = source.Parameters[i].SparsityNote;
        }
        optimizer.ApplyMasks();
        log?.Invoke($"Training the lottery ticket of level {Level} ({WeightsRemaining:P2} of weights remaining).");
        return new FixedMask(network);
    }

    /// <summary>A one-line description, as recorded in model files.</summary>
    public override string ToString() => $"lottery ticket (level {Level}, {WeightsRemaining:P2} of weights remaining, reset {Reset}{(RewindStep > 0 ? $" to step {RewindStep}" : "")})";

    /// <summary>The masks stay as they are; the optimiser keeps pruned weights at 0.</summary>
    private sealed class FixedMask(SequentialNetwork network) : SparsityController
    {
        private readonly IReadOnlyList<PrunableLayer> _layers = PrunableLayer.From(network);

        public override double Sparsity => SparsityReport.PrunableSparsity(_layers);
    }
}
