using Loom.Core.Cni;
using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

internal sealed partial class BridgePlugin
{
    /// <summary>
    /// GC: the runtime names every attachment still valid; everything else this network holds is released:
    /// addresses in IPAM, masquerade chains (with ipMasq), and host veths on the bridge whose name no valid
    /// attachment hashes to.
    /// </summary>
    private async Task GcAsync()
    {
        var valid = conf.ValidAttachments ?? throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config",
            "key \"cni.dev/valid-attachments\": required for GC");
        await _ipam.GcAsync(valid).ConfigureAwait(false);
        if (conf.IpMasq)
        {
            // An ADD killed after installing masquerade leaves a chain no DEL will come for.
            IpMasq.TeardownAllExcept(conf.Name, valid.Select(v => v.ContainerId).ToHashSet(StringComparer.Ordinal));
        }

        using var host = Netlink.Open();
        if (host.LinkByName(conf.BridgeName) is not { } bridge)
        {
            return;
        }

        var keep = valid.Select(v => HostVeth.Name(v.ContainerId, v.IfName)).ToHashSet(StringComparer.Ordinal);
        foreach (var link in host.LinkList().Where(l => l.MasterIndex == bridge.Index && IsOurs(l.Name) && !keep.Contains(l.Name)))
        {
            host.LinkDel(link.Index);
        }
    }

    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");

    // Only names this plugin makes: "veth" + 11 hex digits. The reference bridge's veths (veth + 8) are left alone.
    private static bool IsOurs(string name) =>
        name.Length == 15 && name.StartsWith(HostVeth.Prefix, StringComparison.Ordinal)
        && name.AsSpan(4).IndexOfAnyExcept(HexDigits) < 0;
}
