using Loom.Core.Store;

namespace Loom.Store.Etcd;

/// <summary>Connects to etcd (v3 API over gRPC). Nothing is sent until the first call; a dead endpoint fails then.</summary>
public static class EtcdStore
{
    /// <param name="endpoint">Client URL, e.g. http://127.0.0.1:2379 (plain-text HTTP/2).</param>
    /// <param name="prefix">Root of Loom's keys; items live at <c>{prefix}{kind}/{key}</c>.</param>
    public static IStore Connect(Uri endpoint, string prefix = "/loom/")
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        if (!prefix.EndsWith('/'))
        {
            throw new ArgumentException("prefix must end with '/'", nameof(prefix));
        }

        return new EtcdStoreImpl(endpoint, prefix);
    }
}
