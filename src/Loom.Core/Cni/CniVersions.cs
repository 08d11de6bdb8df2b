using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>The CNI spec versions Loom speaks, and the per-version rules for commands.</summary>
public static class CniVersions
{
    public const string V030 = "0.3.0";
    public const string V031 = "0.3.1";
    public const string V040 = "0.4.0";
    public const string V100 = "1.0.0";
    public const string V110 = "1.1.0";

    /// <summary>The newest version; used when the input names none.</summary>
    public const string Latest = V110;

    /// <summary>Ascending. 0.1.0/0.2.0 are left out: their result shape (ip4/ip6) is not implemented.</summary>
    public static IReadOnlyList<string> Supported { get; } = [V030, V031, V040, V100, V110];

    public static bool IsSupported(string? version) =>
        version is V030 or V031 or V040 or V100 or V110;

    /// <summary>Throws code 1 (incompatible CNI version) unless <paramref name="version"/> is supported.</summary>
    public static void EnsureSupported(string version)
    {
        if (!IsSupported(version))
        {
            throw new CniException(
                CniErrorCodes.IncompatibleCniVersion,
                "incompatible CNI versions",
                $"config is \"{version}\", plugin supports [{string.Join(", ", Supported)}]");
        }
    }

    /// <summary>
    /// CHECK exists since 0.4.0, STATUS and GC since 1.1.0; an older config version
    /// asking for them gets code 1, as libcni's skel answers.
    /// </summary>
    public static void EnsureCommandAllowed(CniCommand command, string version)
    {
        var minimum = command switch
        {
            CniCommand.Check => V040,
            CniCommand.Status or CniCommand.Gc => V110,
            _ => null,
        };
        if (minimum is not null && Compare(version, minimum) < 0)
        {
            throw new CniException(
                CniErrorCodes.IncompatibleCniVersion,
                $"config version does not allow {command.ToWire()}",
                $"{command.ToWire()} needs cniVersion >= {minimum}, config is \"{version}\"");
        }
    }

    /// <summary>Orders dotted numeric versions ("0.3.1" &lt; "0.4.0" &lt; "1.0.0"); throws code 6 on junk.</summary>
    public static int Compare(string left, string right)
    {
        var a = ParseTriple(left);
        var b = ParseTriple(right);
        for (var i = 0; i < 3; i++)
        {
            var c = a[i].CompareTo(b[i]);
            if (c != 0)
            {
                return c;
            }
        }

        return 0;
    }

    /// <summary>
    /// VERSION output: echoes the version asked for (the config's, if any, else <see cref="Latest"/>)
    /// and lists the supported ones.
    /// </summary>
    public static string VersionJson(string? requestedVersion)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, CniJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", string.IsNullOrEmpty(requestedVersion) ? Latest : requestedVersion);
            w.WriteStartArray("supportedVersions");
            foreach (var v in Supported)
            {
                w.WriteStringValue(v);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>
    /// Best-effort read of the top-level <c>cniVersion</c> string from stdin, for VERSION and for
    /// printing errors in the config's version even when the rest of the config is invalid.
    /// </summary>
    public static string? TryPeekConfigVersion(ReadOnlySpan<byte> stdin)
    {
        try
        {
            var reader = new Utf8JsonReader(stdin);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isVersion = reader.ValueTextEquals("cniVersion");
                reader.Read();
                if (isVersion && reader.TokenType == JsonTokenType.String)
                {
                    return reader.GetString();
                }

                reader.Skip();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Malformed input (or text that does not decode): the caller falls back to the latest version.
        }

        return null;
    }

    private static int[] ParseTriple(string version)
    {
        var parts = version.Split('.');
        var result = new int[3];
        if (parts.Length is < 1 or > 3)
        {
            throw BadVersion(version);
        }

        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out result[i]))
            {
                throw BadVersion(version);
            }
        }

        return result;
    }

    private static CniException BadVersion(string version) =>
        new(CniErrorCodes.DecodingFailure, "failed to parse CNI version", $"\"{version}\" is not a dotted numeric version");
}
