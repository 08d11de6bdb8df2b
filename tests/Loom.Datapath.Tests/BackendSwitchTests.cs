using System.Net;
using Loom.Datapath.Services;
using static Loom.Datapath.Tests.ServiceLab;

namespace Loom.Datapath.Tests;

/// <summary>Switching the cluster's service backend: each Flush leaves nothing the other could trip over.</summary>
public sealed class BackendSwitchTests : IDisposable
{
    private readonly ServiceLab _lab = new(2, 80);

    public void Dispose() => _lab.Dispose();

    [Fact]
    public void Iptables_to_nftables_to_iptables_leaves_no_rule_of_the_other()
    {
        var desired = new[] { Service("webpod", "10.96.0.100", 80, [1, 2]), Service("empty", "10.96.0.50", 80, []) };
        var web = IPAddress.Parse("10.96.0.100");
        var ipt = ServiceBackends.Iptables();
        var nft = ServiceBackends.Nftables();

        _lab.InNode(() => ipt.Sync(desired));
        Assert.Equal(["pod1", "pod2"], _lab.TcpMany(web, 80, 30).ToHashSet().Order());

        _lab.InNode(() =>
        {
            ipt.Flush();
            nft.Sync(desired);
        });
        Assert.DoesNotContain("KUBE-", _lab.Shell("iptables-save"), StringComparison.Ordinal);
        Assert.Equal(["pod1", "pod2"], _lab.TcpMany(web, 80, 30).ToHashSet().Order());
        Assert.Equal("refused", _lab.TcpOutcome(IPAddress.Parse("10.96.0.50"), 80).Outcome);

        _lab.InNode(() =>
        {
            nft.Flush();
            ipt.Sync(desired);
        });
        Assert.DoesNotContain("kube-proxy", _lab.Shell("nft", "list", "ruleset"), StringComparison.Ordinal);
        Assert.Equal(["pod1", "pod2"], _lab.TcpMany(web, 80, 30).ToHashSet().Order());
        Assert.Equal("refused", _lab.TcpOutcome(IPAddress.Parse("10.96.0.50"), 80).Outcome);
    }
}
