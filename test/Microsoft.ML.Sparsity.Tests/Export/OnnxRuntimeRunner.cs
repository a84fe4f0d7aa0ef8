using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

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
/// Runs models in a real ONNX Runtime through <c>test/onnxruntime/run.mjs</c> (onnxruntime-node, installed by
/// <c>build/setup.sh</c>). Several models go through one node process.
/// </summary>
internal static class OnnxRuntimeRunner
{
    private static readonly Lazy<string> RunnerDirectory = new(FindRunner);
    private static readonly Lazy<bool> PythonOnnxPresent = new(() => RunProcess("/usr/bin/python3", ["-c", "import onnx"], null).ExitCode == 0);

    public static IReadOnlyList<OnnxResult> Run(IReadOnlyList<OnnxJob> jobs)
    {
        string runnerDirectory = RunnerDirectory.Value;
        var work = Directory.CreateTempSubdirectory("sparsity-onnx-run-");
        try
        {
            var jobList = new List<object>();
            for (int i = 0; i < jobs.Count; i++)
            {
                string input = Path.Combine(work.FullName, $"input{i}.f32");
                File.WriteAllBytes(input, MemoryMarshal.AsBytes(jobs[i].Input.AsSpan()).ToArray());
                jobList.Add(new { model = Path.GetFullPath(jobs[i].ModelPath), input, shape = jobs[i].Shape });
            }
            string jobsPath = Path.Combine(work.FullName, "jobs.json");
            string resultsPath = Path.Combine(work.FullName, "results.json");
            File.WriteAllText(jobsPath, JsonSerializer.Serialize(jobList));

            var (exitCode, output) = RunProcess("node", [Path.Combine(runnerDirectory, "run.mjs"), jobsPath, resultsPath], runnerDirectory);
            if (exitCode != 0) throw new InvalidOperationException($"ONNX Runtime failed (node exit code {exitCode}):\n{output}");
            using var results = JsonDocument.Parse(File.ReadAllText(resultsPath));
            return results.RootElement.EnumerateArray().Select(Parse).ToArray();
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Runs onnx.checker.check_model (with shape inference) on the files when Debian's python3-onnx is installed;
    /// returns false (checking nothing) when it is not.
    /// </summary>
    public static bool CheckWithOnnxChecker(IEnumerable<string> modelPaths)
    {
        if (!PythonOnnxPresent.Value) return false;
        const string script = "import onnx, sys\nfor p in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(p), full_check=True)\n";
        var (exitCode, output) = RunProcess("/usr/bin/python3", ["-c", script, .. modelPaths], null);
        if (exitCode != 0) throw new InvalidOperationException($"onnx.checker rejected the model:\n{output}");
        return true;
    }

    private static OnnxResult Parse(JsonElement result)
    {
        var outputs = new Dictionary<string, (int[], double[])>();
        foreach (var output in result.GetProperty("outputs").EnumerateObject())
        {
            int[] dims = output.Value.GetProperty("dims").EnumerateArray().Select(d => d.GetInt32()).ToArray();
            double[] data = output.Value.GetProperty("data").EnumerateArray().Select(d => d.GetDouble()).ToArray();
            outputs[output.Name] = (dims, data);
        }
        return new OnnxResult
        {
            InputNames = result.GetProperty("inputNames").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            OutputNames = result.GetProperty("outputNames").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            Outputs = outputs,
        };
    }

    private static string FindRunner()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Sparsity.sln"))) directory = directory.Parent;
        if (directory is null)
            throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} holds Sparsity.sln: cannot find test/onnxruntime.");
        string runner = Path.Combine(directory.FullName, "test", "onnxruntime");
        if (!Directory.Exists(Path.Combine(runner, "node_modules", "onnxruntime-node")))
            throw new InvalidOperationException(
                $"ONNX Runtime for the export tests is not installed ({runner}/node_modules/onnxruntime-node is missing): run build/setup.sh.");
        return runner;
    }

    private static (int ExitCode, string Output) RunProcess(string fileName, IEnumerable<string> arguments, string? workingDirectory)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            if (fileName == "node")
                throw new InvalidOperationException("Node.js (node) is required by the ONNX export tests: install it, then run build/setup.sh.", e);
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
}
