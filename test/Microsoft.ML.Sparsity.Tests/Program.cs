using System.Diagnostics;
using Microsoft.ML.Sparsity.Serialization;
using Microsoft.ML.Sparsity.Tests.Serialization;

namespace Microsoft.ML.Sparsity.Tests;

/// <summary>
/// The test assembly as a program (its project turns off the test SDK's generated, empty one): the test host never
/// calls <see cref="Main"/>; tests run the assembly with <c>dotnet exec</c> for what needs a process of its own, such as
/// one killed in the middle of a save.
/// </summary>
internal static class Program
{
    /// <summary>Saves a model to the path given and kills itself (SIGKILL) once the first bytes are on disk.</summary>
    public const string KillMidSave = "kill-mid-save";

    /// <summary>Printed just before the kill, so the test knows it happened mid-write.</summary>
    public const string Killing = "killing this process mid-write";

    /// <summary>Flushes what was written, says so, and kills this process (SIGKILL) in the middle of the save.</summary>
    private static void Kill()
    {
        Console.Out.WriteLine(Killing);
        Console.Out.Flush();
        Process.GetCurrentProcess().Kill();
        Thread.Sleep(Timeout.Infinite);
    }

    /// <summary>Runs <see cref="Sweeps.SweepChild"/>'s sweep journaled to the folder given, printing a line as each trial ends (the test kills it).</summary>
    public const string Sweep = "sweep";

    public static int Main(string[] args)
    {
        if (args is [Sweep, var folder])
        {
            Sweeps.SweepChild.Run(folder, Console.Out);
            return 0;
        }
        if (args is not [KillMidSave, var path])
        {
            Console.Error.WriteLine($"usage: dotnet exec Microsoft.ML.Sparsity.Tests.dll {KillMidSave} <path> | {Sweep} <folder>");
            return 2;
        }
        var model = HostileFiles.PrunedModel();
        AtomicFile.Write(path, s => ModelFile.Save(model, s), s => new InterruptedStream(s, 100, Kill));
        Console.Error.WriteLine("the save finished: it was not killed");
        return 1;
    }
}
