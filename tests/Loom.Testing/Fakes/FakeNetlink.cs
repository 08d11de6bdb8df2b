using System.Net;
using Loom.Linux;

namespace Loom.Testing.Fakes;

/// <summary>
/// An in-memory network namespace behind <see cref="INetlink"/>: links (loopback, veth, bridge, dummy, vxlan),
/// addresses with their connected routes, routes, neighbours and vxlan FDB entries. It rejects what the kernel
/// rejects with the errno the kernel uses (as a <see cref="NetlinkException"/>), so code under test meets the same
/// failures, and <see cref="Dump"/> prints the state as sorted ip-like lines for golden tests.
/// Members are grouped per object like the real client: FakeNetlink.Link.cs, .Addr.cs, .Route.cs, .Neigh.cs.
/// Not modelled: IPv6 link-local addresses and routes, the local routing table, a veth peer's other namespace.
/// </summary>
public sealed partial class FakeNetlink : INetlink
{
    private const uint IffUp = 0x1;
    private const uint IffLoopback = 0x8;
    private const uint IffPromisc = 0x100;

    private readonly Lock _gate = new();
    private readonly SortedDictionary<int, Link> _links = [];
    private readonly HashSet<int> _hairpin = [];
    private readonly Dictionary<int, string> _peers = [];
    private int _nextIndex = 1;

    public FakeNetlink()
    {
        // A new namespace starts with its loopback device, down.
        Add(new Link(_nextIndex++, "lo") { Mtu = 65536, Flags = IffLoopback, HardwareAddr = new System.Net.NetworkInformation.PhysicalAddress(new byte[6]) });
    }

    /// <summary>Successful mutating calls (an FDB append the kernel ignores does not count), to assert that a reconciler touched only what it had to.</summary>
    public int Writes { get; private set; }

    /// <summary>The namespace as <see cref="NetlinkDump"/> prints it (IPv4), for golden tests.</summary>
    public string Dump() => NetlinkDump.Of(this);

    /// <summary>Whether hairpin mode is on for a bridge port (the real client can set it but not read it back).</summary>
    public bool Hairpin(int index)
    {
        lock (_gate)
        {
            return _hairpin.Contains(index);
        }
    }

    public void Dispose()
    {
    }

    private static NetlinkException Error(int errno, string operation, string? subject, string? message = null) =>
        new(errno, operation, subject, message);

    private Link Require(int index, string operation) =>
        _links.GetValueOrDefault(index) ?? throw Error(Errno.ENODEV, operation, $"ifindex {index}");

    private string NameOf(int index) => _links.GetValueOrDefault(index)?.Name ?? $"if{index}";

    private void Add(Link link) => _links[link.Index] = link;

    private void Wrote() => Writes++;

    private static string Mac(System.Net.NetworkInformation.PhysicalAddress? mac) => NetlinkDump.Mac(mac);

    private static bool SameFamily(IPAddress ip, System.Net.Sockets.AddressFamily family) =>
        family == System.Net.Sockets.AddressFamily.Unspecified || ip.AddressFamily == family;
}
