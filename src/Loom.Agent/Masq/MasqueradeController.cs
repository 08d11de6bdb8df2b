using Loom.Core.Controllers;

namespace Loom.Agent.Masq;

/// <summary>
/// IP forwarding and the LOOM-POSTRTG / LOOM-FWD rules (flannel's masquerade and forward accept), written at start and
/// checked again every minute, so rules flushed by hand or by another tool come back (flannel re-checks its own too).
/// </summary>
internal sealed class MasqueradeController(NodeContext node, AgentLoops loops) : IController
{
    private static readonly TimeSpan Every = TimeSpan.FromMinutes(1);
    private long _passes;

    public string Name => "masquerade";

    public Task StartAsync(CancellationToken ct)
    {
        Linux.Sysctl.Set("net.ipv4.ip_forward", "1");
        Sync();
        return Task.CompletedTask;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Every);
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            await loops.RetryAsync("masquerade", _ => StartAsync(ct), ct).ConfigureAwait(false);
        }
    }

    public ControllerStatus Describe() =>
        new(Name, loops.LastError("masquerade") is null, node.IpMasq ? $"pod traffic leaving {string.Join(", ", node.Cluster.PodCidrPools)} masqueraded" : "no masquerade",
            Interlocked.Read(ref _passes), loops.LastError("masquerade"));

    private void Sync()
    {
        NodeMasq.Sync(node.Cluster.PodCidrPools, node.PodCidr, node.IpMasq);
        Interlocked.Increment(ref _passes);
    }
}
