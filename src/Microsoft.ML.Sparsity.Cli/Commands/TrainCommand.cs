using System.CommandLine;
using Microsoft.ML.Sparsity.Models;
using Microsoft.ML.Sparsity.Sweeps;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary><c>train</c>: one model, dense or with a sparsity method, evaluated on the test data and saved.</summary>
internal static class TrainCommand
{
    public static System.CommandLine.Command Create()
    {
        var data = new DataArguments();
        var architecture = CliOptions.Architecture();
        var method = new Option<string>("--method") { Description = $"The sparsity method: {CliOptions.MethodHelp}.", DefaultValueFactory = _ => "gmp" };
        var sparsity = new Option<double>("--sparsity") { Description = "The target sparsity, in (0, 1) (not for dense or nm).", DefaultValueFactory = _ => 0.9 };
        var pattern = new Option<string?>("--pattern") { Description = "The pattern: unstructured (default), N:M (nm's default 2:4), block RxC or output channels (gmp and random)." };
        var allocation = new Option<string>("--allocation") { Description = "How the sparsity is shared among layers: ERK, ER, uniform or global.", DefaultValueFactory = _ => "ERK" };
        var epochs = CliOptions.Epochs(20);
        var rate = CliOptions.LearningRate();
        var seed = CliOptions.Seed();
        var threads = CliOptions.Threads();
        var output = CliOptions.Output("Where to save the model (a zip any ML.NET application loads).");
        var project = CliOptions.Project();
        var plot = new Option<string?>("--plot") { Description = "Also draw the training curves (loss, test accuracy, sparsity per epoch; .png or .svg)." };
        var command = new System.CommandLine.Command("train", "Trains a model on the data, dense or sparse, evaluates it on the test data and saves it.")
        {
            architecture, method, sparsity, pattern, allocation, epochs, rate, seed, threads, output, project, plot,
        };
        data.AddTo(command);
        command.SetAction((parse, cancellation) => Task.FromResult(Program.Run(token =>
        {
            var ml = new MLContext(parse.GetValue(seed));
            string saveTo = CliOptions.CheckedOutput(parse.GetValue(output)!);
            string? projectFolder = parse.GetValue(project) is { } pr ? CliOptions.CheckedFolder(pr, "--project") : null;
            var chosen = CliOptions.Method(parse.GetValue(method)!);
            if (chosen is not (SweepMethod.Dense or SweepMethod.NMFromScratch) && !(parse.GetValue(sparsity) is > 0 and < 1))
                throw new ArgumentException($"--sparsity must be in (0, 1), not {parse.GetValue(sparsity)}.", "--sparsity");
            if (parse.GetValue(pattern) is { } named) Masks.SparsityPattern.Parse(named); // refused here, naming the pattern, rather than deep in training
            var settings = new TrialSettings(chosen,
                chosen is SweepMethod.Dense or SweepMethod.NMFromScratch ? null : parse.GetValue(sparsity),
                chosen == SweepMethod.Dense ? null : parse.GetValue(pattern) ?? (chosen == SweepMethod.NMFromScratch ? "2:4" : "unstructured"),
                chosen is SweepMethod.Dense or SweepMethod.NMFromScratch ? null : parse.GetValue(allocation),
                parse.GetValue(epochs), parse.GetValue(rate), 1, parse.GetValue(seed));
            var options = settings.ToTrainerOptions(ml, CliOptions.Layers(parse.GetValue(architecture)!), parse.GetValue(threads));
            var loaded = DataSource.ForTraining(ml, data.Read(parse), parse.GetValue(seed));
            CliConsole.Line($"Training on {loaded.Description}: {settings}.");
            var model = Train(ml, options, loaded, token);
            Report(ml, model, loaded.Test);
            Save(ml, model, loaded, saveTo, projectFolder);
            if (parse.GetValue(plot) is { } path)
            {
                Plots.ModelPlots.SaveTrainingCurves(model, path);
                CliConsole.Line($"Wrote '{path}'.");
            }
            return ExitCodes.Success;
        }, cancellation)));
        return command;
    }

    /// <summary>Trains with a progress bar over the epochs, the test accuracy shown after each.</summary>
    public static NeuralNetworkMulticlassModel Train(MLContext ml, NeuralNetworkMulticlassTrainer.Options options, TrainingData data, CancellationToken cancellation,
        NeuralNetworkMulticlassModel? start = null)
    {
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
        return CliConsole.WithProgress("training", options.Epochs, report =>
        {
            var progress = new Training.SynchronousProgress<TrainingProgress>(p => report(p.Epoch,
                $"epoch {p.Epoch}/{p.Epochs}, loss {p.TrainingLoss:0.0000}, test accuracy {Sweeps.Percentages.Format(p.ValidationAccuracy)}" + (p.Sparsity is { } s ? $", sparsity {Sweeps.Percentages.Format(s, "0.0")}" : "")));
            return start is null
                ? trainer.Fit(data.Train, data.Test, progress, cancellation)
                : trainer.Fit(data.Train, start, data.Test, progress, cancellation);
        });
    }

    /// <summary>Prints the model's test metrics and sparsity.</summary>
    public static void Report(MLContext ml, NeuralNetworkMulticlassModel model, IDataView test)
    {
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        var report = model.GetSparsityReport();
        CliConsole.Line($"Test accuracy {Sweeps.Percentages.Format(metrics.MicroAccuracy)} (macro {Sweeps.Percentages.Format(metrics.MacroAccuracy)}), log-loss {metrics.LogLoss:0.0000}; " +
            $"sparsity {Sweeps.Percentages.Format(report.Sparsity, "0.0")} ({report.NonZeros:N0} of {report.Count:N0} weights), multiply-adds {report.SparseMultiplyAdds:N0} of {report.DenseMultiplyAdds:N0}.");
    }

    /// <summary>Saves the model and, when asked, the consumption project beside it.</summary>
    public static void Save(MLContext ml, NeuralNetworkMulticlassModel model, TrainingData data, string output, string? project)
    {
        ModelFiles.Save(ml, model, data.Train, output);
        CliConsole.Line($"Saved '{output}' ({new FileInfo(output).Length:N0} bytes).");
        if (project is null) return;
        ConsumptionProject.Write(project, output, InputSize(data.Train), data.Images);
        CliConsole.Line($"Wrote the consumption project '{project}': cd {project} && dotnet run -- {(data.Images is null ? "rows.csv" : "image.png ...")}");
    }

    private static int InputSize(IDataView data) => (data.Schema["Features"].Type as Microsoft.ML.Data.VectorDataViewType)?.Size ?? 1;
}
