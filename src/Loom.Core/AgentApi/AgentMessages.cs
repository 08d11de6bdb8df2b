using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Core.AgentApi;

/// <summary>
/// The agent's socket protocol: one JSON request per line, one JSON response per line, on a root-only unix
/// socket. Small on purpose: loom-cni (NativeAOT, started per call) and the CLI are its only clients.
/// </summary>
public sealed record AgentRequest
{
    /// <summary><c>status</c>, <c>endpoint-add</c>, <c>endpoint-del</c>, <c>services</c>, <c>explain-service</c>, <c>explain-policy</c> or <c>flows</c>.</summary>
    public required string Op { get; init; }

    public EndpointRegistration? Endpoint { get; init; }

    /// <summary>For <c>explain-service</c>: "namespace/name".</summary>
    public string? Service { get; init; }

    /// <summary>For <c>explain-policy</c>: the pod's "namespace/name".</summary>
    public string? Pod { get; init; }

    /// <summary>For <c>flows</c>: which of the agent's recent flows to return.</summary>
    public Flows.FlowQuery? Flows { get; init; }

    /// <summary>
    /// Decodes one request line as the agent's socket receives it; null for an empty line. JSON leaves out nothing
    /// it is not told to, so what the handlers rely on (op, container id, parseable IPs, no null entries) is checked
    /// here: anything else is a JsonException, answered as a bad request.
    /// </summary>
    public static AgentRequest? Decode(string? line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            return null;
        }

        var request = JsonSerializer.Deserialize(line, AgentApiJsonContext.Default.AgentRequest);
        if (request is null)
        {
            return null;
        }

        if (string.IsNullOrEmpty(request.Op))
        {
            throw new JsonException("op is missing");
        }

        if (request.Flows is { } query)
        {
            request = request with { Flows = Loom.Core.Flows.FlowMatcher.Normalize(query) };
        }

        if (request.Endpoint is { } ep)
        {
            if (string.IsNullOrEmpty(ep.ContainerId))
            {
                throw new JsonException("endpoint.containerId is missing");
            }

            // Absent (or null) fields read as their defaults: the source-generated reader leaves init-only ones null.
            ep = ep with
            {
                Namespace = ep.Namespace ?? "default",
                Name = ep.Name ?? "",
                Interface = ep.Interface ?? "eth0",
                Ips = ep.Ips ?? [],
                Labels = ep.Labels ?? new Dictionary<string, string>(),
                Ports = ep.Ports ?? [],
            };
            request = request with { Endpoint = ep };

            foreach (var ip in ep.Ips)
            {
                if (!IPAddress.TryParse(ip, out _))
                {
                    throw new JsonException($"endpoint.ips: \"{ip}\" is not an IP address");
                }
            }

            if (ep.Labels.Values.Contains(null!))
            {
                throw new JsonException("endpoint.labels: a label value is null");
            }

            if (ep.Ports.Contains(null!))
            {
                throw new JsonException("endpoint.ports: an entry is null");
            }
        }

        return request;
    }
}

/// <summary>What loom-cni tells the agent about an attachment after ADD (and, by container id, on DEL).</summary>
public sealed record EndpointRegistration
{
    public string Namespace { get; init; } = "default";

    public string Name { get; init; } = "";

    public required string ContainerId { get; init; }

    public string Interface { get; init; } = "eth0";

    public IReadOnlyList<string> Ips { get; init; } = [];

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>The pod's container ports (CNI args "cni.ports"), as given: the agent checks them before storing.</summary>
    public IReadOnlyList<EndpointPortRegistration> Ports { get; init; } = [];
}

/// <summary>One container port of a registration: Kubernetes' ContainerPort fields, protocol as text ("TCP", "UDP"; empty: TCP).</summary>
public sealed record EndpointPortRegistration
{
    public string? Name { get; init; }

    public int ContainerPort { get; init; }

    public string? Protocol { get; init; }
}

public sealed record AgentResponse
{
    public bool Ok { get; init; }

    public string? Error { get; init; }

    public AgentStatus? Status { get; init; }

    public IReadOnlyList<ServiceInfo>? Services { get; init; }

    /// <summary>Free text, e.g. what <c>explain-service</c> found programmed in the kernel.</summary>
    public string? Text { get; init; }

    /// <summary>For <c>flows</c>: the matching flows, oldest first.</summary>
    public IReadOnlyList<Flows.Flow>? Flows { get; init; }

    /// <summary>For <c>flows</c>: events the datapath could not hand over (ring buffer full) since the agent started.</summary>
    public long? LostEvents { get; init; }

    /// <summary>For <c>flows</c>: this agent run's numbering of its flows (a new one after a restart: seqs began anew).</summary>
    public string? FlowsInstance { get; init; }

    /// <summary>For <c>flows</c>: more flows matched than one answer carries (the agent's cap).</summary>
    public bool? FlowsCapped { get; init; }
}

/// <summary>One service port as this node programs it.</summary>
public sealed record ServiceInfo
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    public string? PortName { get; init; }

    public required string ClusterIp { get; init; }

    public required int Port { get; init; }

    public required string Protocol { get; init; }

    public string SessionAffinity { get; init; } = "None";

    /// <summary>Backends as "ip:port".</summary>
    public IReadOnlyList<string> Endpoints { get; init; } = [];

    /// <summary>The <see cref="Endpoints"/> whose pod runs on this node (what a Local traffic policy uses).</summary>
    public IReadOnlyList<string> LocalEndpoints { get; init; } = [];

    /// <summary>"ClusterIP", "NodePort" or "LoadBalancer".</summary>
    public string Type { get; init; } = "ClusterIP";

    /// <summary>The port on every node address; 0: none.</summary>
    public int NodePort { get; init; }

    public IReadOnlyList<string> ExternalIps { get; init; } = [];

    public string ExternalTrafficPolicy { get; init; } = "Cluster";

    public string InternalTrafficPolicy { get; init; } = "Cluster";

    /// <summary>A LoadBalancer with externalTrafficPolicy Local: the port answering health checks; 0: none.</summary>
    public int HealthCheckNodePort { get; init; }

    /// <summary>kubectl's PORT(S) entry: <c>80/TCP</c>, with a node port <c>80:31234/TCP</c>.</summary>
    [JsonIgnore]
    public string PortText => NodePort != 0
        ? string.Create(CultureInfo.InvariantCulture, $"{Port}:{NodePort}/{Protocol}")
        : string.Create(CultureInfo.InvariantCulture, $"{Port}/{Protocol}");

    /// <summary>kubectl's EXTERNAL-IP: the external IPs, <c>&lt;pending&gt;</c> for a LoadBalancer without, else <c>&lt;none&gt;</c>.</summary>
    [JsonIgnore]
    public string ExternalIpText => ExternalIps.Count > 0 ? string.Join(",", ExternalIps) : Type == "LoadBalancer" ? "<pending>" : "<none>";

    /// <summary>
    /// The traffic policies: "ext=Local int=Cluster" (ext only where the Service is reachable from outside), with the
    /// health-check port when there is one.
    /// </summary>
    [JsonIgnore]
    public string PolicyText =>
        (Type != "ClusterIP" || ExternalIps.Count > 0 ? "ext=" + ExternalTrafficPolicy + " " : "") + "int=" + InternalTrafficPolicy
        + (HealthCheckNodePort != 0 ? string.Create(CultureInfo.InvariantCulture, $" hc={HealthCheckNodePort}") : "");

    /// <summary>The endpoints, those on this node marked: "10.244.1.5:80(local)".</summary>
    [JsonIgnore]
    public IEnumerable<string> EndpointTexts => Endpoints.Select(e => LocalEndpoints.Contains(e) ? e + "(local)" : e);
}

/// <summary>What <c>loom status</c> shows.</summary>
public sealed record AgentStatus
{
    public required string Node { get; init; }

    public bool Healthy { get; init; }

    public string Store { get; init; } = "";

    /// <summary>False from the first store call failing on the transport or a lock until one succeeds.</summary>
    public bool StoreReachable { get; init; } = true;

    public DateTimeOffset? StoreUnreachableSince { get; init; }

    /// <summary>The failure that started the outage.</summary>
    public string StoreError { get; init; } = "";

    public string UnderlayInterface { get; init; } = "";

    public string UnderlayIp { get; init; } = "";

    public string PodCidr { get; init; } = "";

    public int IpamUsed { get; init; }

    public int IpamCapacity { get; init; }

    public string RoutingMode { get; init; } = "";

    public string TunnelDevice { get; init; } = "";

    public string VtepMac { get; init; } = "";

    public bool IpMasq { get; init; }

    public IReadOnlyList<TunnelPeer> Peers { get; init; } = [];

    /// <summary>Every network this node runs: the legacy fields above mirror the cluster's default one.</summary>
    public IReadOnlyList<NetworkStatus> Networks { get; init; } = [];

    /// <summary>The network this node's new pods join.</summary>
    public string PrimaryNetwork { get; init; } = "";

    public IReadOnlyList<EndpointRegistration> Endpoints { get; init; } = [];

    /// <summary>iptables, nftables or ebpf: what programs Services on this node.</summary>
    public string ServiceBackend { get; init; } = "";

    public int Services { get; init; }

    /// <summary>Socket-level load balancing (eBPF cgroup hooks): the cgroup it serves, or empty when off.</summary>
    public string SocketLbCgroup { get; init; } = "";

    /// <summary>policyEnforcementMode on this node: default, always or never.</summary>
    public string PolicyEnforcement { get; init; } = "";

    /// <summary>NetworkPolicies in the cluster, local endpoints, and those enforced on ingress / egress.</summary>
    public int Policies { get; init; }

    public int PolicyEndpoints { get; init; }

    public int PolicyIngressEnforced { get; init; }

    public int PolicyEgressEnforced { get; init; }

    public int Identities { get; init; }

    public long ServiceSyncs { get; init; }

    /// <summary>The agent's controllers, in start order: each one's health, passes, what it holds and its last error.</summary>
    public IReadOnlyList<Loom.Core.Controllers.ControllerStatus> Controllers { get; init; } = [];

    public long Syncs { get; init; }

    public DateTimeOffset LastSync { get; init; }

    public DateTimeOffset Started { get; init; }

    /// <summary>eBPF backend only: each lb4 map's entries/max, e.g. "lb4_svc 120/65,536, lb4_ct 1,234/262,144"; else empty.</summary>
    public string BpfMaps { get; init; } = "";
}

public sealed record TunnelPeer(string Node, string PodCidr, string UnderlayIp, string VtepMac)
{
    /// <summary>The network the peer's block belongs to.</summary>
    public string Network { get; init; } = "";
}

/// <summary>One network on a node, in the words of <c>cilium status</c>: its block, IPAM, routing, host routing, masquerading.</summary>
public sealed record NetworkStatus
{
    public required string Name { get; init; }

    public string Block { get; init; } = "";

    public int IpamUsed { get; init; }

    public int IpamCapacity { get; init; }

    /// <summary>"tunnel" or "native".</summary>
    public string RoutingMode { get; init; } = "";

    /// <summary>Tunnel: "vxlan DEVICE port PORT"; native: "direct routes to N peer(s) via DEVICE".</summary>
    public string Routing { get; init; } = "";

    public string Plumbing { get; init; } = "";

    /// <summary>"Legacy" or "BPF".</summary>
    public string HostRouting { get; init; } = "";

    /// <summary>"IPTables", "BPF" or "Disabled".</summary>
    public string Masquerading { get; init; } = "";

    public bool Primary { get; init; }

    public bool Ready { get; init; }

    /// <summary>The CNI config file this network's pods are wired by on this node; empty when not the primary.</summary>
    public string CniConfig { get; init; } = "";

    public int Peers { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentRequest))]
[JsonSerializable(typeof(AgentResponse))]
public sealed partial class AgentApiJsonContext : JsonSerializerContext;
