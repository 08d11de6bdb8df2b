using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Loom.Workloads;

namespace Loom.Cli.Commands;

/// <summary><c>loom whoami --port 80 --hostname NAME</c>: what the lab runs for the <c>traefik/whoami</c> image.</summary>
internal static class WhoamiCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "TCP port to listen on.", DefaultValueFactory = _ => 80 };
        var hostname = new Option<string>("--hostname") { Description = "The Hostname: line (the pod's name).", DefaultValueFactory = _ => Environment.MachineName };
        var cmd = new Command("whoami", "An HTTP server answering like traefik/whoami: hostname, IPs, remote address, request line and headers.") { port, hostname };
        cmd.SetAction(async (parse, ct) =>
        {
            using var listener = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
            listener.Bind(new IPEndPoint(IPAddress.IPv6Any, parse.GetValue(port)));
            listener.Listen(128);
            Console.WriteLine($"whoami {parse.GetValue(hostname)} listening on :{parse.GetValue(port)}");
            await new WhoamiServer(parse.GetValue(hostname)!, Console.Out).ServeAsync(listener, ct).ConfigureAwait(false);
            return 0;
        });
        return cmd;
    }
}
