using System.CommandLine;
using Microsoft.ML.Sparsity.Masks;
using Microsoft.ML.Sparsity.Pruning;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary><c>prune</c>: one-shot magnitude pruning of a saved model, optionally fine-tuned with the mask fixed.</summary>
internal static class PruneCommand
{
    public static System.CommandLine.Command Create()
    {
        var model = CliOptions.Model("The trained model file.");
        var data = new DataArguments();
        var sparsity = new Option<double>("--sparsity") { Description = "The target sparsity, in [0, 1) (an N:M pattern fixes its own).", DefaultValueFactory = _ => 0.9 };
        var pattern = new Option<string>("--pattern") { Description = "unstructured, N:M (e.g. 2:4), block RxC or output channels.", DefaultValueFactory = _ => "unstructured" };
        var allocation = new Option<string>("--allocation") { Description = "uniform, global, ER or ERK.", DefaultValueFactory = _ => "uniform" };
        var epochs = CliOptions.Epochs(0);
        epochs.Description = "Fine-tuning epochs after pruning, with the mask fixed (0: none).";
        var rate = CliOptions.LearningRate();
        rate.DefaultValueFactory = _ => 0.01;
        var seed = CliOptions.Seed();
        var threads = CliOptions.Threads();
        var output = CliOptions.Output("Where to save the pruned model.");
        var command = new System.CommandLine.Command("prune", "Prunes a trained model once by weight magnitude, optionally fine-tunes it, evaluates it on the test data and saves it.")
        {
            model, sparsity, pattern, allocation, epochs, rate, seed, threads, output,
        };
        data.AddTo(command);
        command.SetAction((parse, cancellation) => Task.FromResult(Program.Run(token =>
        {
            var ml = new MLContext(parse.GetValue(seed));
            string saveTo = CliOptions.CheckedOutput(parse.GetValue(output)!);
            var network = ModelFiles.Load(ml, parse.GetValue(model)!);
            var options = new PruningOptions
            {
                TargetSparsity = parse.GetValue(sparsity),
                Pattern = SparsityPattern.Parse(parse.GetValue(pattern)!),
                Allocation = LayerAllocation.Parse(parse.GetValue(allocation)!),
                Schedule = PruningSchedule.AtInitialization(),
            };
            var loaded = DataSource.ForTraining(ml, data.Read(parse), parse.GetValue(seed));
            CliConsole.Line("Before pruning:");
            TrainCommand.Report(ml, network, loaded.Test);
            var pruned = ml.Sparsity().Prune(network, options);
            CliConsole.Line($"Pruned ({options.Pattern}, {options.Allocation}):");
            TrainCommand.Report(ml, pruned, loaded.Test);
            if (parse.GetValue(epochs) > 0)
            {
                var tuning = new NeuralNetworkMulticlassTrainer.Options
                {
                    Epochs = parse.GetValue(epochs),
                    Optimizer = new SgdOptimizerOptions { LearningRate = (float)parse.GetValue(rate), Momentum = 0.9f },
                    LearningRateSchedule = LearningRateSchedule.Cosine(),
                    Seed = parse.GetValue(seed),
                    NumberOfThreads = parse.GetValue(threads),
                };
                pruned = TrainCommand.Train(ml, tuning, loaded, token, pruned);
                CliConsole.Line("Fine-tuned:");
                TrainCommand.Report(ml, pruned, loaded.Test);
            }
            TrainCommand.Save(ml, pruned, loaded, saveTo, null);
            return ExitCodes.Success;
        }, cancellation)));
        return command;
    }
}
