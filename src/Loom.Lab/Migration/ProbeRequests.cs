using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Loom.Lab.Migration;

/// <summary>
/// The probe's two requests, each on a socket of its own (a new flow every time, as a client that does not pool):
/// an HTTP GET and a DNS A query. Sockets are made by <paramref name="socket"/>-style factories so a caller can
/// create them inside a namespace (a socket keeps the namespace it was made in).
/// </summary>
public static class ProbeRequests
{
    /// <summary>GET / on <paramref name="target"/>; the answering host's name (whoami's "Hostname:" line) on a 200, else throws with the stage that failed.</summary>
    public static async Task<string> HttpGetAsync(Func<Socket> newSocket, IPEndPoint target, TimeSpan timeout, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(newSocket);
        ArgumentNullException.ThrowIfNull(target);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var stage = "socket";
        Socket? s = null;
        try
        {
            s = newSocket();
            stage = "connect";
            await s.ConnectAsync(target, cts.Token).ConfigureAwait(false);
            stage = "send";
            await s.SendAsync(Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"), SocketFlags.None, cts.Token).ConfigureAwait(false);
            stage = "receive";
            var response = new StringBuilder();
            var buffer = new byte[4096];
            int n;
            while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token).ConfigureAwait(false)) > 0)
            {
                response.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            var text = response.ToString();
            if (!text.StartsWith("HTTP/1.1 200", StringComparison.Ordinal) && !text.StartsWith("HTTP/1.0 200", StringComparison.Ordinal))
            {
                throw new ProbeException($"http {target}: {(text.Length == 0 ? "empty response" : text.Split('\n')[0].Trim())}");
            }

            var host = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("Hostname:", StringComparison.Ordinal));
            return host is null ? "" : host["Hostname:".Length..].Trim();
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            var port = (s?.LocalEndPoint as IPEndPoint)?.Port;
            throw new ProbeException($"http {target}: {stage}: {(e is OperationCanceledException ? "timed out" : e.Message)}{(port is { } p ? $" (local port {p})" : "")}", e);
        }
        finally
        {
            s?.Dispose();
        }
    }

    /// <summary>An A query for <paramref name="name"/> to <paramref name="server"/> over UDP; the addresses answered, else throws.</summary>
    public static async Task<IReadOnlyList<IPAddress>> DnsLookupAsync(Func<Socket> newSocket, IPEndPoint server, string name, TimeSpan timeout, CancellationToken ct)
    {
        var reply = await DnsQueryAsync(newSocket, server, name, timeout, ct).ConfigureAwait(false);
        try
        {
            return Answers(reply, name, server);
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
            throw new ProbeException($"dns {name} @{server}: a reply cut short or malformed", e);
        }
    }

    /// <summary>
    /// An A query over UDP: the server's reply, whatever its return code; throws when none comes in the timeout. Sent
    /// again once after half of it, as resolvers do: a lookup answered then took 1 s or more, and the probe shows that.
    /// </summary>
    public static async Task<byte[]> DnsQueryAsync(Func<Socket> newSocket, IPEndPoint server, string name, TimeSpan timeout, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(newSocket);
        ArgumentNullException.ThrowIfNull(server);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var id = (ushort)Random.Shared.Next(ushort.MaxValue);
        Socket? s = null;
        try
        {
            s = newSocket();
            var query = Query(id, name);
            await s.SendToAsync(query, SocketFlags.None, server, cts.Token).ConfigureAwait(false);
            var buffer = new byte[1500];
            // As a resolver does (glibc, musl): the query is sent again when half the time passed without an answer.
            using var resend = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
            resend.CancelAfter(timeout / 2);
            var resent = false;
            while (true)
            {
                try
                {
                    var r = await s.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), resent ? cts.Token : resend.Token).ConfigureAwait(false);
                    if (r.ReceivedBytes >= 12 && BinaryPrimitives.ReadUInt16BigEndian(buffer) == id)
                    {
                        return buffer[..r.ReceivedBytes];
                    }
                }
                catch (OperationCanceledException) when (!resent && !cts.IsCancellationRequested)
                {
                    resent = true;
                    await s.SendToAsync(query, SocketFlags.None, server, cts.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new ProbeException($"dns {name} @{server}: {(e is OperationCanceledException ? "timed out" : e.Message)}", e);
        }
        finally
        {
            s?.Dispose();
        }
    }

    /// <summary>A UDP or TCP IPv4 socket in the calling thread's namespace.</summary>
    public static Socket Tcp() => new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    public static Socket Udp()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Any, 0));
        return s;
    }

    internal static byte[] Query(ushort id, string name)
    {
        var q = new List<byte>(64);
        q.AddRange([(byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // recursion desired, one question
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            if (label.Length is 0 or > 63)
            {
                throw new ArgumentException($"not a DNS name: \"{name}\"", nameof(name));
            }

            q.Add((byte)label.Length);
            q.AddRange(Encoding.ASCII.GetBytes(label));
        }

        q.AddRange([0, 0, 1, 0, 1]); // root, type A, class IN
        return [.. q];
    }

    // The A records of an answer; the question is skipped by its length, answers' names may be compressed.
    internal static IReadOnlyList<IPAddress> Answers(ReadOnlySpan<byte> m, string name, IPEndPoint server)
    {
        var rcode = m[3] & 0x0f;
        if (rcode != 0)
        {
            throw new ProbeException($"dns {name} @{server}: rcode {(rcode == 3 ? "NXDOMAIN" : rcode.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
        }

        var answers = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
        var at = 12 + Query(0, name).Length - 12;
        var found = new List<IPAddress>();
        for (var i = 0; i < answers && at < m.Length; i++)
        {
            at = SkipName(m, at);
            var type = BinaryPrimitives.ReadUInt16BigEndian(m[at..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(m[(at + 8)..]);
            at += 10;
            if (type == 1 && length == 4)
            {
                found.Add(new IPAddress(m.Slice(at, 4)));
            }

            at += length;
        }

        return found.Count > 0 ? found : throw new ProbeException($"dns {name} @{server}: no A record in the answer");
    }

    private static int SkipName(ReadOnlySpan<byte> m, int at)
    {
        while (m[at] != 0)
        {
            if ((m[at] & 0xc0) == 0xc0)
            {
                return at + 2;
            }

            at += m[at] + 1;
        }

        return at + 1;
    }
}

/// <summary>A probe request that failed: the message names the request, the stage and why.</summary>
public sealed class ProbeException : Exception
{
    public ProbeException()
    {
    }

    public ProbeException(string message) : base(message)
    {
    }

    public ProbeException(string message, Exception inner) : base(message, inner)
    {
    }
}
