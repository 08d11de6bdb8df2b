using Loom.Core.Model;

namespace Loom.Bench.LabScale;

/// <summary><c>Loom.Bench lab</c>'s options (bench/lab.sh passes them through).</summary>
internal sealed record LabBenchOptions(
    int Services,
    int Probes,
    IReadOnlyList<ServiceProxyMode> Backends,
    int TimeoutSeconds,
    int ProbeTimeoutSeconds,
    int ProbeBudgetSeconds,
    string? Out)
{
    public static readonly ServiceProxyMode[] AllBackends = [ServiceProxyMode.Iptables, ServiceProxyMode.Nftables, ServiceProxyMode.Ebpf];

    public static LabBenchOptions Parse(string[] args)
    {
        return BenchArgs.Parse(args, new LabBenchOptions(10000, 30, AllBackends, 600, 60, 300, null), (o, name, value) => name switch
        {
            // The store's service CIDR is a /12 (a million addresses); 50000 keeps a run within a night.
            "--services" => o with { Services = BenchArgs.Count(value, 1, 50000) },
            "--probes" => o with { Probes = BenchArgs.Count(value, 0, 1000) },
            "--backends" => o with { Backends = ParseBackends(value) },
            "--timeout" => o with { TimeoutSeconds = BenchArgs.Count(value, 10, 86400) },
            "--probe-timeout" => o with { ProbeTimeoutSeconds = BenchArgs.Count(value, 1, 3600) },
            "--probe-budget" => o with { ProbeBudgetSeconds = BenchArgs.Count(value, 1, 86400) },
            "--out" => o with { Out = value },
            _ => throw new ArgumentException(
                $"unknown option {name} (--services N, --probes N, --backends iptables,nftables,ebpf, --timeout SECONDS, --probe-timeout SECONDS, --probe-budget SECONDS, --out FILE)"),
        });
    }

    private static List<ServiceProxyMode> ParseBackends(string value)
    {
        var list = new List<ServiceProxyMode>();
        foreach (var name in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var match = AllBackends.Where(b => Name(b) == name).ToArray();
            if (match.Length == 0)
            {
                throw new ArgumentException($"--backends: '{name}' is not a service backend (iptables, nftables, ebpf)");
            }

            var mode = match[0];
            if (list.Contains(mode))
            {
                throw new ArgumentException($"--backends: '{name}' is named twice");
            }

            list.Add(mode);
        }

        return list.Count > 0 ? list : throw new ArgumentException("--backends: name at least one of iptables, nftables, ebpf");
    }

    public static string Name(ServiceProxyMode mode) => mode.ToString().ToLowerInvariant();
}
