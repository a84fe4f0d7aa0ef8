using System.CommandLine;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary><c>export</c>: a saved model as ONNX (opset 13) for ONNX Runtime or ML.NET's ApplyOnnxModel.</summary>
internal static class ExportCommand
{
    public static System.CommandLine.Command Create()
    {
        var model = CliOptions.Model("The model file.");
        var output = CliOptions.Output("The ONNX file to write.");
        var command = new System.CommandLine.Command("export", "Exports a saved model to ONNX (opset 13): input 'features', outputs 'probabilities' and 'predicted_label'.") { model, output };
        command.SetAction((parse, cancellation) => Task.FromResult(Program.Run(_ =>
        {
            var ml = new MLContext(1);
            string saveTo = CliOptions.CheckedOutput(parse.GetValue(output)!);
            ml.Sparsity().ConvertToOnnx(ModelFiles.Load(ml, parse.GetValue(model)!), saveTo);
            CliConsole.Line($"Wrote '{saveTo}' ({new FileInfo(saveTo).Length:N0} bytes).");
            return ExitCodes.Success;
        }, cancellation)));
        return command;
    }
}
