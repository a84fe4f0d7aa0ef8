using Spectre.Console;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>
/// Where the tool writes: Spectre.Console's terminal with colours and live progress bars, or, when standard output is
/// redirected (a CI log, a pipe), plain text without control codes and one line per progress step.
/// </summary>
internal static class CliConsole
{
    public static bool Interactive { get; } = !Console.IsOutputRedirected;

    public static IAnsiConsole Out { get; } = Interactive ? AnsiConsole.Console : Plain();

    /// <summary>No colours, no cursor movement, and lines as wide as they are (a redirected console would wrap at 80 columns).</summary>
    private static IAnsiConsole Plain()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(Console.Out),
        });
        console.Profile.Width = 1000;
        return console;
    }

    public static void Line(string text)
    {
        if (Interactive) Out.MarkupLine(Markup.Escape(text));
        else Console.Out.WriteLine(text);
    }


    /// <summary>
    /// Runs <paramref name="work"/> with a progress bar of <paramref name="total"/> steps; the work reports (steps done,
    /// what is happening). Redirected, each report is a line.
    /// </summary>
    public static T WithProgress<T>(string title, int total, Func<Action<int, string>, T> work)
    {
        if (!Interactive)
        {
            Line($"{title} ...");
            return work((done, what) => Line($"  [{done}/{total}] {what}"));
        }
        T result = default!;
        Out.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(Markup.Escape(title), maxValue: total);
                result = work((done, what) =>
                {
                    task.Value = done;
                    task.Description = Markup.Escape($"{title}: {what}");
                });
                task.Value = total;
            });
        return result;
    }

    /// <summary>A table: Spectre's boxes on a terminal, plain ASCII when redirected.</summary>
    public static Table Table(params string[] columns)
    {
        var table = new Table();
        if (!Interactive) table.Border(TableBorder.Ascii);
        foreach (string column in columns) table.AddColumn(Markup.Escape(column));
        return table;
    }

    public static void Row(Table table, params object?[] cells) => table.AddRow([.. cells.Select(c => Markup.Escape(c?.ToString() ?? ""))]);

    public static void Write(Table table) => Out.Write(table);
}
