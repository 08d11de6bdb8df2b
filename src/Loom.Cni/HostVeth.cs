using System.Security.Cryptography;
using System.Text;

namespace Loom.Cni;

/// <summary>
/// The host-side veth name is derived from (container id, ifname), like Cilium's lxc names: a retried ADD, a
/// DEL after the container's netns is gone, and GC can all find the link without any saved state.
/// </summary>
internal static class HostVeth
{
    public const string Prefix = "veth";

    public static string Name(string containerId, string ifName)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(containerId + "/" + ifName));
        return Prefix + Convert.ToHexStringLower(hash)[..11]; // 15 characters: IFNAMSIZ - 1
    }
}
