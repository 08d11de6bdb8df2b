using Loom.Agent.Networks;
using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Datapath.Networks;
using RoutingMode = Loom.Core.Model.RoutingMode;

namespace Loom.Agent.Cni;

/// <summary>
/// The node's CNI config: a subnet file per network (flannel's subnet.env role: the pool, this node's block, the
/// MTU), and the conflist of the node's primary network, written only once that network is ready on the node (Cilium's
/// write-cni-conf-when-ready): <c>10-loom.conflist</c> for a bridge network, <c>05-loom.conflist</c> for a routed one.
/// Loom's other conflist, and with <c>cniExclusive</c> every other config in the directory, is renamed to
/// <c>*.loom_bak</c>, so the runtime wires new pods into the primary network; pods already running keep theirs.
/// Follows the networks as they change, and re-checks every 30 s: a file removed or changed by hand is written again.
/// </summary>
internal sealed class CniConfigController(NodeContext node, AgentLoops loops, INodeNetworks networks) : IController, IDisposable
{
    private const string Loop = "cni config";
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(30);
    private static readonly string[] ConfigExtensions = [".conf", ".conflist", ".json"];
    private readonly SemaphoreSlim _signal = new(0);
    private long _writes;
    private volatile string? _written;

    public string Name => "cni-config";

    /// <summary>The conflist written for the primary network; null until it is ready.</summary>
    public string? ConflistPath => _written;

    public Task StartAsync(CancellationToken ct)
    {
        networks.Changed += Poke;
        if (!Ensure(out var path))
        {
            throw new InvalidOperationException($"primary network {networks.Primary ?? "(unresolved)"} is not ready on this node; CNI config not written yet");
        }

        loops.Log($"ready: {path} written");
        return Task.CompletedTask;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        while (true)
        {
            await _signal.WaitAsync(Every, ct).ConfigureAwait(false);
            await loops.RetryAsync(Loop, _ =>
            {
                var before = _written;
                if (Ensure(out var path) && before != path)
                {
                    loops.Log($"cni config: primary network {networks.Primary}: {path} written");
                }

                return Task.CompletedTask;
            }, ct).ConfigureAwait(false);
        }
    }

    public ControllerStatus Describe() =>
        new(Name, _written is { } p && File.Exists(p), _written ?? $"not written: primary network {networks.Primary ?? "(unresolved)"} not ready",
            Interlocked.Read(ref _writes), loops.LastError(Loop));

    /// <summary>The conflist that wires a network's pods here: ours whether or not it is the primary.</summary>
    public string ConflistOf(Network n) =>
        Path.Combine(node.Config.CniConfDir, n.Plumbing == Plumbing.Routed ? NodeCniConfig.RoutedConflistName : NodeCniConfig.ConflistName);

    private void Poke() => _signal.Release();

    /// <summary>Subnet files of every network; the primary's conflist if it is ready, and the others set aside. False if not ready.</summary>
    private bool Ensure(out string? path)
    {
        path = null;
        Directory.CreateDirectory(node.Config.StateDir);
        Directory.CreateDirectory(node.Config.CniConfDir);
        var current = networks.Current;
        var bridgeDone = false;
        foreach (var n in current)
        {
            var mtu = MtuOf(n.Network);
            if (n.Network.Plumbing == Plumbing.Routed)
            {
                Write(node.Config.SubnetFileOf(n.Name), NodeCniConfig.RenderSubnetEnv([n.Network.PodCidr], n.Block, mtu, n.Network.Masquerade != Masquerade.None));
            }
            else if (!bridgeDone)
            {
                // One cni0 per node: the first bridge network by name holds it (validation keeps it to one in practice).
                Write(node.Config.SubnetFile, NodeCniConfig.RenderSubnetEnv([n.Network.PodCidr], n.Block, mtu, node.IpMasq && n.Network.Masquerade != Masquerade.None));
                bridgeDone = true;
            }
        }

        RemoveStaleSubnetFiles(current);
        if (current.FirstOrDefault(n => n.Name == networks.Primary) is not { Ready: true } primary)
        {
            return false;
        }

        path = ConflistOf(primary.Network);
        Write(path, primary.Network.Plumbing == Plumbing.Routed
            ? NodeCniConfig.RenderRoutedConflist(node.Config, primary.Name, MtuOf(primary.Network))
            : NodeCniConfig.RenderConflist(node.Config, MtuOf(primary.Network)));
        SetAsideOthers(path);
        _written = path;
        return true;
    }

    /// <summary>Loom's other conflist always; every other config too with cniExclusive. A backup of the file just written is stale: gone.</summary>
    private void SetAsideOthers(string keep)
    {
        var ours = new[] { NodeCniConfig.ConflistName, NodeCniConfig.RoutedConflistName };
        File.Delete(keep + NodeCniConfig.BackupSuffix);
        foreach (var f in Directory.EnumerateFiles(node.Config.CniConfDir))
        {
            var name = Path.GetFileName(f);
            if (f == keep || name.StartsWith('.') || !ConfigExtensions.Contains(Path.GetExtension(f), StringComparer.Ordinal)
                || (!node.Config.CniExclusive && !ours.Contains(name, StringComparer.Ordinal)))
            {
                continue;
            }

            File.Move(f, f + NodeCniConfig.BackupSuffix, overwrite: true);
            Interlocked.Increment(ref _writes);
            loops.Log($"cni config: {name} set aside as {name}{NodeCniConfig.BackupSuffix}");
        }
    }

    private void RemoveStaleSubnetFiles(IReadOnlyList<NetworkOnNode> current)
    {
        var keep = current.Where(n => n.Network.Plumbing == Plumbing.Routed).Select(n => node.Config.SubnetFileOf(n.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(node.Config.StateDir, "subnet-*.env").Where(f => !keep.Contains(f)))
        {
            File.Delete(f);
        }

        // A plumbing no network uses any more: its conflist goes (the runtime must not wire pods into a network that
        // is gone), with its backup and, for the bridge, flannel's subnet.env.
        foreach (var (plumbing, name) in new[] { (Plumbing.Routed, NodeCniConfig.RoutedConflistName), (Plumbing.Bridge, NodeCniConfig.ConflistName) })
        {
            if (!current.Any(n => n.Network.Plumbing == plumbing))
            {
                var conflist = Path.Combine(node.Config.CniConfDir, name);
                File.Delete(conflist);
                File.Delete(conflist + NodeCniConfig.BackupSuffix);
                if (plumbing == Plumbing.Bridge && current.Count > 0)
                {
                    File.Delete(node.Config.SubnetFile);
                }
            }
        }
    }

    private int MtuOf(Network n) => n.RoutingMode == RoutingMode.Tunnel ? node.UnderlayMtu - VxlanDevice.Overhead : node.UnderlayMtu;

    private void Write(string path, string content)
    {
        if (File.Exists(path) && File.ReadAllText(path) == content)
        {
            return;
        }

        NodeCniConfig.WriteAtomically(path, content);
        Interlocked.Increment(ref _writes);
    }

    public void Dispose()
    {
        networks.Changed -= Poke;
        _signal.Dispose();
    }
}
