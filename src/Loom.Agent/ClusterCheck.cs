using System.Net.Sockets;
using Loom.Agent.Cni;
using Loom.Core.Model;
using Loom.Datapath.Services.Ebpf;

namespace Loom.Agent;

/// <summary>
/// Checks the cluster config from the store, and the agent's own settings that depend on it, before the agent touches
/// the kernel: the tunnel device is a link the agent deletes and recreates, so it must be one Loom owns, and pools
/// the agent routes must be sane. Anything wrong stops the start with one message naming the field.
/// </summary>
internal static class ClusterCheck
{
    /// <summary>Every link the agent may delete and recreate starts with this (loom.1 by default).</summary>
    public const string TunnelPrefix = "loom";

    /// <summary>Linux's IFNAMSIZ less the terminating NUL.</summary>
    private const int MaxIfName = 15;

    public static void Validate(ClusterConfig cluster, AgentConfig agent)
    {
        var errors = Errors(cluster, agent).ToList();
        if (errors.Count > 0)
        {
            throw new AgentStartException($"the cluster config in the store (config/cluster) is not usable: {string.Join("; ", errors)}");
        }
    }

    public static IEnumerable<string> Errors(ClusterConfig cluster, AgentConfig agent)
    {
        var pools = cluster.PodCidrPools ?? [];
        if (pools.Count == 0)
        {
            yield return "podCidrPools: at least one pool is required";
            yield break;
        }

        foreach (var p in pools.Where(p => p.BaseAddress.AddressFamily != AddressFamily.InterNetwork))
        {
            yield return $"podCidrPools: {p} is not IPv4 (the overlay is IPv4)";
        }

        for (var i = 0; i < pools.Count; i++)
        {
            foreach (var other in pools.Skip(i + 1).Where(o => Overlap(pools[i], o)))
            {
                yield return $"podCidrPools: {pools[i]} overlaps {other}";
            }
        }

        var widest = pools.Max(p => p.PrefixLength);
        if (cluster.NodeMaskSize < widest || cluster.NodeMaskSize > 30)
        {
            yield return $"nodeMaskSize: /{cluster.NodeMaskSize} must be between /{widest} (the pools) and /30 (room for a gateway and a pod)";
        }

        if (cluster.PodCidrGraceSeconds < 0)
        {
            yield return $"podCidrGraceSeconds: {cluster.PodCidrGraceSeconds} is negative (0 keeps blocks forever)";
        }

        var svc = cluster.ServiceCidr;
        if (pools.Where(p => Overlap(p, svc)).Select(p => (System.Net.IPNetwork?)p).FirstOrDefault() is { } clash)
        {
            yield return $"serviceCidr: {svc} overlaps pod CIDR pool {clash}";
        }

        if (cluster.Tunnel is not { } tunnel)
        {
            yield return "tunnel: missing";
            yield break;
        }

        if (TunnelDeviceError(tunnel.Device, agent.Iface) is { } device)
        {
            yield return device;
        }

        if (tunnel.Vni is < 1 or > 0xFFFFFF)
        {
            yield return $"tunnel.vni: {tunnel.Vni} is not a VXLAN network identifier (1 to 16777215)";
        }

        if (tunnel.Port is < 1 or > 65535)
        {
            yield return $"tunnel.port: {tunnel.Port} is not a UDP port";
        }

        if (agent.LoadBalancerAlgorithm == "maglev" && MaglevError(agent.MaglevTableSize) is { } maglev)
        {
            yield return $"maglevTableSize (agent config): {maglev}";
        }

        if (MapSizesError(agent.BpfMapSizes) is { } sizes)
        {
            yield return $"bpfMapSizes (agent config): {sizes}";
        }
    }

    private static string? MapSizesError(Loom.Datapath.Services.Ebpf.LbMapSizes sizes)
    {
        try
        {
            sizes.Validate();
            return null;
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
    }

    /// <summary>Why <paramref name="name"/> may not be the tunnel device, or null if Loom owns it.</summary>
    public static string? TunnelDeviceError(string? name, string underlay)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxIfName || name is "." or ".."
            || name.Any(c => c is '/' or ':' or '%' || char.IsWhiteSpace(c) || char.IsControl(c) || c > '~'))
        {
            return $"tunnel.device: \"{name}\" is not a Linux interface name (1 to {MaxIfName} printable ASCII characters, no '/', ':' or spaces)";
        }

        if (name == underlay || name == NodeCniConfig.BridgeName || !name.StartsWith(TunnelPrefix, StringComparison.Ordinal))
        {
            return $"tunnel.device: \"{name}\" is not a device Loom owns (the agent deletes and recreates it); its name must start with \"{TunnelPrefix}\" "
                   + $"and be neither the underlay interface ({underlay}) nor the pod bridge ({NodeCniConfig.BridgeName})";
        }

        return null;
    }

    private static bool Overlap(System.Net.IPNetwork a, System.Net.IPNetwork b) => a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress);

    private static string? MaglevError(int size)
    {
        try
        {
            Maglev.ValidateTableSize(size);
            return null;
        }
        catch (ArgumentOutOfRangeException e)
        {
            return e.Message.Split(" (Parameter", 2)[0]; // the sentence, without the exception's parameter suffix
        }
    }
}
