using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Bench.Policy;

/// <summary>
/// A client pod retrying a TCP connect to the target about every millisecond, on one thread inside the pod's
/// namespace: each attempt is a new non-blocking socket (new source port, a new flow for the policy program) whose SYN
/// a deny drops; an attempt still pending after <see cref="AttemptTimeout"/> is abandoned (its SYN is retransmitted
/// only after 1 s, so a pending attempt says nothing about what changed since). The first handshake that completes
/// is the moment the allow reached the target's node for this client.
/// </summary>
internal sealed class Prober(string node, NetNsHandle netns, IPEndPoint target)
{
    public static readonly TimeSpan AttemptTimeout = TimeSpan.FromMilliseconds(200);

    private static readonly LingerOption Reset = new(true, 0);

    public string Node { get; } = node;

    /// <summary>
    /// Attempts until one completes or <paramref name="limit"/> passes; the Stopwatch timestamp of the completion, or
    /// null. <paramref name="attempts"/> counts the sockets opened; <paramref name="started"/> is signalled once the
    /// thread is in the pod's namespace, about to open the first.
    /// </summary>
    public long? UntilConnected(TimeSpan limit, CancellationToken ct, out int attempts, CountdownEvent? started = null)
    {
        var opened = 0;
        var done = NetNs.Run(netns, () =>
        {
            started?.Signal();
            var pending = new List<(Socket Socket, long Started)>();
            var freq = Stopwatch.Frequency;
            var end = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * freq);
            var maxAge = (long)(AttemptTimeout.TotalSeconds * freq);
            try
            {
                while (Stopwatch.GetTimestamp() < end && !ct.IsCancellationRequested)
                {
                    if (Open() is { } socket)
                    {
                        pending.Add((socket, Stopwatch.GetTimestamp()));
                    }

                    opened++;
                    if (pending.Count == 0)
                    {
                        Thread.Sleep(1);
                        continue;
                    }

                    var writable = pending.Select(p => p.Socket).ToList();
                    var failed = pending.Select(p => p.Socket).ToList();
                    Socket.Select(null, writable, failed, 1000);
                    var now = Stopwatch.GetTimestamp();
                    foreach (var s in writable)
                    {
                        if ((int)s.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)! == 0)
                        {
                            return now;
                        }
                    }

                    // Refused or failed (writable with an error), or too old: closed, a new attempt follows.
                    var gone = pending.Where(p => writable.Contains(p.Socket) || failed.Contains(p.Socket) || now - p.Started > maxAge).ToList();
                    foreach (var p in gone)
                    {
                        p.Socket.Dispose();
                        pending.Remove(p);
                    }
                }

                return (long?)null;
            }
            finally
            {
                foreach (var (s, _) in pending)
                {
                    s.LingerState = Reset;
                    s.Dispose();
                }
            }
        });
        attempts = opened;
        return done;
    }

    /// <summary>Whether no attempt completes within <paramref name="window"/> (the target denies this client).</summary>
    public bool Denied(TimeSpan window, CancellationToken ct) => UntilConnected(window, ct, out _) is null;

    /// <summary>A socket whose handshake is under way; null if connect failed at once (no route, refused locally).</summary>
    private Socket? Open()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false, LingerState = Reset };
        try
        {
            s.Connect(target);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.AlreadyInProgress)
        {
            // EINPROGRESS: the handshake goes on; Select says how it ended
        }
        catch (SocketException)
        {
            s.Dispose();
            return null;
        }

        return s;
    }
}
