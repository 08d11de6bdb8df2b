using System.Text.Json;
using System.Text.Json.Serialization;
using Loom.Core.Model;
using Loom.Store;

namespace Loom.Agent;

/// <summary>
/// The agent's own settings (<c>loom agent --config FILE</c>, JSON). Cluster-wide settings (pools, tunnel,
/// routing) live in the store as <see cref="Loom.Core.Model.ClusterConfig"/>; these are per node.
/// </summary>
public sealed record AgentConfig
{
    /// <summary>Node name; <c>--node</c> overrides it.</summary>
    public string? Node { get; set; }

    /// <summary>Underlay interface carrying node-to-node traffic (flannel's <c>--iface</c>).</summary>
    public string Iface { get; set; } = "eth1";

    /// <summary>Masquerade pod traffic leaving the pod network (flannel's <c>--ip-masq</c>); null: the cluster's setting.</summary>
    public bool? IpMasq { get; set; }

    public StoreConfig Store { get; set; } = new();

    /// <summary>
    /// Where the cluster comes from: "store" (the SQLite or etcd store, the default) or "kubernetes" (the API server's
    /// Nodes, Pods, Services, EndpointSlices, Namespaces and NetworkPolicies, mirrored into a node-local store).
    /// </summary>
    public string Source { get; set; } = "store";

    /// <summary>With <see cref="Source"/> "kubernetes": how to reach the API server (absent: the pod's service account).</summary>
    public KubernetesSourceConfig? Kubernetes { get; set; }

    /// <summary>
    /// With <see cref="Source"/> "kubernetes": the cluster file (the same YAML <c>loom lab</c> reads; the DaemonSet mounts
    /// it from the ConfigMap loom-config) that gives the cluster config and networks, which the API does not hold.
    /// </summary>
    public string ClusterFile { get; set; } = "/etc/loom/cluster.yaml";

    /// <summary>The node name: <see cref="Node"/>, else (kubernetes source) NODE_NAME from the downward API.</summary>
    public string? ResolveNode(Func<string, string?>? environment = null) =>
        !string.IsNullOrEmpty(Node) ? Node : Source == "kubernetes" ? (environment ?? Environment.GetEnvironmentVariable)("NODE_NAME") : null;

    /// <summary>Service backend of this node (iptables, nftables, ebpf); null: the cluster's, unless a NodeConfig overrides it.</summary>
    public ServiceProxyMode? ServiceBackend { get; set; }

    /// <summary>
    /// kube-proxy's <c>--nodeport-addresses</c>: CIDRs whose node addresses serve node ports; empty (the default): every
    /// local address on iptables and nftables, the underlay address on eBPF.
    /// </summary>
    public IReadOnlyList<string> NodePortAddresses { get; set; } = [];

    /// <summary>bpffs directory for this node's pinned eBPF maps and programs (they outlive the agent).</summary>
    public string BpfPinDir { get; set; } = "/sys/fs/bpf/loom";

    /// <summary>
    /// cgroup (v2) whose processes get socket-level load balancing from the eBPF backend (connect() to a ClusterIP goes
    /// straight to a backend); null: per-packet NAT on the pods' veths only. Never the machine's root cgroup.
    /// </summary>
    public string? Cgroup { get; set; }

    /// <summary>How the eBPF backend picks a backend for a new flow: "random" (default) or "maglev" (consistent hashing).</summary>
    public string LoadBalancerAlgorithm { get; set; } = "random";

    /// <summary>Slots of each service's Maglev table (a prime; Cilium's default 16381).</summary>
    public int MaglevTableSize { get; set; } = 16381;

    /// <summary>Prometheus metrics listen address inside the node, e.g. "0.0.0.0:9962"; null: no metrics endpoint.</summary>
    public string? MetricsAddress { get; set; }

    /// <summary>Flow events from the datapath (<c>loom observe</c>, the flow metrics); off costs one map lookup per packet.</summary>
    public bool FlowEvents { get; set; } = true;

    /// <summary>
    /// How the programs aggregate traces, as Cilium's <c>monitorAggregation</c>: "medium" (default: a trace per
    /// connection direction and observation point, again on a new TCP flag) or "none" (every packet). Drops never are.
    /// </summary>
    public string FlowAggregation { get; set; } = "medium";

    /// <summary>Flows the agent keeps in memory for <c>loom observe</c> (Hubble's event buffer, 4095).</summary>
    public int FlowBufferSize { get; set; } = Loom.Core.Flows.FlowRing.DefaultCapacity;

    /// <summary>Also count flows and drops per local pod (loom_pod_* metrics): one series per pod, so off by default.</summary>
    public bool FlowMetricsPerPod { get; set; }

    /// <summary>Where the node's CNI config is written once the node is ready.</summary>
    public string CniConfDir { get; set; } = "/etc/cni/net.d";

    /// <summary>
    /// Cilium's <c>cni.exclusive</c>: every CNI config in <see cref="CniConfDir"/> other than the primary network's is
    /// renamed to <c>*.loom_bak</c>, so the runtime wires new pods with Loom's whatever sorts first.
    /// </summary>
    public bool CniExclusive { get; set; } = true;

    /// <summary>Socket, subnet file and other runtime state of this node's agent.</summary>
    public string StateDir { get; set; } = "/run/loom";

    /// <summary>host-local-style IPAM data directory written into the CNI config.</summary>
    public string IpamDataDir { get; set; } = "/var/lib/cni/networks";

    /// <summary>Seconds between heartbeats recorded on the node object.</summary>
    public int HeartbeatSeconds { get; set; } = 5;

    /// <summary>
    /// TTL of the lease the node object is written under, renewed every heartbeat (flannel's subnet lease): a
    /// node whose agent is gone longer than this disappears from the cluster, and its peers drop their routes to it.
    /// </summary>
    public int NodeLeaseSeconds { get; set; } = 600;

    /// <summary>
    /// Seconds between the services' full passes, which re-read the kernel and repair whatever was changed behind the
    /// agent's back (kube-proxy's full sync is hourly); changes themselves are written as they arrive.
    /// </summary>
    public int ServiceFullSyncSeconds { get; set; } = 600;

    [JsonIgnore]
    public TimeSpan ServiceFullSyncInterval => TimeSpan.FromSeconds(Math.Max(1, ServiceFullSyncSeconds));

    [JsonIgnore]
    public string SocketPath => Path.Combine(StateDir, "agent.sock");

    [JsonIgnore]
    public string SubnetFile => Path.Combine(StateDir, "subnet.env");

    /// <summary>The subnet file of a routed network (the bridge network keeps <see cref="SubnetFile"/>, flannel's name).</summary>
    public string SubnetFileOf(string network) => Path.Combine(StateDir, $"subnet-{network}.env");

    /// <summary>
    /// Capacities of the eBPF backend's lb4 maps (services, backends, connTrack, affinity, snat, interfaces, maglev), e.g.
    /// <c>"bpfMapSizes": {"connTrack": 524288}</c>; unnamed ones keep their defaults. Checked at start.
    /// </summary>
    public Loom.Datapath.Services.Ebpf.LbMapSizes BpfMapSizes { get; set; } = new();

    /// <summary>
    /// Seconds between the endpoint reconciler's passes (also one at start): the node's Endpoints checked against its
    /// IPAM allocations and host veths, stale ones removed.
    /// </summary>
    public int EndpointReconcileSeconds { get; set; } = 60;

    /// <summary>The configuration's JSON, as <see cref="Load"/> reads it.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, AgentJsonContext.Default.AgentConfig);

    public static AgentConfig Load(string path)
    {
        byte[] json;
        try
        {
            json = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new AgentConfigException($"{path}: {e.Message}", e);
        }

        return Parse(json, path);
    }

    /// <summary>Reads a configuration's JSON; <paramref name="source"/> names it in errors.</summary>
    public static AgentConfig Parse(ReadOnlySpan<byte> json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize(json, AgentJsonContext.Default.AgentConfig)
                   ?? throw new AgentConfigException($"{source}: empty configuration");
        }
        catch (JsonException e)
        {
            throw new AgentConfigException($"{source}: {e.Message}", e);
        }
    }
}

/// <summary>The agent config's <c>"kubernetes"</c> section.</summary>
public sealed record KubernetesSourceConfig
{
    /// <summary>A kubeconfig file; null: in-cluster (KUBERNETES_SERVICE_HOST/PORT and the service account's token and CA).</summary>
    public string? Kubeconfig { get; set; }
}

public sealed class AgentConfigException : Exception
{
    public AgentConfigException()
    {
    }

    public AgentConfigException(string message)
        : base(message)
    {
    }

    public AgentConfigException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, UseStringEnumConverter = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, ReadCommentHandling = JsonCommentHandling.Skip)]
[JsonSerializable(typeof(AgentConfig))]
internal sealed partial class AgentJsonContext : JsonSerializerContext;
