using System.Globalization;
using System.Text.RegularExpressions;

namespace Loom.Core.Flows;

/// <summary>
/// The values of <c>loom observe</c>'s flags, checked: the names Hubble prints (any case, returned as printed), a
/// <c>--since</c> as a duration back from now or a time. Each method throws <see cref="FormatException"/> naming the
/// flag and what it accepts.
/// </summary>
public static partial class FlowArgs
{
    public static string Verdict(string value) => OneOf("--verdict", value, FlowNames.Verdicts);

    public static string DropReason(string value) => OneOf("--drop-reason", value, FlowNames.DropReasons);

    public static string Protocol(string value) => OneOf("--protocol", value, FlowNames.Protocols);

    public static string Type(string value) => OneOf("--type", value, FlowNames.Types);

    public static int Port(int value) =>
        value is >= 1 and <= 65535 ? value : throw new FormatException($"--port {value}: a port is 1 to 65535");

    /// <summary>A pod as "namespace/name" or "name" (default namespace); a name may be a prefix, as in Hubble.</summary>
    public static string Pod(string flag, string value)
    {
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        if (value.Length == 0 || slash == 0 || value.IndexOf('/', slash + 1) >= 0)
        {
            throw new FormatException($"{flag} \"{value}\": give a pod as namespace/name or name");
        }

        return value;
    }

    /// <summary>A duration back from <paramref name="now"/> (<c>30s</c>, <c>5m</c>, <c>1h30m</c>, <c>2d</c>) or an RFC 3339 time.</summary>
    public static DateTimeOffset Since(string value, DateTimeOffset now)
    {
        var m = DurationPattern().Match(value);
        if (m.Success && value.Length > 0)
        {
            var total = TimeSpan.Zero;
            foreach (Capture part in m.Groups["part"].Captures)
            {
                var unit = part.Value.TrimStart("0123456789".ToCharArray());
                var n = long.Parse(part.Value[..^unit.Length], CultureInfo.InvariantCulture);
                total += unit switch
                {
                    "ms" => TimeSpan.FromMilliseconds(n),
                    "s" => TimeSpan.FromSeconds(n),
                    "m" => TimeSpan.FromMinutes(n),
                    "h" => TimeSpan.FromHours(n),
                    _ => TimeSpan.FromDays(n),
                };
            }

            return now - total;
        }

        if (value.Contains('T', StringComparison.Ordinal)
            && DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return time;
        }

        throw new FormatException($"--since \"{value}\": give a duration (30s, 5m, 1h30m, 2d) or an RFC 3339 time (2026-11-30T12:00:00Z)");
    }

    private static string OneOf(string flag, string value, IReadOnlyList<string> known) =>
        FlowNames.Canonical(value, known) ?? throw new FormatException($"{flag} \"{value}\": not one of {string.Join(", ", known)}");

    [GeneratedRegex("^(?<part>[0-9]{1,9}(ms|s|m|h|d))+$", RegexOptions.CultureInvariant)]
    private static partial Regex DurationPattern();
}
