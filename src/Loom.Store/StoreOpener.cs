using Loom.Core.Store;
using Loom.Store.Etcd;
using Loom.Store.Sqlite;

namespace Loom.Store;

/// <summary>Opens the cluster store a <see cref="StoreConfig"/> names; the agent, the CLI and the lab all go through here.</summary>
public static class StoreOpener
{
    /// <exception cref="StoreConfigException">The section is not usable; the message names the field.</exception>
    public static Task<IStore> OpenAsync(StoreConfig config, CancellationToken cancellationToken = default) =>
        OpenAsync(config, connect: null, cancellationToken);

    /// <param name="config">The store section.</param>
    /// <param name="connect">etcd only: makes each connection's stream (e.g. a socket made in another network namespace).</param>
    /// <param name="cancellationToken">Cancels opening.</param>
    /// <exception cref="StoreConfigException">The section is not usable; the message names the field.</exception>
    public static async Task<IStore> OpenAsync(StoreConfig config, Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>>? connect,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        switch (config.Type)
        {
            case "sqlite":
                if (config.KeepRevisions < 0)
                {
                    throw new StoreConfigException($"store.keepRevisions: {config.KeepRevisions} is negative; use 0 to keep every revision");
                }

                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(config.Path))!);
                return await SqliteStore.OpenAsync(config.Path, new SqliteStoreOptions { KeepRevisions = config.KeepRevisions }, cancellationToken)
                    .ConfigureAwait(false);
            case "etcd":
                if (config.Endpoints.Count == 0)
                {
                    throw new StoreConfigException("store.endpoints: etcd needs at least one endpoint");
                }

                if (config.Tls is { Ca: "" })
                {
                    throw new StoreConfigException("store.tls.ca: the CA file that signed etcd's server certificate is required");
                }

                try
                {
                    var tls = config.Tls is { } t ? new EtcdTls(t.Ca, t.Cert, t.Key) : null;
                    return EtcdStore.Connect(new Uri(config.Endpoints[0]), tls: tls, connect: connect);
                }
                catch (Exception e) when (e is EtcdTlsException or ArgumentException or UriFormatException)
                {
                    throw new StoreConfigException($"store: {e.Message}", e);
                }
            default:
                throw new StoreConfigException($"store.type: \"{config.Type}\" is not a store; use sqlite or etcd");
        }
    }
}
