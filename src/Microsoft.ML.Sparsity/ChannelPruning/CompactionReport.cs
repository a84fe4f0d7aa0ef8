using System.Globalization;
using System.Text;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// What compaction does to a model (<c>mlContext.Sparsity().GetCompactionReport</c>): every layer before and after,
/// with its output shape, parameters and multiply-adds per example, and the pruned channels that had to stay.
/// </summary>
public sealed class CompactionReport
{
    internal CompactionReport(IReadOnlyList<LayerSummary> before, IReadOnlyList<LayerSummary> after, IReadOnlyList<string> keptPrunedChannels)
    {
        Before = before;
        After = after;
        KeptPrunedChannels = keptPrunedChannels;
    }

    /// <summary>The layers of the channel-pruned model, in network order.</summary>
    public IReadOnlyList<LayerSummary> Before { get; }

    /// <summary>The layers of the compact model: the same layers (same names, same order), with fewer channels.</summary>
    public IReadOnlyList<LayerSummary> After { get; }

    /// <summary>
    /// Pruned channels the compact model keeps, one line per layer with the reason: the network's outputs; a non-zero
    /// constant output feeding a padded convolution (its effect depends on the position, so removing the channel would
    /// change predictions); a layer whose every channel is pruned (it keeps one).
    /// </summary>
    public IReadOnlyList<string> KeptPrunedChannels { get; }

    /// <summary>All trainable values before compaction.</summary>
    public long ParametersBefore => Before.Sum(l => l.ParameterCount);

    /// <summary>All trainable values after compaction.</summary>
    public long ParametersAfter => After.Sum(l => l.ParameterCount);

    /// <summary>Multiply-adds per example before compaction (dense count: every weight, pruned or not).</summary>
    public long MultiplyAddsBefore => Before.Sum(l => l.MultiplyAdds);

    /// <summary>Multiply-adds per example after compaction.</summary>
    public long MultiplyAddsAfter => After.Sum(l => l.MultiplyAdds);

    /// <summary>A fixed-width table, one row per layer and a total row, then the kept pruned channels.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"{"layer",-10} {"output before",-15} {"output after",-15} {"params before",14} {"params after",14} {"MACs before",14} {"MACs after",14}");
        for (int i = 0; i < Before.Count; i++)
        {
            LayerSummary b = Before[i], a = After[i];
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{b.Name,-10} {Engine.Shape.Format(b.OutputShape),-15} {Engine.Shape.Format(a.OutputShape),-15} {b.ParameterCount,14:N0} {a.ParameterCount,14:N0} {b.MultiplyAdds,14:N0} {a.MultiplyAdds,14:N0}");
        }
        sb.Append(CultureInfo.InvariantCulture,
            $"{"total",-10} {"",-15} {"",-15} {ParametersBefore,14:N0} {ParametersAfter,14:N0} {MultiplyAddsBefore,14:N0} {MultiplyAddsAfter,14:N0}");
        foreach (string line in KeptPrunedChannels) sb.AppendLine().Append(line);
        return sb.ToString();
    }
}
