using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Loom.Workloads;

/// <summary><c>agnhost serve-hostname</c>'s flags: which servers run on <see cref="Port"/> (upstream's defaults: HTTP only, port 9376).</summary>
public sealed record ServeHostnameOptions(bool Tcp, bool Udp, bool Http, int Port);

/// <summary>
/// What the lab runs for <c>registry.k8s.io/e2e-test-images/agnhost</c>: the two subcommands the upstream
/// NetworkPolicy e2e uses, with agnhost's flags (Go's pflag syntax: <c>--port 80</c>, <c>--port=80</c>,
/// <c>--http=false</c>) and answers (the hostname; "TIMEOUT", "REFUSED" or "OTHER: ..." on stderr).
/// </summary>
public static class Agnhost
{
    public const int DefaultServePort = 9376;

    /// <summary>Parses <c>serve-hostname</c>'s flags; an ArgumentException names a bad or unknown one.</summary>
    public static ServeHostnameOptions ParseServeHostname(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        bool tcp = false, udp = false, http = true;
        var port = DefaultServePort;
        for (var i = 0; i < args.Count; i++)
        {
            var (name, value) = Flag(args[i]);
            switch (name)
            {
                case "tcp":
                    tcp = Bool(name, value);
                    break;
                case "udp":
                    udp = Bool(name, value);
                    break;
                case "http":
                    http = Bool(name, value);
                    break;
                case "close":
                    _ = Bool(name, value); // exit after one request: the lab's servers keep serving
                    break;
                case "port":
                    port = PortValue(value ?? (++i < args.Count ? args[i] : throw new ArgumentException("flag needs an argument: --port")));
                    break;
                default:
                    throw new ArgumentException($"unknown flag: {args[i]}");
            }
        }

        if (tcp && http)
        {
            throw new ArgumentException("--tcp and --http both listen on TCP port " + port.ToString(CultureInfo.InvariantCulture) + ": give --http=false");
        }

        return !tcp && !udp && !http ? throw new ArgumentException("nothing to serve: give --tcp, --udp or --http") : new ServeHostnameOptions(tcp, udp, http, port);
    }

    /// <summary>
    /// Serves until cancelled: every TCP connection gets the hostname and is closed, every UDP datagram is answered
    /// with it, every HTTP request gets it as the body. The sockets are bound before this returns its task.
    /// </summary>
    public static Task ServeHostnameAsync(ServeHostnameOptions options, string hostname, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(hostname);
        ArgumentNullException.ThrowIfNull(log);
        var answer = Encoding.UTF8.GetBytes(hostname);
        var servers = new List<Task>();
        if (options.Tcp || options.Http)
        {
            var listener = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
            listener.Bind(new IPEndPoint(IPAddress.IPv6Any, options.Port));
            listener.Listen(128);
            servers.Add(AcceptAsync(listener, options.Http, answer, log, cancellationToken));
            log.WriteLine($"serve-hostname {hostname}: {(options.Http ? "HTTP" : "TCP")} on :{options.Port}");
        }

        if (options.Udp)
        {
            var udp = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
            udp.Bind(new IPEndPoint(IPAddress.IPv6Any, options.Port));
            servers.Add(AnswerUdpAsync(udp, answer, log, cancellationToken));
            log.WriteLine($"serve-hostname {hostname}: UDP on :{options.Port}");
        }

        log.Flush();
        return Task.WhenAll(servers);
    }

    /// <summary>
    /// <c>agnhost connect HOST:PORT [--timeout=1s] [--protocol=tcp|udp]</c>: 0 when TCP connects or a UDP datagram
    /// gets an answer within the timeout; otherwise 1, with agnhost's reason written to <paramref name="stderr"/>.
    /// </summary>
    public static async Task<int> ConnectAsync(IReadOnlyList<string> args, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stderr);
        string? dest = null;
        var timeout = TimeSpan.FromSeconds(5);
        var protocol = "tcp";
        try
        {
            for (var i = 0; i < args.Count; i++)
            {
                if (!args[i].StartsWith('-'))
                {
                    dest = dest is null ? args[i] : throw new ArgumentException($"one destination expected, got {dest} and {args[i]}");
                    continue;
                }

                var (name, value) = Flag(args[i]);
                value ??= name is "timeout" or "protocol" && ++i < args.Count ? args[i] : value;
                switch (name)
                {
                    case "timeout":
                        timeout = GoDuration(value ?? throw new ArgumentException("flag needs an argument: --timeout"));
                        break;
                    case "protocol":
                        protocol = value ?? throw new ArgumentException("flag needs an argument: --protocol");
                        break;
                    default:
                        throw new ArgumentException($"unknown flag: {args[i]}");
                }
            }

            if (dest is null)
            {
                throw new ArgumentException("usage: agnhost connect HOST:PORT [--timeout=1s] [--protocol=tcp|udp]");
            }
        }
        catch (ArgumentException e)
        {
            await stderr.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 1;
        }

        if (protocol is not ("tcp" or "udp" or ""))
        {
            await stderr.WriteAsync("Unsupported protocol\n").ConfigureAwait(false);
            return 1;
        }

        var reason = await ProbeAsync(dest, timeout, protocol == "udp", cancellationToken).ConfigureAwait(false);
        if (reason is null)
        {
            return 0;
        }

        await stderr.WriteAsync(reason + "\n").ConfigureAwait(false);
        return 1;
    }

    /// <summary>One probe: null on success, else "TIMEOUT", "REFUSED" or "OTHER: ...".</summary>
    public static async Task<string?> ProbeAsync(string dest, TimeSpan timeout, bool udp, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dest);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            var target = await ResolveAsync(dest, cts.Token).ConfigureAwait(false);
            using var s = new Socket(target.AddressFamily, udp ? SocketType.Dgram : SocketType.Stream, udp ? ProtocolType.Udp : ProtocolType.Tcp);
            await s.ConnectAsync(target, cts.Token).ConfigureAwait(false);
            if (!udp)
            {
                return null;
            }

            await s.SendAsync("hostname\n"u8.ToArray(), SocketFlags.None, cts.Token).ConfigureAwait(false);
            var buffer = new byte[1024];
            var n = await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token).ConfigureAwait(false);
            return n > 0 ? null : "OTHER: no data received";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return "TIMEOUT";
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return "REFUSED";
        }
        catch (SocketException e)
        {
            return "OTHER: " + e.Message;
        }
        catch (ArgumentException e)
        {
            return "OTHER: " + e.Message;
        }
    }

    /// <summary>Go's time.ParseDuration for what probes give: "1s", "500ms", "1.5s", "2m".</summary>
    public static TimeSpan GoDuration(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var units = new (string Suffix, double Ms)[] { ("ms", 1), ("us", 0.001), ("µs", 0.001), ("ns", 0.000001), ("s", 1000), ("m", 60_000), ("h", 3_600_000) };
        foreach (var (suffix, ms) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v))
            {
                return TimeSpan.FromMilliseconds(v * ms);
            }
        }

        throw new ArgumentException($"invalid argument \"{text}\" for \"--timeout\" flag: time: invalid duration \"{text}\"");
    }

    private static async Task<IPEndPoint> ResolveAsync(string dest, CancellationToken cancellationToken)
    {
        var colon = dest.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(dest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new ArgumentException($"address {dest}: missing or invalid port");
        }

        var host = dest[..colon].Trim('[', ']');
        if (IPAddress.TryParse(host, out var ip))
        {
            return new IPEndPoint(ip, port);
        }

        var addresses = await Dns.GetHostAddressesAsync(host, AddressFamily.InterNetwork, cancellationToken).ConfigureAwait(false);
        return addresses.Length > 0 ? new IPEndPoint(addresses[0], port) : throw new ArgumentException($"lookup {host}: no such host");
    }

    private static (string Name, string? Value) Flag(string arg)
    {
        if (!arg.StartsWith('-'))
        {
            throw new ArgumentException($"unexpected argument: {arg}");
        }

        var body = arg.TrimStart('-');
        var eq = body.IndexOf('=', StringComparison.Ordinal);
        return eq < 0 ? (body, null) : (body[..eq], body[(eq + 1)..]);
    }

    private static bool Bool(string name, string? value) => value switch
    {
        null or "true" or "1" or "t" or "T" or "TRUE" or "True" => true,
        "false" or "0" or "f" or "F" or "FALSE" or "False" => false,
        _ => throw new ArgumentException($"invalid argument \"{value}\" for \"--{name}\" flag"),
    };

    private static int PortValue(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 1 and <= 65535
            ? p : throw new ArgumentException($"invalid argument \"{text}\" for \"--port\" flag: must be 1-65535");

    private static async Task AcceptAsync(Socket listener, bool http, byte[] answer, TextWriter log, CancellationToken cancellationToken)
    {
        using (listener)
        {
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

                _ = Task.Run(() => AnswerTcpAsync(conn, http, answer, log, cancellationToken), cancellationToken);
            }
        }
    }

    private static async Task AnswerTcpAsync(Socket conn, bool http, byte[] answer, TextWriter log, CancellationToken cancellationToken)
    {
        using (conn)
        {
            try
            {
                if (http)
                {
                    // Read the request head, then answer; the body is the hostname, as agnhost's HTTP handler writes it.
                    var buffer = new byte[8192];
                    var read = 0;
                    while (read < buffer.Length && !Encoding.ASCII.GetString(buffer, 0, read).Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var n = await conn.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                        if (n == 0)
                        {
                            return;
                        }

                        read += n;
                    }

                    var head = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
                        $"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {answer.Length}\r\nConnection: close\r\n\r\n"));
                    await conn.SendAsync(head, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                }

                await conn.SendAsync(answer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                conn.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                await log.WriteLineAsync($"tcp {conn.RemoteEndPoint}: {e.Message}").ConfigureAwait(false);
            }
        }
    }

    private static async Task AnswerUdpAsync(Socket udp, byte[] answer, TextWriter log, CancellationToken cancellationToken)
    {
        using (udp)
        {
            var buffer = new byte[2048];
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    var r = await udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.IPv6Any, 0), cancellationToken).ConfigureAwait(false);
                    await udp.SendToAsync(answer, SocketFlags.None, r.RemoteEndPoint, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (SocketException e)
                {
                    // An ICMP error for an earlier answer surfaces here; the server goes on.
                    await log.WriteLineAsync($"udp: {e.Message}").ConfigureAwait(false);
                }
            }
        }
    }
}
