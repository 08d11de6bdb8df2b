using System.Text;
using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>
/// An ADD result (or IPAM result, or prevResult), independent of spec version: parse any
/// supported version, serialize to the exact shape of the version the config asked for.
/// </summary>
public sealed class CniResult
{
    /// <summary>The version this result was parsed from (informational; serialization takes an explicit one).</summary>
    public string? CniVersion { get; set; }

    public IList<CniInterface> Interfaces { get; } = [];

    public IList<CniIpConfig> Ips { get; } = [];

    public IList<CniRoute> Routes { get; } = [];

    public CniDns Dns { get; } = new();

    /// <summary>
    /// JSON for <paramref name="cniVersion"/>: 0.3.x/0.4.0 carry <c>"version"</c> on each IP, 1.0.0
    /// drops it, 1.1.0 adds route mtu/advmss/priority/table/scope and interface mtu/socketPath/pciID.
    /// Unset fields are omitted. Throws code 1 for an unsupported version.
    /// </summary>
    public string Serialize(string cniVersion) => Encoding.UTF8.GetString(SerializeToUtf8Bytes(cniVersion));

    /// <inheritdoc cref="Serialize"/>
    public byte[] SerializeToUtf8Bytes(string cniVersion)
    {
        CniVersions.EnsureSupported(cniVersion);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, CniJson.WriterOptions))
        {
            CniResultWriter.Write(writer, this, cniVersion);
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// Parses a result of any supported version. A document without <c>cniVersion</c> (allowed for
    /// prevResult) takes <paramref name="versionHint"/>. Malformed content is code 6; an unsupported
    /// <c>cniVersion</c> is code 1.
    /// </summary>
    public static CniResult Parse(string json, string? versionHint = null) =>
        Parse(Encoding.UTF8.GetBytes(json), versionHint);

    /// <inheritdoc cref="Parse(string, string?)"/>
    public static CniResult Parse(ReadOnlySpan<byte> utf8Json, string? versionHint = null)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8Json.ToArray());
        }
        catch (JsonException ex)
        {
            throw new CniException(CniErrorCodes.DecodingFailure, "failed to decode CNI result", ex.Message, ex);
        }

        using (doc)
        {
            return CniResultReader.Read(doc.RootElement, versionHint, "", CniErrorCodes.DecodingFailure, "failed to decode CNI result");
        }
    }
}
