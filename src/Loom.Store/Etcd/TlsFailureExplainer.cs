using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;

namespace Loom.Store.Etcd;

/// <summary>
/// Turns a failed TLS connection to etcd into a reason. Under TLS 1.3 etcd checks our certificate only after the
/// handshake and answers with an alert that the HTTP/2 client loses ("server did not complete the HTTP/2
/// handshake"); so when a request cannot connect, one probe handshake is made and its alert or certificate error
/// is reported instead.
/// </summary>
internal sealed class TlsFailureExplainer(Uri endpoint, SslClientAuthenticationOptions ssl, HttpMessageHandler inner) : DelegatingHandler(inner)
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (!cancellationToken.IsCancellationRequested)
        {
            var reason = await ProbeAsync(cancellationToken).ConfigureAwait(false);
            if (reason is null)
            {
                throw;
            }

            throw new HttpRequestException(reason, e);
        }
    }

    /// <summary>The reason TLS to etcd fails, or null if a handshake and a first read go through (or TCP itself fails).</summary>
    private async Task<string?> ProbeAsync(CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(ProbeTimeout);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endpoint.IdnHost, endpoint.Port, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return null; // not a TLS problem: the original error says what it is
        }

        var stream = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                await stream.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = endpoint.IdnHost,
                    ClientCertificateContext = ssl.ClientCertificateContext,
                    CertificateChainPolicy = ssl.CertificateChainPolicy,
                    EnabledSslProtocols = ssl.EnabledSslProtocols,
                    ApplicationProtocols = [SslApplicationProtocol.Http2],
                }, cts.Token).ConfigureAwait(false);
            }
            catch (AuthenticationException e)
            {
                return $"etcd at {endpoint}: TLS handshake failed: {Innermost(e)}" +
                       (e.Message.Contains("remote certificate", StringComparison.Ordinal)
                           ? "; the CA file (store.tls.ca) must hold the CA that signed etcd's server certificate, for this address"
                           : "");
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                return null;
            }

            try
            {
                // HTTP/2's preface, so etcd has something to refuse; its verdict on our certificate comes back here.
                await stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), cts.Token).ConfigureAwait(false);
                _ = await stream.ReadAsync(new byte[64], cts.Token).ConfigureAwait(false);
                return null;
            }
            catch (IOException e)
            {
                var who = ssl.ClientCertificateContext is { } c
                    ? $"our client certificate ({c.TargetCertificate.Subject}, issued by {c.TargetCertificate.Issuer})"
                    : "a connection without a client certificate";
                return $"etcd at {endpoint} refused {who}: {Innermost(e)}; etcd with --client-cert-auth accepts only " +
                       "certificates signed by the CA of its --trusted-ca-file (store.tls.cert and store.tls.key)";
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }
    }

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e.Message;
    }
}
