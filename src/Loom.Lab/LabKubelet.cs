using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>What the kubelet would do for a pod: start the process its image stands for and wait until it listens.</summary>
internal static class LabKubelet
{
    /// <summary>Starts what the image runs inside the pod's namespace and waits until it listens; null for idle (sleep) pods.</summary>
    internal static async Task<int?> StartWorkloadAsync(LabState state, LabPod pod, CancellationToken cancellationToken)
    {
        var spec = pod.Spec ?? new LabPodSpec();
        var log = LabPods.PodLogFile(state, pod.Name);
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        File.WriteAllText(log, "");
        int pid, port;
        switch (LabImages.Classify(spec.Image, spec.Command, spec.Args))
        {
            case LabImages.Kind.Sleep:
                return null;
            case LabImages.Kind.Whoami:
                port = LabImages.WhoamiPort(spec.Args);
                pid = LabProcesses.StartDetached(pod.Netns, log, state.LoomPath,
                    ["whoami", "--port", port.ToString(CultureInfo.InvariantCulture), "--hostname", pod.Name], LabCluster.NodeCgroup(state, pod.Node));
                break;
            case LabImages.Kind.Dns:
                port = 53;
                pid = LabProcesses.StartDetached(pod.Netns, log, state.LoomPath,
                    ["dns", "--config", Path.Combine(state.NodeDir(pod.Node), "agent.json"), "--port", "53"], LabCluster.NodeCgroup(state, pod.Node));
                break;
            default:
                throw new LabException($"pod {pod.Name}: image \"{spec.Image}\" is not one the lab can run");
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await ListeningAsync(pod.Netns, port, cancellationToken).ConfigureAwait(false))
        {
            if (!LabProcesses.IsAlive(pid) || DateTime.UtcNow > deadline)
            {
                throw new LabException($"pod {pod.Name}: {spec.Image} {(LabProcesses.IsAlive(pid) ? "did not listen on port " + port.ToString(CultureInfo.InvariantCulture) + " in 30 s" : "exited")}; {log}:\n{Lab.LogTail(log)}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        return pid;
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
