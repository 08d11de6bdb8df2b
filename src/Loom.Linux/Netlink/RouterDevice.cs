using System.Net;
using System.Net.Sockets;

namespace Loom.Linux;

/// <summary>
/// The device that holds a node's router IP for routed pods (the first address of the node's pod block), as
/// Cilium's <c>cilium_host</c> does: a veth pair <c>loom_host</c>/<c>loom_net</c>, both up, the router IP on
/// <c>loom_host</c> as a /32 (/128). A veth and not a dummy so it needs no extra kernel module, as with Cilium.
/// Pods send everything to the router IP; the node answers it because the address is local here.
/// </summary>
public static class RouterDevice
{
    public const string DefaultName = "loom_host";

    public const string DefaultPeerName = "loom_net";

    private const int EEXIST = 17;

    /// <summary>
    /// Creates the pair if it is missing, brings both ends up and adds <paramref name="routerIp"/>; idempotent, so
    /// an agent can call it on every start. A link of that name that is not a veth is refused, not replaced.
    /// </summary>
    public static Link Ensure(INetlink nl, IPAddress routerIp, string name = DefaultName, string peerName = DefaultPeerName)
    {
        ArgumentNullException.ThrowIfNull(nl);
        ArgumentNullException.ThrowIfNull(routerIp);
        var link = nl.LinkByName(name);
        if (link is null)
        {
            try
            {
                link = nl.LinkAdd(new VethSpec(name, peerName));
            }
            catch (NetlinkException e) when (e.Errno == EEXIST)
            {
                link = nl.LinkByName(name); // another caller made it first
            }
        }

        if (link is null || link.Kind != "veth")
        {
            throw new InvalidOperationException($"{name} exists and is not a veth (kind {link?.Kind ?? "unknown"}); it cannot hold the router IP");
        }

        var peer = nl.LinkByIndex(link.ParentIndex);
        if (peer is null || peer.Name != peerName)
        {
            throw new InvalidOperationException($"{name} is a veth whose peer is {peer?.Name ?? "in another namespace"}, not {peerName}");
        }

        nl.LinkSetUp(peer.Index);
        nl.LinkSetUp(link.Index);
        var bits = routerIp.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (!nl.AddrList(link.Index).Any(a => a.Ip.Equals(routerIp)))
        {
            try
            {
                nl.AddrAdd(link.Index, routerIp, bits);
            }
            catch (NetlinkException e) when (e.Errno == EEXIST)
            {
                // Added concurrently: the goal.
            }
        }

        return nl.LinkByIndex(link.Index) ?? link;
    }

    /// <summary>Removes the pair (the peer and the router IP go with it); nothing to remove is success.</summary>
    public static void Delete(INetlink nl, string name = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(nl);
        if (nl.LinkByName(name) is { } link)
        {
            nl.LinkDel(link.Index);
        }
    }

    /// <summary>The link holding <paramref name="ip"/> in this namespace, or null: a routed pod's router must be local.</summary>
    public static Link? HolderOf(INetlink nl, IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(nl);
        var addr = nl.AddrList(0, ip.AddressFamily).FirstOrDefault(a => a.Ip.Equals(ip));
        return addr is null ? null : nl.LinkByIndex(addr.Index);
    }
}
