using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Loom.Core.Model;

namespace Loom.Kubernetes;

/// <summary>
/// Loom's own CRD (loom.io/v1alpha1 LoomNode, deploy/kubernetes/crds/loomnodes.loom.io.yaml), one per node as
/// CiliumNode: what its agent publishes (its blocks and VTEPs per network, readiness) for the other agents to read.
/// </summary>
internal sealed record LoomNodeObject
{
    public const string ApiVersion = "loom.io/v1alpha1";
    public const string Path = "/apis/loom.io/v1alpha1/loomnodes";

    [JsonPropertyName("apiVersion")]
    public string? ApiVersionField { get; init; } = ApiVersion;

    public string? Kind { get; init; } = "LoomNode";

    public LoomObjectMeta Metadata { get; init; } = new();

    public JsonElement? Spec { get; init; }

    public LoomNodeStatusJson? Status { get; init; }
}

internal sealed record LoomObjectMeta
{
    public string? Name { get; init; }

    public string? ResourceVersion { get; init; }
}

internal sealed record LoomNodeList
{
    public LoomListMeta? Metadata { get; init; }

    public IList<LoomNodeObject>? Items { get; init; }
}

internal sealed record LoomListMeta
{
    public string? ResourceVersion { get; init; }
}

/// <summary>The CRD's status, as the schema spells it.</summary>
internal sealed record LoomNodeStatusJson
{
    public IReadOnlyList<string>? PodCidrs { get; init; }

    public string? UnderlayInterface { get; init; }

    public string? UnderlayIp { get; init; }

    public string? VtepMac { get; init; }

    public bool? Ready { get; init; }

    public DateTimeOffset? Heartbeat { get; init; }

    public Dictionary<string, LoomNodeNetworkJson>? Networks { get; init; }
}

internal sealed record LoomNodeNetworkJson
{
    [JsonPropertyName("podCIDR")]
    public string? PodCidr { get; init; }

    public string? VtepMac { get; init; }
}

/// <summary>A LoomNode's status as the model wants it (what a peer's Node is completed with).</summary>
internal sealed record LoomNodeStatus(string? UnderlayInterface, string? VtepMac, bool? Ready, DateTimeOffset? Heartbeat,
    IReadOnlyDictionary<string, NodeNetwork>? Networks)
{
    public static LoomNodeStatus? Of(LoomNodeObject? o) => o?.Status is not { } s
        ? null
        : new LoomNodeStatus(s.UnderlayInterface, s.VtepMac, s.Ready, s.Heartbeat,
            s.Networks?.Where(kv => kv.Value.PodCidr is { } c && IPNetwork.TryParse(c, out _))
                .ToDictionary(kv => kv.Key, kv => new NodeNetwork { PodCidr = IPNetwork.Parse(kv.Value.PodCidr!), VtepMac = kv.Value.VtepMac }, StringComparer.Ordinal));

    /// <summary>What the agent publishes for its own Node.</summary>
    public static LoomNodeStatusJson From(Node n, DateTimeOffset now) => new()
    {
        PodCidrs = [.. n.PodCidrs.Select(c => c.ToString())],
        UnderlayInterface = n.UnderlayInterface,
        UnderlayIp = n.UnderlayIp.ToString(),
        VtepMac = n.VtepMac,
        Ready = n.Ready,
        Heartbeat = now,
        Networks = n.Networks.ToDictionary(kv => kv.Key, kv => new LoomNodeNetworkJson { PodCidr = kv.Value.PodCidr.ToString(), VtepMac = kv.Value.VtepMac }, StringComparer.Ordinal),
    };
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LoomNodeObject))]
[JsonSerializable(typeof(LoomNodeList))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(LoomNodeStatusJson))]
internal sealed partial class KubeJsonContext : JsonSerializerContext;
