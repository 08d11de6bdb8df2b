using System.Globalization;

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
        var o = new DatapathOptions(NetConfig.All, 3, 3, 2, 30, null);
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--configs" => o with { Configs = ParseConfigs(value) },
                "--reps" => o with { Reps = Count(value, 1, 20) },
                "--seconds" => o with { Seconds = Count(value, 1, 60) },
                "--latency-seconds" => o with { LatencySeconds = Count(value, 1, 60) },
                "--reach-timeout" => o with { ReachTimeoutSeconds = Count(value, 1, 600) },
                "--out" => o with { Out = value },
                _ => throw new ArgumentException(
                    $"unknown option {args[i]} (--configs {string.Join(',', NetConfig.All.Select(c => c.Key))}, --reps N, --seconds N, --latency-seconds N, --reach-timeout SECONDS, --out FILE)"),
            };
            i++;
        }

        return o;
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

    private static int Count(string s, int min, int max) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"'{s}' is not a number in {min}..{max}");
}
