using Loom.Core.Controllers;

namespace Loom.Agent.Cni;

/// <summary>
/// The node's CNI config (the conflist and flannel's subnet.env), written once the datapath is in place: the runtime
/// starts pods on the node only once it is there (write-cni-conf-when-ready). Checked every 30 s afterwards; a file
/// removed or changed by hand is written again.
/// </summary>
internal sealed class CniConfigController(NodeContext node, AgentLoops loops, Func<int> mtu) : IController
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(30);
    private long _writes;

    public string Name => "cni-config";

    public string ConflistPath => Path.Combine(node.Config.CniConfDir, NodeCniConfig.ConflistName);

    public Task StartAsync(CancellationToken ct)
    {
        Ensure();
        loops.Log($"ready: {ConflistPath} written");
        return Task.CompletedTask;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Every);
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            await loops.RetryAsync("cni config", _ =>
            {
                if (Ensure())
                {
                    loops.Log($"cni config: {ConflistPath} or {node.Config.SubnetFile} was missing or changed; written again");
                }

                return Task.CompletedTask;
            }, ct).ConfigureAwait(false);
        }
    }

    public ControllerStatus Describe() =>
        new(Name, File.Exists(ConflistPath), ConflistPath, Interlocked.Read(ref _writes), loops.LastError("cni config"));

    /// <summary>Writes whichever file is missing or differs; true if one was written.</summary>
    private bool Ensure()
    {
        Directory.CreateDirectory(node.Config.StateDir);
        var wrote = Write(node.Config.SubnetFile, NodeCniConfig.RenderSubnetEnv(node.Cluster.PodCidrPools, node.PodCidr, mtu(), node.IpMasq));
        wrote |= Write(ConflistPath, NodeCniConfig.RenderConflist(node.Config, mtu()));
        return wrote;
    }

    private bool Write(string path, string content)
    {
        if (File.Exists(path) && File.ReadAllText(path) == content)
        {
            return false;
        }

        NodeCniConfig.WriteAtomically(path, content);
        Interlocked.Increment(ref _writes);
        return true;
    }
}
