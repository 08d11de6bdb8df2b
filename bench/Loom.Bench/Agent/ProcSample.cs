using System.Globalization;

namespace Loom.Bench.Agent;

/// <summary>
/// One reading of a process from /proc: VmRSS, VmHWM (its peak RSS so far), RssAnon (heap, stacks: what the process
/// allocated, as opposed to mapped files and shared memory), thread count, and the CPU time it used (utime + stime).
/// Null when the process is gone.
/// </summary>
internal sealed record ProcSample(double RssMb, double HwmMb, double AnonMb, int Threads, double CpuSeconds, DateTime At)
{
    // USER_HZ: /proc/PID/stat counts in 1/100 s on every Linux architecture the lab runs on (x86-64, arm64).
    private const double TicksPerSecond = 100;

    public static ProcSample? TryRead(int pid)
    {
        try
        {
            double rss = 0, hwm = 0, anon = 0;
            var threads = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                rss = line.StartsWith("VmRSS:", StringComparison.Ordinal) ? Kb(line) : rss;
                hwm = line.StartsWith("VmHWM:", StringComparison.Ordinal) ? Kb(line) : hwm;
                anon = line.StartsWith("RssAnon:", StringComparison.Ordinal) ? Kb(line) : anon;
                threads = line.StartsWith("Threads:", StringComparison.Ordinal) ? int.Parse(Field(line, 1), CultureInfo.InvariantCulture) : threads;
            }

            // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // rest[0] is field 3 (state): utime is field 14, stime field 15.
            var ticks = long.Parse(rest[11], CultureInfo.InvariantCulture) + long.Parse(rest[12], CultureInfo.InvariantCulture);
            return new ProcSample(rss, hwm, anon, threads, ticks / TicksPerSecond, DateTime.UtcNow);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>CPU used between two readings, as a percentage of one CPU.</summary>
    public static double CpuPercent(ProcSample from, ProcSample to) =>
        100 * (to.CpuSeconds - from.CpuSeconds) / Math.Max(0.001, (to.At - from.At).TotalSeconds);

    private static double Kb(string line) => Math.Round(double.Parse(Field(line, 1), CultureInfo.InvariantCulture) / 1024, 1);

    private static string Field(string line, int i) => line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[i];
}
