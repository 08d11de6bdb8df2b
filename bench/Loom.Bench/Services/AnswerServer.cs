using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Bench.Services;

/// <summary>
/// The server side of <see cref="LoadGen"/>: a blocking accept loop on a thread of its own that reads a 4-byte request,
/// answers a fixed 4-byte reply and closes. The listening socket is created inside the pod's namespace; accepted
/// sockets belong to it whatever thread accepts them.
/// </summary>
internal sealed class AnswerServer : IDisposable
{
    private readonly Socket _listener;
    private readonly Thread _thread;

    private AnswerServer(Socket listener, byte[] reply)
    {
        _listener = listener;
        _thread = new Thread(() => Serve(listener, reply)) { IsBackground = true, Name = "lbs-server" };
        _thread.Start();
    }

    public static AnswerServer Start(NetNsHandle pod, int port, string answer)
    {
        var reply = System.Text.Encoding.ASCII.GetBytes(answer);
        var listener = NetNs.Run(pod, () =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            l.Bind(new IPEndPoint(IPAddress.Any, port));
            l.Listen(4096);
            return l;
        });
        return new AnswerServer(listener, reply);
    }

    public void Dispose()
    {
        _listener.Dispose();
        _thread.Join(2000);
    }

    private static void Serve(Socket listener, byte[] reply)
    {
        var buf = new byte[16];
        while (true)
        {
            Socket c;
            try
            {
                c = listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            try
            {
                c.NoDelay = true;
                c.ReceiveTimeout = 2000;
                var got = 0;
                while (got < 4)
                {
                    var n = c.Receive(buf, got, 4 - got, SocketFlags.None);
                    if (n == 0)
                    {
                        break;
                    }

                    got += n;
                }

                if (got == 4)
                {
                    c.Send(reply);
                }
            }
            catch (SocketException)
            {
                // a client that went away; keep serving
            }
            finally
            {
                c.Dispose();
            }
        }
    }
}
