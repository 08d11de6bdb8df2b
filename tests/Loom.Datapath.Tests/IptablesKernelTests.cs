using Loom.Datapath.Services;
using static Loom.Datapath.Tests.ServiceLab;

namespace Loom.Datapath.Tests;

public sealed class IptablesKernelTests : BackendKernelTests
{
    private protected override IServiceBackend NewBackend() => ServiceBackends.Iptables();

    private protected override string Dump() =>
        string.Join('\n', Lab.Shell("iptables-save").Split('\n').Where(l => !l.StartsWith('#')));

    private protected override void AssertClean(string dump) => Assert.DoesNotContain("KUBE-", dump, StringComparison.Ordinal);

    [Fact]
    public void Iptables_save_reads_back_kube_proxys_rules()
    {
        var b = NewBackend();
        Sync(b, Service("webpod", "10.96.0.100", 80, [1, 2]));
        var svc = KubeProxyNames.IptablesServiceChain(new ServicePortName("default", "webpod", null), "tcp");
        var sep1 = KubeProxyNames.IptablesEndpointChain(new ServicePortName("default", "webpod", null), "tcp", new BackendAddress(PodIp(1), 80));
        var sep2 = KubeProxyNames.IptablesEndpointChain(new ServicePortName("default", "webpod", null), "tcp", new BackendAddress(PodIp(2), 80));
        var nat = Lab.Shell("iptables-save", "-t", "nat");
        Assert.Contains($"-A KUBE-SERVICES -d 10.96.0.100/32 -p tcp -m comment --comment \"default/webpod cluster IP\" -m tcp --dport 80 -j {svc}", nat, StringComparison.Ordinal);
        Assert.Contains($"-A {svc} ! -s 10.244.0.0/16 -d 10.96.0.100/32 -p tcp -m comment --comment \"default/webpod cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ", nat, StringComparison.Ordinal);
        Assert.Contains($"-A {svc} -m comment --comment \"default/webpod -> 10.244.1.2:80\" -m statistic --mode random --probability 0.50000000000 -j {sep1}", nat, StringComparison.Ordinal);
        Assert.Contains($"-A {svc} -m comment --comment \"default/webpod -> 10.244.2.2:80\" -j {sep2}", nat, StringComparison.Ordinal);
        Assert.Contains($"-A {sep1} -s 10.244.1.2/32 -m comment --comment \"default/webpod\" -j KUBE-MARK-MASQ", nat, StringComparison.Ordinal);
        Assert.Contains($"-A {sep1} -p tcp -m comment --comment \"default/webpod\" -m tcp -j DNAT --to-destination 10.244.1.2:80", nat, StringComparison.Ordinal);
        Assert.Contains("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN", nat, StringComparison.Ordinal);
        Assert.Contains("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES", nat, StringComparison.Ordinal);
    }

    [Fact]
    public void A_partial_sync_rewrites_only_the_changed_service()
    {
        var b = (IptablesServiceBackend)NewBackend();
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        Sync(b, web, Service("other", "10.96.0.101", 80, [1]));
        Sync(b, web, Service("other", "10.96.0.101", 80, [2]));
        var input = b.LastRestoreInput!;
        var webChain = KubeProxyNames.IptablesServiceChain(web.Name, "tcp");
        var otherChain = KubeProxyNames.IptablesServiceChain(new ServicePortName("default", "other", null), "tcp");
        Assert.DoesNotContain($":{webChain} ", input, StringComparison.Ordinal);
        Assert.Contains($":{otherChain} - [0:0]", input, StringComparison.Ordinal);
        Assert.Contains($"-j {webChain}", input, StringComparison.Ordinal); // KUBE-SERVICES is rewritten whole
        Assert.Contains("-X KUBE-SEP-", input, StringComparison.Ordinal); // other's old endpoint chain
        Assert.DoesNotContain("-I ", input, StringComparison.Ordinal); // hook jumps already there
        Assert.Equal(["pod1", "pod2"], Lab.TcpMany(System.Net.IPAddress.Parse("10.96.0.100"), 80, 40).ToHashSet().Order());
        Assert.All(Lab.TcpMany(System.Net.IPAddress.Parse("10.96.0.101"), 80, 10), a => Assert.Equal("pod2", a));
    }

    [Fact]
    public void Only_a_full_sync_reads_the_kernel_and_a_flush_asks_for_one_again()
    {
        var b = (IptablesServiceBackend)NewBackend();
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        Sync(b, web);
        Assert.True(b.LastSyncWasFull);
        Sync(b, web with { Backends = [web.Backends[1]] });
        Assert.False(b.LastSyncWasFull);
        Assert.All(Lab.TcpMany(System.Net.IPAddress.Parse("10.96.0.100"), 80, 10), a => Assert.Equal("pod2", a));
        Lab.InNode(b.Flush);
        Sync(b, web);
        Assert.True(b.LastSyncWasFull);
        Assert.Equal(["pod1", "pod2"], Lab.TcpMany(System.Net.IPAddress.Parse("10.96.0.100"), 80, 40).ToHashSet().Order());
    }
}
