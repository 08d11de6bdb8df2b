using System.Net;
using System.Net.Sockets;
using Loom.Core.Cni;
using Loom.Core.Model;

namespace Loom.Core.Validation;

/// <summary>
/// A <see cref="Network"/> on its own and against the others of its cluster. Every error names the key as the
/// cluster file spells it, under the caller's prefix (<c>networks[1].</c> in a cluster file, empty for one network).
/// </summary>
public static class NetworkValidation
{
    /// <summary>Each node's block needs room for its gateway (or router IP) and a pod.</summary>
    public const int MaxNodeMaskSize = 30;

    public const int MaxVni = 0xFFFFFF;

    /// <summary>Every tunnel device starts with it: the agent deletes and recreates the device, so it must be one Loom owns.</summary>
    public const string DevicePrefix = "loom";

    /// <summary>The routed plumbing's host device (Cilium's cilium_host); no tunnel may take its name.</summary>
    public const string RoutedHostDevice = "loom_host";

    public static IReadOnlyList<FieldError> Validate(Network network, string prefix = "")
    {
        var errors = new List<FieldError>();
        Validate(errors, network, prefix);
        return errors;
    }

    public static void Validate(List<FieldError> errors, Network network, string prefix)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(prefix);
        ObjectValidation.Name(errors, network.Name, prefix + "name", NameValidation.IsDns1123Label);
        var pool = Cidr(errors, network.PodCidr, prefix + "podCIDR", required: true);
        if (pool is { } p && (network.NodeMaskSize < p.PrefixLength || network.NodeMaskSize > MaxNodeMaskSize))
        {
            errors.Add(FieldError.Invalid(prefix + "nodeMaskSize", network.NodeMaskSize,
                $"must be between {p.PrefixLength} (the podCIDR's prefix) and {MaxNodeMaskSize} (room for the node's gateway and a pod)"));
        }

        Defined(errors, network.Plumbing, prefix + "plumbing");
        Defined(errors, network.RoutingMode, prefix + "routingMode");
        Defined(errors, network.HostRouting, prefix + "hostRouting");
        Defined(errors, network.Masquerade, prefix + "masquerade");
        Routing(errors, network, prefix);
        if (Cidr(errors, network.NativeRoutingCidr, prefix + "nativeRoutingCIDR", required: false) is { } native && pool is { } p2
            && !(native.PrefixLength <= p2.PrefixLength && native.Contains(p2.BaseAddress)))
        {
            errors.Add(FieldError.Invalid(prefix + "nativeRoutingCIDR", native.ToString(),
                $"must contain the podCIDR {p2}: pod-to-pod traffic outside it would be masqueraded"));
        }

        if (network.HostRouting == HostRouting.Bpf && network.Plumbing == Plumbing.Bridge)
        {
            errors.Add(FieldError.Invalid(prefix + "hostRouting", "bpf",
                "needs plumbing: routed: the tc programs redirect to the pod's own veth peer, which a bridge port is not (its pods resolve their gateway on cni0)"));
        }

        if (network.HostRouting == HostRouting.Bpf && network.Masquerade == Masquerade.Iptables)
        {
            errors.Add(FieldError.Invalid(prefix + "masquerade", "iptables",
                "cannot go with hostRouting: bpf: pod traffic then skips netfilter, so iptables never sees it to masquerade it; use bpf or none"));
        }
    }

    /// <summary>What <paramref name="network"/> may not share with the other networks of its cluster: pool addresses, a tunnel port or a device.</summary>
    public static void Conflicts(List<FieldError> errors, Network network, IEnumerable<Network> others, string prefix)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(others);
        foreach (var other in others)
        {
            if (IsSet(network.PodCidr) && IsSet(other.PodCidr) && Overlap(network.PodCidr, other.PodCidr))
            {
                errors.Add(FieldError.Invalid(prefix + "podCIDR", network.PodCidr.ToString(), $"overlaps the podCIDR {other.PodCidr} of network \"{other.Name}\""));
            }

            if (network.Tunnel is { } t && other.Tunnel is { } o && network.RoutingMode == RoutingMode.Tunnel && other.RoutingMode == RoutingMode.Tunnel)
            {
                if (t.Port == o.Port)
                {
                    errors.Add(FieldError.Invalid(prefix + "tunnel.port", t.Port,
                        $"network \"{other.Name}\" already tunnels on this UDP port; a node has one VXLAN socket per port"));
                }

                if (string.Equals(t.Device, o.Device, StringComparison.Ordinal))
                {
                    errors.Add(FieldError.Invalid(prefix + "tunnel.device", t.Device, $"network \"{other.Name}\" already uses this device"));
                }
            }

            if (network.Plumbing == Plumbing.Bridge && other.Plumbing == Plumbing.Bridge)
            {
                errors.Add(FieldError.Invalid(prefix + "plumbing", "bridge",
                    $"network \"{other.Name}\" is already the bridge network; a node has one pod bridge (cni0): use routed plumbing"));
            }
        }
    }

    public static bool Overlap(IPNetwork a, IPNetwork b) => a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress);

    private static void Routing(List<FieldError> errors, Network network, string prefix)
    {
        if (network.RoutingMode == RoutingMode.Native)
        {
            if (network.Tunnel is not null)
            {
                errors.Add(FieldError.Forbidden(prefix + "tunnel", "a network with routingMode: native has no tunnel"));
            }

            if (!network.AutoDirectNodeRoutes)
            {
                errors.Add(FieldError.Invalid(prefix + "autoDirectNodeRoutes", "false",
                    "routingMode: native needs autoDirectNodeRoutes: true: the lab's underlay is one L2 segment and Loom announces "
                    + "no routes otherwise (no BGP), so nothing else would tell a node the way to its peers' blocks"));
            }

            return;
        }

        if (network.AutoDirectNodeRoutes)
        {
            errors.Add(FieldError.Forbidden(prefix + "autoDirectNodeRoutes", "only with routingMode: native; a tunnel network reaches its peers through the tunnel"));
        }

        if (network.Tunnel is not { } t)
        {
            if (network.RoutingMode == RoutingMode.Tunnel)
            {
                errors.Add(FieldError.Required(prefix + "tunnel", "routingMode: tunnel needs {protocol, port, vni, device}"));
            }

            return;
        }

        Defined(errors, t.Protocol, prefix + "tunnel.protocol");
        foreach (var m in NameValidation.IsValidPortNum(t.Port))
        {
            errors.Add(FieldError.Invalid(prefix + "tunnel.port", t.Port, m));
        }

        if (t.Vni is < 1 or > MaxVni)
        {
            errors.Add(FieldError.Invalid(prefix + "tunnel.vni", t.Vni, $"must be a VXLAN network identifier, 1 to {MaxVni}"));
        }

        if (CniNames.InterfaceNameProblem(t.Device) is { } problem)
        {
            errors.Add(FieldError.Invalid(prefix + "tunnel.device", t.Device, problem));
        }
        else if (!t.Device.StartsWith(DevicePrefix, StringComparison.Ordinal) || t.Device == RoutedHostDevice)
        {
            errors.Add(FieldError.Invalid(prefix + "tunnel.device", t.Device,
                $"must start with \"{DevicePrefix}\" (the agent deletes and recreates it, so it must be a device Loom owns) and not be {RoutedHostDevice}"));
        }
    }

    private static IPNetwork? Cidr(List<FieldError> errors, IPNetwork? cidr, string field, bool required)
    {
        if (cidr is not { } c || !IsSet(c))
        {
            if (required)
            {
                errors.Add(FieldError.Required(field, "a pool such as 10.244.0.0/16"));
            }

            return null;
        }

        if (c.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
        {
            errors.Add(FieldError.Invalid(field, c.ToString(), "must be an IPv4 CIDR (the datapath is IPv4)"));
            return null;
        }

        return c;
    }

    // default(IPNetwork) reads as 0.0.0.0/0: the field was never set (and the whole address space is no pool).
    private static bool IsSet(IPNetwork cidr) => cidr.BaseAddress is not null && cidr.PrefixLength > 0;

    private static void Defined<T>(List<FieldError> errors, T value, string field)
        where T : struct, Enum
    {
        if (!Enum.IsDefined(value))
        {
            errors.Add(FieldError.NotSupported(field, value.ToString(), "not one of " + string.Join(", ", Enum.GetNames<T>())));
        }
    }
}
