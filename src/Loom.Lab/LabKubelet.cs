using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Linux;
using Loom.Workloads;

namespace Loom.Lab;

/// <summary>What the kubelet would do for a pod: start the process its image stands for and wait until it listens (before the pod is wired, see LabScheduling).</summary>
internal static class LabKubelet
{
    /// <summary>A container's process and what shows it is ready: a TCP and/or UDP port it serves, a DNS answer.</summary>
    internal sealed record Started(string Container, string Log, int Pid, int? TcpPort, int? UdpPort, bool Dns);

    /// <summary>Starts what each container's image runs inside the namespace, in order; idle (sleep, pause) containers start nothing.</summary>
    internal static List<Started> Start(LabState state, string @namespace, string name, string netns, string node, LabPodSpec? spec)
    {
        spec ??= new LabPodSpec();
        var started = new List<Started>();
        var containers = spec.AllContainers;
        for (var i = 0; i < containers.Count; i++)
        {
            var c = containers[i];
            var log = LabPods.PodLogFile(state, @namespace, name, i == 0 ? null : c.Name);
            Directory.CreateDirectory(Path.GetDirectoryName(log)!);
            File.WriteAllText(log, "");
            int Run(IEnumerable<string> args) => LabProcesses.StartDetached(netns, log, state.LoomPath, args, LabCluster.NodeCgroup(state, node));
            switch (LabImages.Classify(c.Image, c.Command, c.Args))
            {
                case LabImages.Kind.Sleep:
                    break;
                case LabImages.Kind.Whoami:
                    var port = LabImages.WhoamiPort(c.Args);
                    started.Add(new Started(c.Name, log, Run(["whoami", "--port", port.ToString(CultureInfo.InvariantCulture), "--hostname", name]), port, null, false));
                    break;
                case LabImages.Kind.Dns:
                    // It answers before the pod is wired (see LabScheduling): etcd is reached from the node's namespace.
                    string[] dns = ["dns", "--config", Path.Combine(state.NodeDir(node), "agent.json"), "--port", "53"];
                    started.Add(new Started(c.Name, log, Run(state.Store == "etcd" ? [.. dns, "--store-netns", state.Node(node).Netns] : dns), 53, null, true));
                    break;
                case LabImages.Kind.Agnhost:
                    var args = LabImages.AgnhostArgs(c.Command, c.Args);
                    if (args[0] == "pause")
                    {
                        break;
                    }

                    var o = ServeHostname(args, $"pod {name}: container {c.Name}");
                    started.Add(new Started(c.Name, log, Run(["agnhost", "serve-hostname", "--pod-name", name, .. args.Skip(1)]), o.Tcp || o.Http ? o.Port : null, o.Udp ? o.Port : null, false));
                    break;
                default:
                    throw new LabException($"pod {name}: container {c.Name}: image \"{c.Image}\" is not one the lab can run");
            }
        }

        return started;
    }

    /// <summary>agnhost serve-hostname's flags (after the subcommand), or a LabException naming <paramref name="what"/>.</summary>
    internal static ServeHostnameOptions ServeHostname(IReadOnlyList<string> args, string what)
    {
        try
        {
            return Agnhost.ParseServeHostname([.. args.Skip(1)]);
        }
        catch (ArgumentException e)
        {
            throw new LabException($"{what}: agnhost serve-hostname: {e.Message}", e);
        }
    }

    /// <summary>
    /// Waits until the container serves its ports (30 s), and a DNS server answers a query too (it listens before it
    /// has read the store: a first query then waits longer than a client does); a LabException if it exits or never does.
    /// </summary>
    internal static async Task WaitReadyAsync(string name, string netns, Started w, CancellationToken cancellationToken)
    {
        var log = w.Log;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((w.TcpPort is { } tcp && !await ListeningAsync(netns, tcp, cancellationToken).ConfigureAwait(false))
               || (w.UdpPort is { } udp && !await AnswersUdpAsync(netns, udp, cancellationToken).ConfigureAwait(false))
               || (w.Dns && !await AnswersDnsAsync(netns, cancellationToken).ConfigureAwait(false)))
        {
            if (!LabProcesses.IsAlive(w.Pid) || DateTime.UtcNow > deadline)
            {
                var port = (w.TcpPort ?? w.UdpPort ?? 0).ToString(CultureInfo.InvariantCulture);
                throw new LabException($"pod {name}: container {w.Container} {(LabProcesses.IsAlive(w.Pid) ? "did not serve port " + port + " in 30 s" : "exited")}; {log}:\n{Lab.LogTail(log)}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A UDP server is ready when a datagram to it gets an answer (agnhost answers every one).</summary>
    private static async Task<bool> AnswersUdpAsync(string netns, int port, CancellationToken cancellationToken)
    {
        using var ns = NetNs.Open(netns);
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token).ConfigureAwait(false);
            await s.SendAsync("ready?\n"u8.ToArray(), SocketFlags.None, cts.Token).ConfigureAwait(false);
            return await s.ReceiveAsync(new byte[512], SocketFlags.None, cts.Token).ConfigureAwait(false) > 0;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static async Task<bool> AnswersDnsAsync(string netns, CancellationToken cancellationToken)
    {
        using var ns = NetNs.Open(netns);
        try
        {
            await Migration.ProbeRequests.DnsQueryAsync(() => NetNs.Run(ns, Migration.ProbeRequests.Udp), new IPEndPoint(IPAddress.Loopback, 53),
                "kube-dns.kube-system.svc." + Lab.ClusterDomain, TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            return true; // any answer, NXDOMAIN included (the Service may come after its pods)
        }
        catch (Migration.ProbeException)
        {
            return false;
        }
    }

    internal static async Task<bool> ListeningAsync(string netns, int port, CancellationToken cancellationToken)
    {
        using var ns = NetNs.Open(netns);
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(1));
            await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
