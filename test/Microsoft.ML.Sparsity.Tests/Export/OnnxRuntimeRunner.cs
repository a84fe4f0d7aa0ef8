using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML;

namespace Microsoft.ML.Sparsity.Tests.Export;

/// <summary>One model to run in ONNX Runtime: its file, and a float32 input batch of the given shape.</summary>
internal sealed record OnnxJob(string ModelPath, float[] Input, int[] Shape);

/// <summary>What ONNX Runtime returned for one job.</summary>
internal sealed class OnnxResult
{
    public required string[] InputNames { get; init; }
    public required string[] OutputNames { get; init; }
    public required Dictionary<string, (int[] Dims, double[] Data)> Outputs { get; init; }
}

/// <summary>
/// Runs models in ONNX Runtime in-process (the Microsoft.ML.OnnxRuntime package, CPU): either directly, a whole batch
/// through one <see cref="InferenceSession"/>, or the way an ML.NET application consumes the export, through
/// <c>mlContext.Transforms.ApplyOnnxModel</c> and a <c>PredictionEngine</c>, one example at a time.
/// </summary>
internal static class OnnxRuntimeRunner
{
    private static readonly Lazy<bool> PythonOnnxPresent = new(() => RunProcess("/usr/bin/python3", ["-c", "import onnx"]).ExitCode == 0);

    public static IReadOnlyList<OnnxResult> Run(IReadOnlyList<OnnxJob> jobs) => jobs.Select(Run).ToArray();

    /// <summary>Runs the job's batch through one <see cref="InferenceSession"/> on the model's first input.</summary>
    public static OnnxResult Run(OnnxJob job)
    {
        using var session = new InferenceSession(job.ModelPath);
        using var input = OrtValue.CreateTensorValueFromMemory(job.Input, job.Shape.Select(d => (long)d).ToArray());
        using var runOptions = new RunOptions();
        using var fetched = session.Run(runOptions, [session.InputNames[0]], [input], session.OutputNames);
        var outputs = new Dictionary<string, (int[], double[])>();
        for (int i = 0; i < fetched.Count; i++)
        {
            string name = session.OutputNames[i];
            var info = fetched[i].GetTensorTypeAndShape();
            double[] data = info.ElementDataType switch
            {
                TensorElementType.Float => Array.ConvertAll(fetched[i].GetTensorDataAsSpan<float>().ToArray(), v => (double)v),
                TensorElementType.Int64 => Array.ConvertAll(fetched[i].GetTensorDataAsSpan<long>().ToArray(), v => (double)v),
                _ => throw new NotSupportedException($"Output '{name}' of {job.ModelPath} is {info.ElementDataType}; the tests read float32 and int64 outputs."),
            };
            outputs[name] = (info.Shape.Select(d => checked((int)d)).ToArray(), data);
        }
        return new OnnxResult { InputNames = [.. session.InputNames], OutputNames = [.. session.OutputNames], Outputs = outputs };
    }

    /// <summary>
    /// Scores the job's examples as an ML.NET application does: <c>ApplyOnnxModel(modelFile)</c> fitted on an
    /// <see cref="IDataView"/> with a <c>features</c> vector column, then a <c>PredictionEngine</c> called once per
    /// example. The outputs are the per-example <c>probabilities</c> and <c>predicted_label</c> columns stacked into a
    /// batch, so they compare with <see cref="Run(OnnxJob)"/>'s.
    /// </summary>
    public static OnnxResult RunThroughMlNet(OnnxJob job)
    {
        int batch = job.Shape[0], features = job.Input.Length / batch;
        var mlContext = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(MlNetInput));
        schema["features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, features);
        var rows = Enumerable.Range(0, batch).Select(b => new MlNetInput { Features = job.Input[(b * features)..((b + 1) * features)] }).ToArray();
        var data = mlContext.Data.LoadFromEnumerable(rows, schema);

        using var transformer = mlContext.Transforms.ApplyOnnxModel(job.ModelPath).Fit(data);
        using var engine = mlContext.Model.CreatePredictionEngine<MlNetInput, MlNetOutput>(transformer, inputSchemaDefinition: schema);
        var probabilities = new List<double>();
        var labels = new List<double>();
        int classes = 0;
        foreach (var row in rows)
        {
            var output = engine.Predict(row);
            classes = output.Probabilities.Length;
            probabilities.AddRange(output.Probabilities.Select(p => (double)p));
            labels.AddRange(output.PredictedLabel.Select(l => (double)l));
        }
        return new OnnxResult
        {
            // Fit binds the model's inputs to columns by name: it succeeded on a view whose only column is 'features'.
            InputNames = [.. data.Schema.Select(c => c.Name)],
            OutputNames = [.. transformer.GetOutputSchema(data.Schema).Select(c => c.Name).Except(data.Schema.Select(c => c.Name))],
            Outputs = new()
            {
                ["probabilities"] = ([batch, classes], probabilities.ToArray()),
                ["predicted_label"] = ([labels.Count], labels.ToArray()),
            },
        };
    }

    /// <summary>
    /// Runs onnx.checker.check_model (with shape inference) on the files when Debian's python3-onnx is installed;
    /// returns false (checking nothing) when it is not. The checker insists on int64 indices in sparse tensors, where the
    /// export's sparse weights (Constant nodes' sparse_value) have int16 or int32 ones, which ONNX Runtime reads: they
    /// are widened to int64 first, so the checker still checks that they are in range and ascending.
    /// </summary>
    public static bool CheckWithOnnxChecker(IEnumerable<string> modelPaths)
    {
        if (!PythonOnnxPresent.Value) return false;
        const string script = """
            import onnx, sys
            from onnx import numpy_helper
            for p in sys.argv[1:]:
                model = onnx.load(p)
                for sparse in [a.sparse_tensor for n in model.graph.node for a in n.attribute if a.name == "sparse_value"]:
                    sparse.indices.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(sparse.indices).astype("int64"), sparse.indices.name))
                onnx.checker.check_model(model, full_check=True)
            """;
        var (exitCode, output) = RunProcess("/usr/bin/python3", ["-c", script, .. modelPaths]);
        if (exitCode != 0) throw new InvalidOperationException($"onnx.checker rejected the model:\n{output}");
        return true;
    }

    private static (int ExitCode, string Output) RunProcess(string fileName, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, stdout + stderr.Result);
        }
    }

    private sealed class MlNetInput
    {
        [ColumnName("features")]
        public float[] Features = [];
    }

    private sealed class MlNetOutput
    {
        [ColumnName("probabilities")]
        public float[] Probabilities = [];

        [ColumnName("predicted_label")]
        public long[] PredictedLabel = [];
    }
}
