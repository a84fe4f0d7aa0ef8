using System.Diagnostics;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests;

/// <summary>The other programs tests run as processes: where the solution build put them, and running one to its end.</summary>
internal static class ChildProcesses
{
    /// <summary>
    /// The output of a project the solution builds, in the configuration and framework of this test assembly:
    /// test/Microsoft.ML.Sparsity.Tests/bin/C/F → <paramref name="project"/>/bin/C/F/<paramref name="assembly"/>.
    /// </summary>
    /// <param name="project">The project's folder from the repository's root, e.g. "src/Microsoft.ML.Sparsity.Cli".</param>
    /// <param name="assembly">The file, e.g. "mlnet-sparsity.dll".</param>
    public static string BuiltOutput(string project, string assembly)
    {
        var binary = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string root = Path.Combine(binary.FullName, "..", "..", "..", "..", "..");
        string path = Path.GetFullPath(Path.Combine(root, project, "bin", binary.Parent!.Name, binary.Name, assembly));
        Assert.True(File.Exists(path), $"Build {project} first (the solution build does): {path} is missing.");
        return path;
    }

    /// <summary>
    /// Runs <paramref name="program"/> to its end (both outputs read as it writes them) and returns its exit code and outputs;
    /// <paramref name="temporaryFolder"/>, if given, is the process's TMPDIR.
    /// </summary>
    public static (int Exit, string Out, string Error) Run(string program, IEnumerable<string> args, string? folder = null,
        int timeoutMilliseconds = 600_000, string? temporaryFolder = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (folder is not null) start.WorkingDirectory = folder;
        if (temporaryFolder is not null) start.Environment["TMPDIR"] = temporaryFolder;
        foreach (string argument in args) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(timeoutMilliseconds), $"{program} {string.Join(' ', args)} did not end within {timeoutMilliseconds / 1000} s");
        return (process.ExitCode, output, error.GetAwaiter().GetResult());
    }
}
