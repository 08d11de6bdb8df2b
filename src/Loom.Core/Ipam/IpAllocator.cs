namespace Loom.Core.Ipam;

/// <summary>Entry point: opens the allocator for a network's data directory.</summary>
public static class IpAllocator
{
    /// <summary>Creates <c>dataDir/name</c> if needed and opens its lock file (not locked yet).</summary>
    /// <exception cref="IpamException">Kind Io when the directory or lock file cannot be set up.</exception>
    public static IIpAllocator Open(IpamConfig config)
    {
        try
        {
            return new DiskIpAllocator(config, new DiskStore(config.NetworkDirectory));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IpamException(IpamErrorKind.Io, $"cannot open IPAM store {config.NetworkDirectory}: {e.Message}", e);
        }
    }
}
