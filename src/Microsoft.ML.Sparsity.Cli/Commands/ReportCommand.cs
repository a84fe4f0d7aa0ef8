using System.CommandLine;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary><c>report</c>: a saved model's per-layer sparsity and the prediction formats its layers take on this machine.</summary>
internal static class ReportCommand
{
    public static System.CommandLine.Command Create()
    {
        var model = CliOptions.Model("The model file.");
        var plot = new Option<string?>("--plot") { Description = "Also draw the per-layer sparsity as bars (.png or .svg)." };
        var command = new System.CommandLine.Command("report", "Prints a saved model's per-layer sparsity table and its layers' prediction formats on this machine.") { model, plot };
        command.SetAction((parse, cancellation) => Task.FromResult(Program.Run(_ =>
        {
            var network = ModelFiles.Load(new MLContext(1), parse.GetValue(model)!);
            var report = network.GetSparsityReport();
            var formats = network.WeightFormats.ToDictionary(f => f.LayerName);
            var table = CliConsole.Table("layer", "shape", "pattern", "weights", "non-zeros", "sparsity", "multiply-adds", "format (1 / batch)");
            foreach (var layer in report.Layers)
                CliConsole.Row(table, layer.Name, string.Join("×", layer.Shape), layer.Pattern, $"{layer.Count:N0}", $"{layer.NonZeros:N0}", $"{Sweeps.Percentages.Format(layer.Sparsity, "0.0")}",
                    $"{layer.SparseMultiplyAdds:N0} of {layer.DenseMultiplyAdds:N0}",
                    formats.TryGetValue(layer.Name, out var f) ? $"{f.SingleExample} / {f.Batched}" : "");
            CliConsole.Row(table, "total", "", "", $"{report.Count:N0}", $"{report.NonZeros:N0}", $"{Sweeps.Percentages.Format(report.Sparsity, "0.0")}", $"{report.SparseMultiplyAdds:N0} of {report.DenseMultiplyAdds:N0}", "");
            CliConsole.Write(table);
            if (parse.GetValue(plot) is { } path)
            {
                Plots.ModelPlots.SaveLayerSparsity(report, path);
                CliConsole.Line($"Wrote '{path}'.");
            }
            return ExitCodes.Success;
        }, cancellation)));
        return command;
    }
}
