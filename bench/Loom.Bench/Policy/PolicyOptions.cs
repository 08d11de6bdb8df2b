namespace Loom.Bench.Policy;

/// <summary><c>Loom.Bench policy</c>'s options (bench/policy.sh passes them through).</summary>
/// <param name="Cluster">Key of the cluster file: cilium (examples/cluster/cilium.yaml) or flannel (flannel.yaml).</param>
/// <param name="Seconds">Seconds of new connections per repetition and mode.</param>
/// <param name="Reps">Repetitions of (no policy, 100 policies), the order alternating.</param>
/// <param name="Repeats">Apply/delete cycles of the allow policy timed to enforcement on every node.</param>
internal sealed record PolicyOptions(string Cluster, int Seconds, int Reps, int Repeats, int Ghosts, int Policies, string? Out)
{
    public static readonly IReadOnlyDictionary<string, string> ClusterFiles = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["cilium"] = "examples/cluster/cilium.yaml",
        ["flannel"] = "examples/cluster/flannel.yaml",
    };

    public string ClusterFile => ClusterFiles[Cluster];

    public static PolicyOptions Parse(string[] args)
    {
        return BenchArgs.Parse(args, new PolicyOptions("cilium", 3, 10, 20, 1000, 100, null), (o, name, value) => name switch
        {
            "--cluster" => o with
            {
                Cluster = ClusterFiles.ContainsKey(value) ? value : throw new ArgumentException($"--cluster: '{value}' is not one of {string.Join(", ", ClusterFiles.Keys)}"),
            },
            "--seconds" => o with { Seconds = BenchArgs.Count(value, 1, 120) },
            "--reps" => o with { Reps = BenchArgs.Count(value, 1, 20) },
            "--repeats" => o with { Repeats = BenchArgs.Count(value, 1, 200) },
            "--out" => o with { Out = value },
            _ => throw new ArgumentException($"unknown option {name} (--cluster cilium|flannel, --seconds N, --reps N, --repeats N, --out FILE)"),
        });
    }
}
