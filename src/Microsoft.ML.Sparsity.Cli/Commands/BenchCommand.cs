using System.CommandLine;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>
/// <c>bench</c>: a saved model's single-prediction latency through ML.NET's prediction engine with each weight format
/// on this machine, measured as the sweep measures its trials (all warmed up together, alternating rounds, the median).
/// </summary>
internal static class BenchCommand
{
    public static System.CommandLine.Command Create()
    {
        var model = CliOptions.Model("The model file.");
        var seconds = new Option<double>("--seconds") { Description = "Timing per format, after a 1.5 s warm-up.", DefaultValueFactory = _ => 2 };
        var command = new System.CommandLine.Command("bench", "Times a saved model's single predictions with each weight format (the automatic choice, dense, CSR, sliced ELLPACK, N:M) on this machine.")
        {
            model, seconds,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(Program.Run(token =>
        {
            if (!(parse.GetValue(seconds) is > 0 and < 3600)) throw new ArgumentException("--seconds must be positive (and under an hour).", "--seconds");
            var ml = new MLContext(1);
            var network = ModelFiles.Load(ml, parse.GetValue(model)!);
            var engines = new List<(WeightFormat Format, PredictionEngine<Input, Output> Engine)>();
            var skipped = new List<(WeightFormat, string)>();
            foreach (var format in new[] { WeightFormat.Auto, WeightFormat.Dense, WeightFormat.Csr, WeightFormat.SlicedEll, WeightFormat.NM })
            {
                try
                {
                    engines.Add((format, Engine(ml, network.WithWeightFormats(format))));
                }
                catch (ArgumentException e)
                {
                    skipped.Add((format, e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal).ReplaceLineEndings(" ")));
                }
            }
            var input = new Input { Features = new float[network.Layers[0].InputShape.Aggregate(1, (a, b) => a * b)] };
            var random = new Random(1);
            for (int i = 0; i < input.Features.Length; i++) input.Features[i] = random.NextSingle();
            var output = new Output();
            double[] microseconds = CliConsole.WithProgress("timing", Sweeps.LatencyMeasurement.Rounds, report =>
                Sweeps.LatencyMeasurement.Medians([.. engines.Select(e => (Action)(() => e.Engine.Predict(input, ref output)))],
                    TimeSpan.FromSeconds(parse.GetValue(seconds)), token, round => report(round, $"round {round} of {Sweeps.LatencyMeasurement.Rounds}")));
            int denseIndex = engines.FindIndex(e => e.Format == WeightFormat.Dense);
            var table = CliConsole.Table("format", "µs per prediction", "speed-up vs dense");
            for (int i = 0; i < engines.Count; i++)
                CliConsole.Row(table, engines[i].Format, $"{microseconds[i]:0.00}", denseIndex < 0 ? "" : $"{microseconds[denseIndex] / microseconds[i]:0.00}×");
            foreach (var (_, engine) in engines) engine.Dispose(); // the package's models are not IDisposable: this frees the engine's own buffers only
            foreach (var (format, why) in skipped) CliConsole.Row(table, format, "n/a", why);
            CliConsole.Write(table);
            return ExitCodes.Success;
        }, cancellation)));
        return command;
    }

    private static PredictionEngine<Input, Output> Engine(MLContext ml, NeuralNetworkMulticlassModel model)
    {
        var schema = SchemaDefinition.Create(typeof(Input));
        schema[nameof(Input.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, model.Layers[0].InputShape.Aggregate(1, (a, b) => a * b));
        return ml.Model.CreatePredictionEngine<Input, Output>(model, inputSchemaDefinition: schema);
    }

    public sealed class Input
    {
        public float[] Features { get; set; } = [];
    }

    public sealed class Output
    {
        public float[] Score { get; set; } = [];
    }
}
