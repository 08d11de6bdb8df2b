using System.Net;
using System.Net.Sockets;

namespace Loom.Core.Ipam;

/// <summary>
/// One contiguous pool inside a subnet, host-local's <c>{subnet, rangeStart, rangeEnd, gateway}</c>
/// with its defaults filled in. The network address, the v4 broadcast address and the
/// gateway are never handed out even when they lie between rangeStart and rangeEnd.
/// </summary>
public sealed class IpRange
{
    private IpRange(IPNetwork subnet, UInt128 start, UInt128 end, UInt128 gateway)
    {
        var family = subnet.BaseAddress.AddressFamily;
        Subnet = subnet;
        Start = start;
        End = end;
        GatewayValue = gateway;
        Network = IpMath.ToValue(subnet.BaseAddress);
        Last = Network | IpMath.HostMask(subnet.PrefixLength, family);
        RangeStart = IpMath.FromValue(start, family);
        RangeEnd = IpMath.FromValue(end, family);
        Gateway = IpMath.FromValue(gateway, family);
    }

    public IPNetwork Subnet { get; }

    /// <summary>
    /// A subnet's gateway when none is configured: its first address (network + 1), as host-local. The agent puts it on
    /// the node's bridge while IPAM hands it to pods as their gateway, so every user takes it from here.
    /// </summary>
    public static IPAddress DefaultGateway(IPNetwork subnet) =>
        IpMath.FromValue(IpMath.ToValue(subnet.BaseAddress) + 1, subnet.BaseAddress.AddressFamily);

    /// <summary>First address of the pool, inclusive.</summary>
    public IPAddress RangeStart { get; }

    /// <summary>Last address of the pool, inclusive.</summary>
    public IPAddress RangeEnd { get; }

    public IPAddress Gateway { get; }

    public AddressFamily AddressFamily => Subnet.BaseAddress.AddressFamily;

    internal UInt128 Start { get; }

    internal UInt128 End { get; }

    internal UInt128 GatewayValue { get; }

    internal UInt128 Network { get; }

    /// <summary>Highest address of the subnet (the broadcast address for v4).</summary>
    internal UInt128 Last { get; }

    /// <summary>How many addresses of the pool can really be handed out.</summary>
    internal UInt128 Capacity
    {
        get
        {
            var size = End - Start + 1;
            foreach (var reserved in ReservedValues())
            {
                if (reserved >= Start && reserved <= End)
                {
                    size--;
                }
            }

            return size;
        }
    }

    /// <summary>Builds a range, applying host-local's defaults and validating it.</summary>
    /// <exception cref="IpamConfigException">The range is unusable; the key names the bad field.</exception>
    public static IpRange Create(IPNetwork subnet, IPAddress? rangeStart = null, IPAddress? rangeEnd = null, IPAddress? gateway = null)
        => Create(subnet, rangeStart, rangeEnd, gateway, keyPrefix: "");

    internal static IpRange Create(IPNetwork subnet, IPAddress? rangeStart, IPAddress? rangeEnd, IPAddress? gateway, string keyPrefix)
    {
        var family = subnet.BaseAddress.AddressFamily;
        var bits = IpMath.Bits(family);
        if (subnet.PrefixLength > bits - 2)
        {
            // Same limit as host-local: a /31 or /32 (/127, /128) leaves nothing after network and gateway.
            throw new IpamConfigException(keyPrefix + "subnet", $"{keyPrefix}subnet {subnet} is too small to allocate from (prefix must be at most /{bits - 2})");
        }

        var network = IpMath.ToValue(subnet.BaseAddress);
        var last = network | IpMath.HostMask(subnet.PrefixLength, family);
        var broadcast = family == AddressFamily.InterNetwork ? last : (UInt128?)null;

        var start = rangeStart is null ? network + 1 : InSubnet(rangeStart, "rangeStart");
        var end = rangeEnd is null ? (broadcast is null ? last : last - 1) : InSubnet(rangeEnd, "rangeEnd");
        var gw = gateway is null ? IpMath.ToValue(DefaultGateway(subnet)) : InSubnet(gateway, "gateway");

        if (start > end)
        {
            throw new IpamConfigException(keyPrefix + "rangeEnd", $"{keyPrefix}rangeEnd {IpMath.Format(IpMath.FromValue(end, family))} is before rangeStart {IpMath.Format(IpMath.FromValue(start, family))}");
        }

        if (gw == network || gw == broadcast)
        {
            throw new IpamConfigException(keyPrefix + "gateway", $"{keyPrefix}gateway {gateway} is the {(gw == network ? "network" : "broadcast")} address of subnet {subnet}");
        }

        var range = new IpRange(subnet, start, end, gw);
        if (range.Capacity == 0)
        {
            throw new IpamConfigException(keyPrefix + "rangeStart", $"{keyPrefix}rangeStart-rangeEnd {range} holds no allocatable address (only network, broadcast or gateway)");
        }

        return range;

        UInt128 InSubnet(IPAddress address, string field)
        {
            var key = keyPrefix + field;
            if (address.AddressFamily != family)
            {
                throw new IpamConfigException(key, $"{key} {address} is not of the same address family as subnet {subnet}");
            }

            if (!subnet.Contains(address))
            {
                throw new IpamConfigException(key, $"{key} {IpMath.Format(address)} is outside subnet {subnet}");
            }

            return IpMath.ToValue(address);
        }
    }

    /// <summary>True if the address lies between rangeStart and rangeEnd (reserved ones included).</summary>
    public bool Contains(IPAddress address)
        => address.AddressFamily == AddressFamily && Contains(IpMath.ToValue(address));

    /// <summary>True for the network, v4 broadcast and gateway addresses, which are never handed out.</summary>
    public bool IsReserved(IPAddress address)
        => address.AddressFamily == AddressFamily && IsReserved(IpMath.ToValue(address));

    internal bool Contains(UInt128 value) => value >= Start && value <= End;

    internal bool IsReserved(UInt128 value) => ReservedValues().Contains(value);

    internal bool Overlaps(IpRange other)
        => other.AddressFamily == AddressFamily && Start <= other.End && other.Start <= End;

    internal IPAddress ToAddress(UInt128 value) => IpMath.FromValue(value, AddressFamily);

    public override string ToString() => $"{IpMath.Format(RangeStart)}-{IpMath.Format(RangeEnd)}";

    private UInt128[] ReservedValues()
        => AddressFamily == AddressFamily.InterNetwork ? [Network, Last, GatewayValue] : [Network, GatewayValue];
}
