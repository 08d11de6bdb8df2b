using System.Net;
using System.Text.RegularExpressions;
using Loom.Datapath.Services;
using Loom.Linux.Firewall;
using static Loom.Datapath.Tests.ServiceLab;

namespace Loom.Datapath.Tests;

public sealed class IptablesKernelTests : BackendKernelTests
{
    private protected override IServiceBackend NewBackend() => new IptablesServiceBackend(new ServiceProxyOptions()) { KeepLastInput = true };

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
        Assert.DoesNotContain("KUBE-SERVICES", input, StringComparison.Ordinal); // both jumps stay: KUBE-SERVICES untouched
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

    [Fact]
    public void Partial_syncs_change_kube_services_rule_by_rule()
    {
        var b = (IptablesServiceBackend)NewBackend();
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        var other = IPAddress.Parse("10.96.0.101");
        Sync(b, web, Service("other", "10.96.0.101", 80, [1]));

        Sync(b, web, Service("other", "10.96.0.101", 80, [])); // loses its last endpoint: jump out, REJECT in
        Assert.False(b.LastSyncWasFull);
        Assert.Equal(["default/webpod cluster IP"], ServiceRules("nat"));
        Assert.Equal(["default/other has no endpoints"], ServiceRules("filter"));
        Assert.Equal("refused", Lab.TcpOutcome(other, 80).Outcome);

        Sync(b, web, Service("other", "10.96.0.101", 80, [2])); // its first endpoint again: REJECT out, jump in
        Assert.False(b.LastSyncWasFull);
        Assert.Equal(["default/other cluster IP", "default/webpod cluster IP"], ServiceRules("nat").Order());
        Assert.Empty(ServiceRules("filter"));
        Assert.All(Lab.TcpMany(other, 80, 10), a => Assert.Equal("pod2", a));

        Sync(b, web with { Backends = [web.Backends[1]] }); // other removed, webpod's endpoint change leaves its jump alone
        Assert.False(b.LastSyncWasFull);
        var input = b.LastRestoreInput!.Split('\n');
        Assert.Contains("default/other cluster IP", Assert.Single(input, l => l.Contains("KUBE-SERVICES", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.DoesNotContain("default/other", Dump(), StringComparison.Ordinal);
        Assert.All(Lab.TcpMany(IPAddress.Parse("10.96.0.100"), 80, 10), a => Assert.Equal("pod2", a));
    }

    [Fact]
    public void A_rule_deleted_behind_its_back_fails_the_partial_sync_and_the_next_full_one_repairs_it()
    {
        var b = (IptablesServiceBackend)NewBackend();
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        Sync(b, web, Service("other", "10.96.0.101", 80, [1]));
        var otherChain = KubeProxyNames.IptablesServiceChain(new ServicePortName("default", "other", null), "tcp");
        // Someone else deletes other's jump (by its number in KUBE-SERVICES).
        var number = ServiceRules("nat").IndexOf("default/other cluster IP") + 1;
        Assert.True(number > 0);
        Lab.Shell("iptables", "-t", "nat", "-D", "KUBE-SERVICES", number.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // other loses its last endpoint: the -D of its jump finds no such rule and the nat batch fails whole.
        var error = Assert.Throws<FirewallException>(() => Sync(b, web, Service("other", "10.96.0.101", 80, [])));
        Assert.Contains("-D KUBE-SERVICES", error.Message, StringComparison.Ordinal);
        Assert.Contains($":{otherChain} ", Lab.Shell("iptables-save", "-t", "nat"), StringComparison.Ordinal); // its -X did not happen

        // The agent retries: the backend forgot what it applied, so this sync reads the kernel and rewrites it all.
        Sync(b, web, Service("other", "10.96.0.101", 80, []));
        Assert.True(b.LastSyncWasFull);
        Assert.Equal(["default/webpod cluster IP"], ServiceRules("nat"));
        Assert.Equal(["default/other has no endpoints"], ServiceRules("filter"));
        Assert.DoesNotContain($":{otherChain} ", Lab.Shell("iptables-save", "-t", "nat"), StringComparison.Ordinal);
        Assert.Equal("refused", Lab.TcpOutcome(IPAddress.Parse("10.96.0.101"), 80).Outcome);
        Assert.Equal(["pod1", "pod2"], Lab.TcpMany(IPAddress.Parse("10.96.0.100"), 80, 40).ToHashSet().Order());

        // A partial sync after the repair works again.
        Sync(b, web, Service("other", "10.96.0.101", 80, [2]));
        Assert.False(b.LastSyncWasFull);
        Assert.All(Lab.TcpMany(IPAddress.Parse("10.96.0.101"), 80, 10), a => Assert.Equal("pod2", a));
    }

    // The comments of the services' KUBE-SERVICES rules of one table, in the kernel's order; nat's node-port tail
    // call, checked to be the last rule, is left out.
    private List<string> ServiceRules(string table)
    {
        var comments = Lab.Shell("iptables-save", "-t", table).Split('\n')
            .Where(l => l.StartsWith("-A KUBE-SERVICES ", StringComparison.Ordinal))
            .Select(l => Regex.Match(l, "--comment \"([^\"]*)\"").Groups[1].Value).ToList();
        if (table == "nat")
        {
            Assert.StartsWith("kubernetes service nodeports", comments[^1], StringComparison.Ordinal);
            comments.RemoveAt(comments.Count - 1);
        }

        return comments;
    }
}
