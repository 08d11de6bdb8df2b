using System.Net;

namespace Loom.Core.Services;

/// <summary>
/// The ClusterIPs taken, for handing out many in a row: the allocator's choices (a request if free, else the lowest
/// free unreserved address), but a search resumes where the last one stopped, so N allocations scan the range once.
/// </summary>
public sealed class ClusterIpPool
{
    private readonly ClusterIpAllocator _allocator;
    private readonly HashSet<IPAddress> _used;
    private uint _from = ClusterIpAllocator.FirstOffset;

    public ClusterIpPool(ClusterIpAllocator allocator, IEnumerable<IPAddress> used)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        ArgumentNullException.ThrowIfNull(used);
        _allocator = allocator;
        _used = [.. used];
    }

    public int Count => _used.Count;

    public bool Contains(IPAddress address) => _used.Contains(address);

    /// <summary>Takes <paramref name="requested"/> or the lowest free unreserved address, and marks it used.</summary>
    /// <exception cref="ClusterIpAllocationException">the request is taken or out of range, or the range is full.</exception>
    public IPAddress Allocate(IPAddress? requested = null)
    {
        IPAddress ip;
        if (requested is not null)
        {
            _allocator.CheckRequest(requested, _used);
            ip = requested;
        }
        else
        {
            ip = _allocator.Lowest(_used, ref _from);
        }

        _used.Add(ip);
        return ip;
    }
}
