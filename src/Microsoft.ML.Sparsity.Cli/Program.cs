using System.CommandLine;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>The tool's exit codes (also listed by <c>--help</c>).</summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>The command line does not parse (System.CommandLine's own code): unknown command or option, a value of the wrong type.</summary>
    public const int Usage = 1;

    /// <summary>Bad input: a file that is missing or cannot be read, data that cannot be parsed, an option value out of range.</summary>
    public const int BadInput = 2;

    /// <summary>A sweep ended, but no trial meets the constraints asked for.</summary>
    public const int NoModelMeetsConstraints = 3;

    /// <summary>The cluster (its workers or redis-server) could not be reached in time.</summary>
    public const int Unavailable = 69;

    /// <summary>An internal error (a bug: please report it with the message printed).</summary>
    public const int InternalError = 70;

    /// <summary>Cancelled (Ctrl+C); a sweep's finished trials stay in its journal.</summary>
    public const int Cancelled = 130;
}

internal static class Program
{
    public static int Main(string[] args)
    {
        System.Globalization.CultureInfo.DefaultThreadCurrentCulture = System.Globalization.CultureInfo.InvariantCulture;
        System.Globalization.CultureInfo.CurrentCulture = System.Globalization.CultureInfo.InvariantCulture;
        var root = new RootCommand(
            "Train, prune, sweep, evaluate, report, export and benchmark sparse neural networks for ML.NET.\n" +
            "Exit codes: 0 success, 1 bad command line, 2 bad input (file, data, option value), 3 no sweep trial meets the constraints, 69 cluster unreachable, 70 internal error, 130 cancelled.")
        {
            TrainCommand.Create(),
            PruneCommand.Create(),
            SweepCommand.Create(),
            EvaluateCommand.Create(),
            ReportCommand.Create(),
            ExportCommand.Create(),
            BenchCommand.Create(),
            WorkerCommand.Create(),
        };
        return root.Parse(args).Invoke();
    }

    /// <summary>
    /// Runs a command's body, turning the errors a user can fix into one line on standard error and an exit code (the
    /// full exception is for bugs, which still crash with their stack trace).
    /// </summary>
    public static int Run(Func<CancellationToken, int> body, CancellationToken cancellation)
    {
        try
        {
            return body(cancellation);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            Console.Error.WriteLine("error: cancelled.");
            return ExitCodes.Cancelled;
        }
        catch (TimeoutException e)
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            return ExitCodes.Unavailable;
        }
        catch (NoModelException e)
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            return ExitCodes.NoModelMeetsConstraints;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException or FormatException or InvalidOperationException)
        {
            string message = e is ArgumentException { ParamName: { } name } ? e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;
            Console.Error.WriteLine($"error: {OneLine(message)}");
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Console.Error.WriteLine($"error: internal error, please report it: {e.GetType().Name}: {OneLine(e.Message)}");
            Console.Error.WriteLine(e.StackTrace);
            return ExitCodes.InternalError;
        }
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");
}

/// <summary>No trial of a sweep meets the constraints asked for (exit code 3).</summary>
internal sealed class NoModelException(string message, Exception inner) : Exception(message, inner);
