using Grpc.Net.Client;
using Loom.Core.Store;

namespace Loom.Store.Etcd;

/// <summary>Connects to etcd (v3 API over gRPC). Nothing is sent until the first call; a dead endpoint fails then.</summary>
public static class EtcdStore
{
    /// <param name="endpoint">Client URL: http://host:2379 (plain-text HTTP/2) or https://host:2379 (TLS).</param>
    /// <param name="prefix">Root of Loom's keys; items live at <c>{prefix}{kind}/{key}</c>.</param>
    /// <param name="tls">Client certificate and CA for an etcd started with <c>--client-cert-auth</c>; needs an https endpoint.</param>
    /// <param name="connect">Makes each connection's stream instead of a plain socket (e.g. a socket made in another
    /// network namespace); TLS and HTTP/2 run on top of it as usual.</param>
    /// <exception cref="EtcdTlsException">A TLS file is missing or unreadable.</exception>
    public static IStore Connect(Uri endpoint, string prefix = "/loom/", EtcdTls? tls = null,
        Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>>? connect = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        if (!prefix.EndsWith('/'))
        {
            throw new ArgumentException("prefix must end with '/'", nameof(prefix));
        }

        if (endpoint.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException($"etcd endpoint {endpoint}: use http:// or https://");
        }

        if (tls is not null && endpoint.Scheme != "https")
        {
            throw new ArgumentException($"etcd endpoint {endpoint}: TLS client certificates need an https:// endpoint");
        }

        var sockets = new SocketsHttpHandler { UseProxy = false, EnableMultipleHttp2Connections = true, ConnectCallback = connect };
        HttpMessageHandler handler = sockets;
        if (endpoint.Scheme == "https")
        {
            sockets.SslOptions = tls?.ClientOptions() ?? new();
            handler = new TlsFailureExplainer(endpoint, sockets.SslOptions, sockets);
        }

        var channel = GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        return new EtcdStoreImpl(channel, prefix);
    }
}
