namespace Loom.Cni;

/// <summary>
/// The host-side veth name is derived from (container id, ifname), like Cilium's lxc names: a retried ADD, a
/// DEL after the container's netns is gone, and GC can all find the link without any saved state.
/// </summary>
internal static class HostVeth
{
    public const string Prefix = "veth";

    public static string Name(string containerId, string ifName) => Loom.Core.Cni.CniNames.HostVethName(containerId, ifName);

    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>Only names this plugin makes: "veth" + 11 hex digits. The reference bridge's veths (veth + 8) are left alone.</summary>
    public static bool IsOurs(string name) =>
        name.Length == 15 && name.StartsWith(Prefix, StringComparison.Ordinal)
        && name.AsSpan(Prefix.Length).IndexOfAnyExcept(HexDigits) < 0;
}
