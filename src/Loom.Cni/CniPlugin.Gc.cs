using Loom.Core.Cni;
using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

internal abstract partial class CniPlugin
{
    /// <summary>
    /// GC: the runtime names every attachment still valid; everything else this network holds is released:
    /// addresses in IPAM, masquerade chains (with ipMasq), and this network's host veths whose name no valid
    /// attachment hashes to (their routes go with them).
    /// </summary>
    private async Task GcAsync()
    {
        var valid = Conf.ValidAttachments ?? throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config",
            "key \"cni.dev/valid-attachments\": required for GC");
        await Ipam.GcAsync(valid).ConfigureAwait(false);
        if (Conf.IpMasq)
        {
            // An ADD killed after installing masquerade leaves a chain no DEL will come for.
            IpMasq.TeardownAllExcept(Conf.Name, valid.Select(v => v.ContainerId).ToHashSet(StringComparer.Ordinal));
        }

        using var host = Netlink.Open();
        var keep = valid.Select(v => HostVeth.Name(v.ContainerId, v.IfName)).ToHashSet(StringComparer.Ordinal);
        foreach (var link in HostVeths(host).Where(l => !keep.Contains(l.Name)).ToList())
        {
            DeleteLink(host, link.Name);
        }
    }

    /// <summary>The host veths of this network on the node, as this plumbing marks them.</summary>
    protected abstract IEnumerable<Link> HostVeths(INetlink host);
}
