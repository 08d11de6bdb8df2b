using System.Text;

namespace Loom.Core.Cni;

/// <summary>Name rules from the spec: container IDs, network names, interface names, plugin types.</summary>
public static class CniNames
{
    /// <summary>Linux IFNAMSIZ is 16 including the terminating NUL.</summary>
    public const int MaxInterfaceNameLength = 15;

    /// <summary>
    /// The IFLA_IFALIAS of a routed pod's host veth in network <paramref name="network"/>: routed veths hang on no bridge,
    /// so this is how GC tells one network's veths from another's, and how eBPF host routing finds a network's pods.
    /// Long network names are hashed to fit IFALIASZ.
    /// </summary>
    public static string RoutedVethAlias(string network)
    {
        ArgumentNullException.ThrowIfNull(network);
        return network.Length <= 200
            ? "loom-cni:" + network
            : "loom-cni:#" + Convert.ToHexStringLower(Sha256.HashData(Encoding.UTF8.GetBytes(network)));
    }

    /// <summary>
    /// The host-side veth of a pod's interface, derived from (container id, ifname) like Cilium's lxc names: a retried
    /// ADD, a DEL after the container's netns is gone, GC and the agent (policy) all find the link without saved state.
    /// </summary>
    public static string HostVethName(string containerId, string ifName)
    {
        var hash = Sha256.HashData(Encoding.UTF8.GetBytes(containerId + "/" + ifName));
        return "veth" + Convert.ToHexStringLower(hash)[..11]; // 15 characters: IFNAMSIZ - 1
    }

    /// <summary>Container IDs and network names: ASCII alphanumeric first, then alphanumerics, '_', '.', '-'.</summary>
    public static bool IsValidIdentifier(string? value)
    {
        if (string.IsNullOrEmpty(value) || !char.IsAsciiLetterOrDigit(value[0]))
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '.' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Why <paramref name="name"/> is not a usable interface name, or null if it is.</summary>
    public static string? InterfaceNameProblem(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "interface name is empty";
        }

        // The kernel limit is in bytes, so count UTF-8 bytes, not chars.
        if (System.Text.Encoding.UTF8.GetByteCount(name) > MaxInterfaceNameLength)
        {
            return $"interface name is too long (max {MaxInterfaceNameLength} bytes)";
        }

        if (name is "." or "..")
        {
            return "interface name is . or ..";
        }

        foreach (var rune in name.EnumerateRunes())
        {
            if (rune.Value is '/' or ':' || Rune.IsWhiteSpace(rune))
            {
                return "interface name contains / or : or whitespace characters";
            }
        }

        return null;
    }

    /// <summary>A plugin <c>type</c> names a file in CNI_PATH, so it must not contain path separators.</summary>
    public static bool IsValidPluginType(string? type) =>
        !string.IsNullOrEmpty(type) && type.IndexOfAny(['/', '\\', '\0']) < 0 && type is not ("." or "..");
}
