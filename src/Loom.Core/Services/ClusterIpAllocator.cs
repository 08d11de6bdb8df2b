using System.Net;
using System.Net.Sockets;
using Loom.Core.Ipam;

namespace Loom.Core.Services;

/// <summary>
/// Hands out ClusterIPs from the service CIDR the way the Kubernetes API server does for a fresh cluster:
/// the network address is never used, the first host address belongs to the <c>kubernetes</c> API service and the
/// tenth to cluster DNS, and both are only handed out to whoever asks for them by address. Pure logic over the set
/// of addresses already taken; persisting Services (and so the set) is the caller's job.
/// </summary>
public sealed class ClusterIpAllocator
{
    private readonly uint _network;
    private readonly uint _size;

    public ClusterIpAllocator(IPNetwork serviceCidr)
    {
        if (serviceCidr.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"only IPv4 service CIDRs are supported, got {serviceCidr}", nameof(serviceCidr));
        }

        // A /31 or /32 has no room for the API server, DNS and a service.
        if (serviceCidr.PrefixLength > 28)
        {
            throw new ArgumentException($"service CIDR {serviceCidr} is too small (at most /28)", nameof(serviceCidr));
        }

        ServiceCidr = serviceCidr;
        _network = ToUInt(serviceCidr.BaseAddress);
        _size = 1u << (32 - serviceCidr.PrefixLength);
        ApiServerIp = FromUInt(_network + 1);
        DnsIp = FromUInt(_network + 10);
    }

    /// <summary>Kubernetes' default service CIDR.</summary>
    public static IPNetwork DefaultServiceCidr { get; } = IPNetwork.Parse("10.96.0.0/12");

    public IPNetwork ServiceCidr { get; }

    /// <summary>The first host address: the <c>default/kubernetes</c> service's.</summary>
    public IPAddress ApiServerIp { get; }

    /// <summary>The tenth host address: what kubelets put in pods' resolv.conf.</summary>
    public IPAddress DnsIp { get; }

    /// <summary>
    /// Returns <paramref name="requested"/> if it is free and inside the range (reserved addresses included: asking is
    /// how the API and DNS services get theirs), else the lowest free unreserved address.
    /// </summary>
    /// <exception cref="ClusterIpAllocationException">the request is taken or out of range, or the range is full.</exception>
    public IPAddress Allocate(IReadOnlySet<IPAddress> used, IPAddress? requested = null)
    {
        ArgumentNullException.ThrowIfNull(used);
        if (requested is not null)
        {
            Check(requested, used);
            return requested;
        }

        var from = FirstOffset;
        return Lowest(used, ref from);
    }

    /// <summary>Whether <paramref name="address"/> is one the allocator would hand out only on request.</summary>
    public bool IsReserved(IPAddress address) => address.Equals(ApiServerIp) || address.Equals(DnsIp);

    // The network address and .1 are never handed out unasked.
    internal const uint FirstOffset = 2;

    /// <summary>
    /// The lowest free unreserved address at or above offset <paramref name="from"/>, which is left at that address: a
    /// caller that only ever adds to <paramref name="used"/> can start its next search there.
    /// </summary>
    internal IPAddress Lowest(IReadOnlySet<IPAddress> used, ref uint from)
    {
        // Skip the broadcast address, and .10 (DNS).
        for (; from < _size - 1; from++)
        {
            if (from == 10)
            {
                continue;
            }

            var candidate = FromUInt(_network + from);
            if (!used.Contains(candidate))
            {
                return candidate;
            }
        }

        throw new ClusterIpAllocationException(ClusterIpAllocationError.Exhausted, $"no free ClusterIP left in {ServiceCidr}");
    }

    /// <summary>Throws unless <paramref name="requested"/> is in range and not in <paramref name="used"/>.</summary>
    internal void CheckRequest(IPAddress requested, IReadOnlySet<IPAddress> used) => Check(requested, used);

    private void Check(IPAddress requested, IReadOnlySet<IPAddress> used)
    {
        if (requested.AddressFamily != AddressFamily.InterNetwork || !ServiceCidr.Contains(requested))
        {
            throw new ClusterIpAllocationException(ClusterIpAllocationError.OutOfRange, $"ClusterIP {requested} is not in the service CIDR {ServiceCidr}");
        }

        var offset = ToUInt(requested) - _network;
        if (offset == 0 || offset == _size - 1)
        {
            throw new ClusterIpAllocationException(ClusterIpAllocationError.OutOfRange, $"ClusterIP {requested} is the network or broadcast address of {ServiceCidr}");
        }

        if (used.Contains(requested))
        {
            throw new ClusterIpAllocationException(ClusterIpAllocationError.InUse, $"ClusterIP {requested} is already allocated");
        }
    }

    // The CIDR and requests are IPv4 (checked before), so the value fits 32 bits.
    private static uint ToUInt(IPAddress a) => (uint)IpMath.ToValue(a);

    private static IPAddress FromUInt(uint v) => IpMath.FromValue(v, AddressFamily.InterNetwork);
}
