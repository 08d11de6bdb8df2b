namespace Loom.Bench.Datapath;

/// <summary><c>Loom.Bench datapath</c>'s options (bench/datapath.sh passes them through).</summary>
internal sealed record DatapathOptions(
    IReadOnlyList<NetConfig> Configs,
    int Reps,
    int Seconds,
    int LatencySeconds,
    int ReachTimeoutSeconds,
    string? Out)
{
    public static DatapathOptions Parse(string[] args)
    {
        return BenchArgs.Parse(args, new DatapathOptions(NetConfig.All, 3, 3, 2, 30, null), (o, name, value) => name switch
        {
            "--configs" => o with { Configs = ParseConfigs(value) },
            "--reps" => o with { Reps = BenchArgs.Count(value, 1, 20) },
            "--seconds" => o with { Seconds = BenchArgs.Count(value, 1, 60) },
            "--latency-seconds" => o with { LatencySeconds = BenchArgs.Count(value, 1, 60) },
            "--reach-timeout" => o with { ReachTimeoutSeconds = BenchArgs.Count(value, 1, 600) },
            "--out" => o with { Out = value },
            _ => throw new ArgumentException(
                $"unknown option {name} (--configs {string.Join(',', NetConfig.All.Select(c => c.Key))}, --reps N, --seconds N, --latency-seconds N, --reach-timeout SECONDS, --out FILE)"),
        });
    }

    private static List<NetConfig> ParseConfigs(string value)
    {
        var list = new List<NetConfig>();
        foreach (var key in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var config = NetConfig.All.FirstOrDefault(c => c.Key == key)
                ?? throw new ArgumentException($"--configs: '{key}' is not a configuration ({string.Join(", ", NetConfig.All.Select(c => c.Key))})");
            if (list.Contains(config))
            {
                throw new ArgumentException($"--configs: '{key}' is named twice");
            }

            list.Add(config);
        }

        return list.Count > 0 ? list : throw new ArgumentException("--configs: name at least one configuration");
    }
}
