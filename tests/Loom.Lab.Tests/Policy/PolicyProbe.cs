using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Linux;

namespace Loom.Lab.Tests.Policy;

/// <summary>
/// One real connection from inside a pod's network namespace, as agnhost connect makes it: TCP connects (and reads the
/// serving pod's name), UDP sends a datagram and waits for the name back. A dropped packet is a timeout.
/// </summary>
public static class PolicyProbe
{
    public static async Task<(bool Connected, string Detail)> ConnectAsync(string netns, IPAddress ip, int port, ProtocolType protocol, TimeSpan timeout)
    {
        using var ns = NetNs.Open(netns);
        using var socket = NetNs.Run(ns, () => protocol == ProtocolType.Tcp
            ? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
            : new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[256];
        try
        {
            if (protocol == ProtocolType.Tcp)
            {
                await socket.ConnectAsync(new IPEndPoint(ip, port), cts.Token);
                var n = await socket.ReceiveAsync(buffer, cts.Token);
                return (true, Encoding.ASCII.GetString(buffer, 0, n).Trim());
            }

            await socket.SendToAsync(Encoding.ASCII.GetBytes("hostname"), new IPEndPoint(ip, port), cts.Token);
            var got = await socket.ReceiveAsync(buffer, cts.Token);
            return (true, Encoding.ASCII.GetString(buffer, 0, got).Trim());
        }
        catch (OperationCanceledException)
        {
            return (false, "TIMEOUT");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return (false, "REFUSED");
        }
        catch (SocketException e)
        {
            return (false, e.SocketErrorCode.ToString());
        }
    }
}
