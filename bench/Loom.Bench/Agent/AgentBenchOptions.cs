using Loom.Bench.LabScale;
using Loom.Core.Model;

namespace Loom.Bench.Agent;

/// <summary><c>Loom.Bench agent</c>'s options (bench/agent.sh passes them through).</summary>
internal sealed record AgentBenchOptions(
    int Services,
    IReadOnlyList<ServiceProxyMode> Backends,
    IReadOnlyList<string> Variants,
    int IdleSeconds,
    int TimeoutSeconds,
    string? Out)
{
    public static readonly string[] AllVariants = ["aot", "jit"];

    public static AgentBenchOptions Parse(string[] args)
    {
        // --backends shares the lab bench's parser (the same names, the same checks).
        return BenchArgs.Parse(args, new AgentBenchOptions(10000, LabBenchOptions.AllBackends, AllVariants, 30, 600, null), (o, name, value) => name switch
        {
            "--services" => o with { Services = BenchArgs.Count(value, 1, 50000) },
            "--backends" => o with { Backends = LabBenchOptions.Parse(["--backends", value]).Backends },
            "--variants" => o with { Variants = ParseVariants(value) },
            "--idle" => o with { IdleSeconds = BenchArgs.Count(value, 1, 3600) },
            "--timeout" => o with { TimeoutSeconds = BenchArgs.Count(value, 10, 86400) },
            "--out" => o with { Out = value },
            _ => throw new ArgumentException(
                $"unknown option {name} (--services N, --backends iptables,nftables,ebpf, --variants aot,jit, --idle SECONDS, --timeout SECONDS, --out FILE)"),
        });
    }

    private static List<string> ParseVariants(string value)
    {
        var list = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToList();
        return list.Count > 0 && list.All(v => AllVariants.Contains(v, StringComparer.Ordinal))
            ? list
            : throw new ArgumentException($"--variants: '{value}' is not a list of aot, jit");
    }
}
