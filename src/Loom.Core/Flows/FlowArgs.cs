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
    /// <summary>The longest --since duration: no agent keeps flows older, and longer ones overflow a time.</summary>
    public static readonly TimeSpan MaxSince = TimeSpan.FromDays(3650);

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

    /// <summary>A Service as "namespace/name" or "name" (default namespace), checked as a pod; returned with its namespace.</summary>
    public static string Service(string value)
    {
        var checkedValue = Pod("--to-service", value);
        return checkedValue.Contains('/', StringComparison.Ordinal) ? checkedValue : "default/" + checkedValue;
    }

    /// <summary>A duration back from <paramref name="now"/> (<c>30s</c>, <c>5m</c>, <c>1h30m</c>, <c>2d</c>) or an RFC 3339 time.</summary>
    public static DateTimeOffset Since(string value, DateTimeOffset now)
    {
        var m = DurationPattern().Match(value);
        if (m.Success && value.Length > 0)
        {
            // In milliseconds as a double: 9 digits of days fit, and the cap is checked before a TimeSpan is made.
            var totalMs = 0.0;
            foreach (Capture part in m.Groups["part"].Captures)
            {
                var unit = part.Value.TrimStart("0123456789".ToCharArray());
                var n = long.Parse(part.Value[..^unit.Length], CultureInfo.InvariantCulture);
                totalMs += n * unit switch
                {
                    "ms" => 1.0,
                    "s" => 1e3,
                    "m" => 60e3,
                    "h" => 3600e3,
                    _ => 86400e3,
                };
            }

            return totalMs <= MaxSince.TotalMilliseconds
                ? now - TimeSpan.FromMilliseconds(totalMs)
                : throw new FormatException($"--since \"{value}\": at most {MaxSince.TotalDays:0}d back");
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
