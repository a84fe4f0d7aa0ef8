using System.CommandLine;
using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>
/// <c>bench</c>: a saved model's single-prediction latency through ML.NET's prediction engine with each weight format
/// on this machine: all formats warmed up together, then timed in alternating rounds, the median of the rounds.
/// </summary>
internal static class BenchCommand
{
    private const int Rounds = 9;

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
            double[][] rounds = CliConsole.WithProgress("timing", Rounds, report => Time(engines.Select(e => e.Engine).ToArray(), input, output, parse.GetValue(seconds), report, token));
            int denseIndex = engines.FindIndex(e => e.Format == WeightFormat.Dense);
            var table = CliConsole.Table("format", "µs per prediction", "speed-up vs dense");
            for (int i = 0; i < engines.Count; i++)
                CliConsole.Row(table, engines[i].Format, $"{Median(rounds[i]):0.00}", denseIndex < 0 ? "" : $"{Median(rounds[denseIndex]) / Median(rounds[i]):0.00}×");
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

    /// <summary>Each engine's mean µs per prediction in each round; the rounds alternate the engines' order.</summary>
    private static double[][] Time(PredictionEngine<Input, Output>[] engines, Input input, Output output, double seconds, Action<int, string> report, CancellationToken cancellation)
    {
        long warm = Stopwatch.GetTimestamp();
        var perCall = new double[engines.Length];
        while (Stopwatch.GetElapsedTime(warm).TotalSeconds < 1.5)
            for (int i = 0; i < engines.Length; i++) perCall[i] = Block(engines[i], input, output, 50) / 50;
        int[] calls = [.. perCall.Select(t => Math.Clamp((int)(seconds / Rounds / engines.Length / t), 20, 10_000_000))];
        var rounds = engines.Select(_ => new double[Rounds]).ToArray();
        for (int r = 0; r < Rounds; r++)
        {
            cancellation.ThrowIfCancellationRequested();
            for (int k = 0; k < engines.Length; k++)
            {
                int i = r % 2 == 0 ? k : engines.Length - 1 - k;
                rounds[i][r] = Block(engines[i], input, output, calls[i]) / calls[i] * 1e6;
            }
            report(r + 1, $"round {r + 1} of {Rounds}");
        }
        return rounds;
    }

    /// <summary>Seconds <paramref name="calls"/> predictions take.</summary>
    private static double Block(PredictionEngine<Input, Output> engine, Input input, Output output, int calls)
    {
        long start = Stopwatch.GetTimestamp();
        for (int c = 0; c < calls; c++) engine.Predict(input, ref output);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
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
