using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>What the kubelet would do for a pod: start the process its image stands for and wait until it listens (before the pod is wired, see LabScheduling).</summary>
internal static class LabKubelet
{
    /// <summary>Starts what the image runs inside the namespace: its pid and the port it will listen on; null for idle (sleep) pods.</summary>
    internal static (int Pid, int Port)? Start(LabState state, string name, string netns, string node, LabPodSpec? spec)
    {
        spec ??= new LabPodSpec();
        var log = LabPods.PodLogFile(state, name);
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        File.WriteAllText(log, "");
        switch (LabImages.Classify(spec.Image, spec.Command, spec.Args))
        {
            case LabImages.Kind.Sleep:
                return null;
            case LabImages.Kind.Whoami:
                var port = LabImages.WhoamiPort(spec.Args);
                return (LabProcesses.StartDetached(netns, log, state.LoomPath,
                    ["whoami", "--port", port.ToString(CultureInfo.InvariantCulture), "--hostname", name], LabCluster.NodeCgroup(state, node)), port);
            case LabImages.Kind.Dns:
                return (LabProcesses.StartDetached(netns, log, state.LoomPath,
                    ["dns", "--config", Path.Combine(state.NodeDir(node), "agent.json"), "--port", "53"], LabCluster.NodeCgroup(state, node)), 53);
            default:
                throw new LabException($"pod {name}: image \"{spec.Image}\" is not one the lab can run");
        }
    }

    /// <summary>
    /// Waits until the workload listens on its port (30 s), and a DNS server answers a query too (it listens before it
    /// has read the store: a first query then waits longer than a client does); a LabException if it exits or never does.
    /// </summary>
    internal static async Task WaitListeningAsync(LabState state, string name, string netns, LabPodSpec? spec, int pid, int port, CancellationToken cancellationToken)
    {
        var log = LabPods.PodLogFile(state, name);
        var dns = spec is not null && LabImages.Classify(spec.Image, spec.Command, spec.Args) == LabImages.Kind.Dns;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await ListeningAsync(netns, port, cancellationToken).ConfigureAwait(false)
               || (dns && !await AnswersDnsAsync(netns, cancellationToken).ConfigureAwait(false)))
        {
            if (!LabProcesses.IsAlive(pid) || DateTime.UtcNow > deadline)
            {
                throw new LabException($"pod {name}: {spec?.Image} {(LabProcesses.IsAlive(pid) ? "did not listen on port " + port.ToString(CultureInfo.InvariantCulture) + " in 30 s" : "exited")}; {log}:\n{Lab.LogTail(log)}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
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
