// How busy the machine is with other work while a sample measures times, so that a printed time comes with the reason
// it may be slow. Linked into every sample (see the samples' .csproj files).
using System.Diagnostics;
using System.Globalization;

/// <summary>
/// The CPU that other processes (and, on a virtual machine, the hypervisor's steal) took during an interval, from
/// Linux's <c>/proc/stat</c> less this process's own CPU time. Load averages are no use here: they count this process's
/// own threads and its build, and lag by minutes.
/// </summary>
internal sealed class MachineLoad
{
    /// <summary>Other work above this fraction of the machine's cores makes the sample warn that its times are slow.</summary>
    private const double BusyFraction = 0.25;

    private const double TicksPerSecond = 100; // USER_HZ, 100 on every Linux architecture .NET runs on

    private readonly (long Busy, long Total) _start;
    private readonly TimeSpan _selfStart;

    private MachineLoad((long Busy, long Total) start, TimeSpan selfStart)
    {
        _start = start;
        _selfStart = selfStart;
    }

    /// <summary>The machine's logical processors (what <c>/proc/stat</c> counts), not this process's share of them.</summary>
    public static int Cores { get; } = ReadCores();

    /// <summary>Starts an interval; null where <c>/proc/stat</c> does not exist (not Linux).</summary>
    public static MachineLoad? Start() => ReadStat() is { } stat ? new MachineLoad(stat, Process.GetCurrentProcess().TotalProcessorTime) : null;

    /// <summary>Samples the machine for <paramref name="duration"/> and describes it, warning when it is busy.</summary>
    public static string? Probe(TimeSpan duration)
    {
        var load = Start();
        if (load is null) return null;
        Thread.Sleep(duration);
        return Describe(load.OtherCores());
    }

    /// <summary>The cores' worth of CPU other processes used since <see cref="Start"/>.</summary>
    public double OtherCores()
    {
        var now = ReadStat()!.Value;
        double self = (Process.GetCurrentProcess().TotalProcessorTime - _selfStart).TotalSeconds * TicksPerSecond;
        long total = now.Total - _start.Total;
        return total <= 0 ? 0 : Math.Max(0, (now.Busy - _start.Busy - self) / total * Cores);
    }

    /// <summary>
    /// "other processes used 0.02 of 2 cores", and a warning when they took more than a quarter of the cores, enough
    /// to slow the times printed.
    /// </summary>
    public static string Describe(double otherCores)
    {
        string text = string.Create(CultureInfo.InvariantCulture, $"other processes used {otherCores:F2} of {Cores} cores");
        return otherCores > BusyFraction * Cores
            ? $"{text}. WARNING: the machine is busy, so times are slower than on a quiet machine (the README's are for 2 quiet cores)"
            : text;
    }

    /// <summary>The "cpu" line: busy ticks (user, nice, system, irq, softirq, steal) and all ticks (those and idle, iowait).</summary>
    private static (long Busy, long Total)? ReadStat()
    {
        if (!File.Exists("/proc/stat")) return null;
        string line = File.ReadLines("/proc/stat").First();
        long[] v = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        long idle = v[3] + v[4];
        long total = v.Sum();
        return (total - idle, total);
    }

    private static int ReadCores() =>
        File.Exists("/proc/stat") ? File.ReadLines("/proc/stat").Count(l => l.StartsWith("cpu", StringComparison.Ordinal) && char.IsDigit(l[3])) : Environment.ProcessorCount;
}
