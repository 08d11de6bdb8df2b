using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>What the kubelet would do for a pod: start the process its image stands for and wait until it listens.</summary>
internal static class LabKubelet
{
    /// <summary>
    /// Starts what the image runs inside the pod's namespace and waits until it listens; null for idle (sleep) pods.
    /// Run before the pod is wired: its endpoint becomes a Service backend at CNI ADD, and the lab has no readiness
    /// probe to hold it back until the server answers, so the server must already listen by then.
    /// </summary>
    internal static int? StartWorkload(LabState state, string podName, string node, string netns, LabPodSpec? spec)
    {
        spec ??= new LabPodSpec();
        var log = LabPods.PodLogFile(state, podName);
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        File.WriteAllText(log, "");
        int pid, port;
        switch (LabImages.Classify(spec.Image, spec.Command, spec.Args))
        {
            case LabImages.Kind.Sleep:
                return null;
            case LabImages.Kind.Whoami:
                port = LabImages.WhoamiPort(spec.Args);
                pid = LabProcesses.StartDetached(netns, log, state.LoomPath,
                    ["whoami", "--port", port.ToString(CultureInfo.InvariantCulture), "--hostname", podName], LabCluster.NodeCgroup(state, node));
                break;
            case LabImages.Kind.Dns:
                port = 53;
                pid = LabProcesses.StartDetached(netns, log, state.LoomPath,
                    ["dns", "--config", Path.Combine(state.NodeDir(node), "agent.json"), "--port", "53"], LabCluster.NodeCgroup(state, node));
                break;
            default:
                throw new LabException($"pod {podName}: image \"{spec.Image}\" is not one the lab can run");
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!Listening(netns, port))
        {
            if (!LabProcesses.IsAlive(pid) || DateTime.UtcNow > deadline)
            {
                var alive = LabProcesses.IsAlive(pid);
                LabProcesses.Kill(pid);
                throw new LabException($"pod {podName}: {spec.Image} {(alive ? "did not listen on port " + port.ToString(CultureInfo.InvariantCulture) + " in 30 s" : "exited")}; {log}:\n{Lab.LogTail(log)}");
            }

            Thread.Sleep(50);
        }

        return pid;
    }

    private static bool Listening(string netns, int port)
    {
        using var ns = NetNs.Open(netns);
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            return s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).Wait(TimeSpan.FromSeconds(1));
        }
        catch (AggregateException e) when (e.InnerException is SocketException)
        {
            return false;
        }
    }
}
