using System.CommandLine;
using Microsoft.ML.Data;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary><c>evaluate</c>: a saved model's metrics on data, and optionally each row's predicted class.</summary>
internal static class EvaluateCommand
{
    public static System.CommandLine.Command Create()
    {
        var model = CliOptions.Model("The model file (train's, prune's or sweep's --output).");
        var data = new DataArguments(withTestData: false);
        var predictions = new Option<string?>("--predictions") { Description = "Also write each row's predicted class, one per line, to this file." };
        var command = new System.CommandLine.Command("evaluate", "Evaluates a saved model: on the test split of Fashion-MNIST or IDX data, or on every row of a CSV file.")
        {
            model, predictions,
        };
        data.AddTo(command);
        command.SetAction((parse, cancellation) => Task.FromResult(Program.Run(_ =>
        {
            var ml = new MLContext(1);
            var network = ModelFiles.Load(ml, parse.GetValue(model)!);
            var rows = DataSource.ForEvaluation(ml, data.Read(parse), network.ClassNames);
            var scored = network.Transform(rows);
            var metrics = ml.MulticlassClassification.Evaluate(scored);
            var table = CliConsole.Table("metric", "value");
            CliConsole.Row(table, "accuracy (micro)", $"{Sweeps.Percentages.Format(metrics.MicroAccuracy)}");
            CliConsole.Row(table, "accuracy (macro)", $"{Sweeps.Percentages.Format(metrics.MacroAccuracy)}");
            CliConsole.Row(table, "log-loss", $"{metrics.LogLoss:0.0000}");
            CliConsole.Row(table, "rows", $"{metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()):N0}");
            CliConsole.Write(table);
            if (parse.GetValue(predictions) is { } path)
            {
                var names = network.ClassNames ?? [.. Enumerable.Range(0, network.ClassCount).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))];
                var keys = scored.GetColumn<uint>("PredictedLabel").Select(k => k == 0 ? "" : names[(int)k - 1]).ToList();
                Serialization.AtomicFile.Write(path, stream =>
                {
                    using var writer = new StreamWriter(stream, leaveOpen: true);
                    foreach (string key in keys) writer.WriteLine(key);
                });
                CliConsole.Line($"Wrote {keys.Count:N0} predicted classes to '{path}'.");
            }
            return ExitCodes.Success;
        }, cancellation)));
        return command;
    }
}
