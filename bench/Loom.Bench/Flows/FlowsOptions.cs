namespace Loom.Bench.Flows;

/// <summary><c>Loom.Bench flows</c>'s options (bench/flows.sh passes them through).</summary>
/// <param name="Seconds">Seconds of new connections per repetition and mode.</param>
/// <param name="Reps">Repetitions of (off, medium, none), the order rotating.</param>
internal sealed record FlowsOptions(int Seconds, int Reps, string? Out)
{
    public static FlowsOptions Parse(string[] args) =>
        BenchArgs.Parse(args, new FlowsOptions(3, 5, null), (o, name, value) => name switch
        {
            "--seconds" => o with { Seconds = BenchArgs.Count(value, 1, 120) },
            "--reps" => o with { Reps = BenchArgs.Count(value, 1, 50) },
            "--out" => o with { Out = value },
            _ => throw new ArgumentException($"unknown option {name} (--seconds N, --reps N, --out FILE)"),
        });
}
