using System.Globalization;
using System.Text;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>One layer of a trained network: its shapes, parameter count and cost.</summary>
public sealed class LayerSummary
{
    internal LayerSummary(Layer layer)
    {
        Name = layer.Name;
        Kind = layer.GetType().Name.Replace("Layer", "", StringComparison.Ordinal);
        InputShape = layer.InputShape;
        OutputShape = layer.OutputShape;
        ParameterCount = layer.Parameters.Sum(p => (long)p.Length);
        WeightCount = layer.Parameters.Where(p => p.Kind == ParameterKind.Weight).Sum(p => (long)p.Length);
        MultiplyAdds = layer.MultiplyAdds;
    }

    /// <summary>The layer's name, e.g. <c>dense0</c>.</summary>
    public string Name { get; }

    /// <summary>The layer type, e.g. <c>Dense</c>, <c>Conv2d</c>.</summary>
    public string Kind { get; }

    /// <summary>The shape of one example's input.</summary>
    public IReadOnlyList<int> InputShape { get; }

    /// <summary>The shape of one example's output.</summary>
    public IReadOnlyList<int> OutputShape { get; }

    /// <summary>All trainable values (weights, biases, normalisation parameters).</summary>
    public long ParameterCount { get; }

    /// <summary>The weights (the values pruning acts on).</summary>
    public long WeightCount { get; }

    /// <summary>Multiply-adds per example in the forward pass.</summary>
    public long MultiplyAdds { get; }

    /// <summary>Formats summaries as a fixed-width text table with a total row.</summary>
    public static string FormatTable(IReadOnlyList<LayerSummary> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"layer",-10} {"kind",-18} {"input",-14} {"output",-14} {"parameters",12} {"MACs/example",14}");
        foreach (var l in layers)
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{l.Name,-10} {l.Kind,-18} {Shape.Format(l.InputShape),-14} {Shape.Format(l.OutputShape),-14} {l.ParameterCount,12:N0} {l.MultiplyAdds,14:N0}");
        sb.Append(CultureInfo.InvariantCulture,
            $"{"total",-10} {"",-18} {"",-14} {"",-14} {layers.Sum(l => l.ParameterCount),12:N0} {layers.Sum(l => l.MultiplyAdds),14:N0}");
        return sb.ToString();
    }
}
