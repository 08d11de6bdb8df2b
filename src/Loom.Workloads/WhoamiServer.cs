using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;

namespace Loom.Workloads;

/// <summary>
/// What the <c>traefik/whoami</c> image serves: for every HTTP request, the hostname, each local IP, the client's
/// address, then the request line and headers, as text. Plain HTTP/1.1 over a socket, one response per connection.
/// </summary>
public sealed class WhoamiServer
{
    private readonly string _hostname;
    private readonly TextWriter _log;

    public WhoamiServer(string hostname, TextWriter log)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostname);
        _hostname = hostname;
        _log = log ?? TextWriter.Null;
    }

    /// <summary>Serves on <paramref name="listener"/> (already bound and listening) until cancelled.</summary>
    public async Task ServeAsync(Socket listener, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(listener);
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket conn;
            try
            {
                conn = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(conn, cancellationToken), cancellationToken);
        }
    }

    /// <summary>The response body for one request (request line and headers as received).</summary>
    public string Body(IEnumerable<string> localIps, EndPoint? remote, IReadOnlyList<string> requestLines)
    {
        ArgumentNullException.ThrowIfNull(requestLines);
        var sb = new StringBuilder();
        sb.Append("Hostname: ").Append(_hostname).Append('\n');
        foreach (var ip in localIps)
        {
            sb.Append("IP: ").Append(ip).Append('\n');
        }

        sb.Append("RemoteAddr: ").Append(Format(remote)).Append('\n');
        foreach (var line in requestLines)
        {
            sb.Append(line).Append('\n');
        }

        sb.Append('\n');
        return sb.ToString();
    }

    /// <summary>Every address of every interface, loopback first, as whoami lists them.</summary>
    public static IReadOnlyList<string> LocalIps() =>
        [.. NetworkInterface.GetAllNetworkInterfaces()
            .OrderBy(i => i.NetworkInterfaceType == NetworkInterfaceType.Loopback ? 0 : 1)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address.IsIPv6LinkLocal ? new IPAddress(a.Address.GetAddressBytes()).ToString() : a.Address.ToString())];

    /// <summary>ip:port as Go prints it: IPv4-mapped addresses as plain IPv4, IPv6 in brackets.</summary>
    public static string Format(EndPoint? endpoint) => endpoint switch
    {
        IPEndPoint ip when ip.Address.IsIPv4MappedToIPv6 => new IPEndPoint(ip.Address.MapToIPv4(), ip.Port).ToString(),
        null => "",
        _ => endpoint.ToString() ?? "",
    };

    private async Task HandleAsync(Socket conn, CancellationToken cancellationToken)
    {
        using (conn)
        {
            try
            {
                using var stream = new NetworkStream(conn, ownsSocket: false);
                using var reader = new StreamReader(stream, Encoding.ASCII, false, 4096, leaveOpen: true);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var lines = new List<string>();
                while (await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false) is { Length: > 0 } line && lines.Count < 100)
                {
                    lines.Add(line);
                }

                if (lines.Count == 0)
                {
                    return;
                }

                var body = Encoding.UTF8.GetBytes(Body(LocalIps(), conn.RemoteEndPoint, lines));
                var head = string.Create(CultureInfo.InvariantCulture,
                    $"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {body.Length}\r\nDate: {DateTimeOffset.UtcNow:r}\r\nConnection: close\r\n\r\n");
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head), timeout.Token).ConfigureAwait(false);
                await stream.WriteAsync(body, timeout.Token).ConfigureAwait(false);
                await _log.WriteLineAsync($"{DateTimeOffset.UtcNow:O} {Format(conn.RemoteEndPoint)} {lines[0]}").ConfigureAwait(false);
                await _log.FlushAsync(cancellationToken).ConfigureAwait(false);
                conn.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                // client went away or timed out
            }
        }
    }
}
