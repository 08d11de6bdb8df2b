using System.Net;

namespace Loom.Core.Ipam;

/// <summary>
/// The node agent's view of one network's IPAM directory (<c>dataDir/network</c>), under the same flock the plugin
/// takes: what is allocated, what is pending release, and the two repairs the agent's endpoint reconciler makes.
/// </summary>
public sealed class AllocationDirectory : IDisposable
{
    private readonly DiskStore _store;

    private AllocationDirectory(DiskStore store) => _store = store;

    public string Path => _store.Directory;

    /// <exception cref="IpamException">Kind Io when the directory or its lock file cannot be opened.</exception>
    public static AllocationDirectory Open(string networkDirectory)
    {
        try
        {
            return new AllocationDirectory(new DiskStore(networkDirectory));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IpamException(IpamErrorKind.Io, $"cannot open IPAM store {networkDirectory}: {e.Message}", e);
        }
    }

    /// <summary>Every address file and whether it is pending release.</summary>
    public (IReadOnlyList<AllocationRecord> Records, IReadOnlySet<IPAddress> Pending) Read() =>
        Locked(() => ((IReadOnlyList<AllocationRecord>)_store.ReadAll(), (IReadOnlySet<IPAddress>)_store.ReadPendingReleases()));

    /// <summary>Frees an address pending release, if it still is and still belongs to <paramref name="owner"/>.</summary>
    public bool ReleasePending(IPAddress address, Attachment owner) => Locked(() =>
    {
        if (!_store.ReadPendingReleases().Contains(address) || _store.ReadAll().FirstOrDefault(r => r.Address.Equals(address)) is not { } r || r.Attachment != owner)
        {
            return false;
        }

        _store.Remove(address);
        return true;
    });

    /// <summary>Gives a corrupt address file back its owner, if it is still corrupt.</summary>
    public bool Rebuild(IPAddress address, Attachment owner) => Locked(() =>
    {
        if (_store.ReadAll().FirstOrDefault(r => r.Address.Equals(address)) is not { IsCorrupt: true })
        {
            return false;
        }

        _store.Rewrite(address, owner);
        return true;
    });

    public void Dispose() => _store.Dispose();

    private T Locked<T>(Func<T> operation)
    {
        try
        {
            using (_store.Lock())
            {
                return operation();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IpamException(IpamErrorKind.Io, $"IPAM store {_store.Directory}: {e.Message}", e);
        }
    }
}
