namespace Loom.Bench;

/// <summary>What the figures were measured on.</summary>
internal sealed record Machine(int Nproc, string Cpu, string Kernel, string LoadAverage)
{
    public static Machine Describe()
    {
        var cpu = File.ReadLines("/proc/cpuinfo")
            .Where(l => l.StartsWith("model name", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim())
            .FirstOrDefault() ?? "unknown CPU";
        var kernel = File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        var load = string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        return new Machine(Environment.ProcessorCount, cpu, kernel, load);
    }
}
