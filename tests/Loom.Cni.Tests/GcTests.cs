using System.Diagnostics;
using System.Text.Json.Nodes;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Cni.Tests;

/// <summary>
/// GC (1.1.0): everything this network holds for attachments not in cni.dev/valid-attachments (or the older
/// cni.dev/attachments) is released: IPAM records and host veths. Also the crash-safety story: what a killed ADD
/// leaves behind is exactly what GC reclaims.
/// </summary>
public sealed class GcTests : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    private static JsonArray Attachments(params string[] ids) =>
        new(ids.Select(id => (JsonNode)new JsonObject { ["containerID"] = id, ["ifname"] = "eth0" }).ToArray());

    private CniRun Gc(string key, params string[] valid)
    {
        var conf = _node.Conf();
        conf[key] = Attachments(valid);
        return _node.Exec("GC", conf, ifName: null);
    }

    private string[] Ports() => _node.BridgePorts().Select(l => l.Name).Order(StringComparer.Ordinal).ToArray();

    private static string[] Veths(params string[] ids) => ids.Select(id => CniNode.HostVethName(id)).Order(StringComparer.Ordinal).ToArray();

    [Theory]
    [InlineData("cni.dev/valid-attachments")]
    [InlineData("cni.dev/attachments")]
    public void Gc_releases_what_is_not_in_the_valid_list_and_keeps_the_rest(string key)
    {
        var conf = _node.Conf();
        _node.Add(conf, "ga", _node.NewPod());
        _node.Add(conf, "gb", _node.NewPod());
        var podC = _node.NewPod();
        _node.Add(conf, "gc", podC);
        Assert.Equal(["10.244.7.2", "10.244.7.3", "10.244.7.4"], _node.IpamFiles());

        var run = Gc(key, "ga", "gb");
        Assert.True(run.Ok, run.ToString());
        Assert.Equal(["10.244.7.2", "10.244.7.3"], _node.IpamFiles());
        Assert.Equal(Veths("ga", "gb"), Ports());
        Assert.Null(podC.Netlink.LinkByName("eth0"));

        run = Gc(key, "ga");
        Assert.True(run.Ok, run.ToString());
        Assert.Equal(["10.244.7.2"], _node.IpamFiles());
        Assert.Equal(Veths("ga"), Ports());

        run = Gc(key);
        Assert.True(run.Ok, run.ToString());
        Assert.Empty(_node.IpamFiles());
        Assert.Empty(Ports());
    }

    [Fact]
    public void Gc_on_a_node_with_nothing_yet_succeeds() => Assert.True(Gc("cni.dev/valid-attachments").Ok);

    [Fact]
    public void Gc_without_the_attachment_list_is_code_7_and_releases_nothing()
    {
        _node.Add(_node.Conf(), "g1", _node.NewPod());
        CniAssert.Error(_node.Exec("GC", _node.Conf(), ifName: null), 7, "cni.dev/valid-attachments");
        Assert.Equal(["10.244.7.2"], _node.IpamFiles());
    }

    [Fact]
    public void Gc_with_an_older_config_version_is_code_1()
    {
        var conf = _node.Conf("1.0.0");
        conf["cni.dev/valid-attachments"] = Attachments();
        CniAssert.Error(_node.Exec("GC", conf, ifName: null), 1, "GC", "1.1.0");
    }

    [Fact]
    public void Gc_leaves_links_it_did_not_make_alone()
    {
        _node.Add(_node.Conf(), "g1", _node.NewPod());
        // A reference-plugin style veth (veth + 8 hex) on the same bridge is not ours to remove.
        _node.Netlink.LinkAdd(new VethSpec("veth0123abcd", "peer0"));
        _node.Netlink.LinkSetMaster(_node.Netlink.LinkByName("veth0123abcd")!.Index, _node.Bridge().Index);
        Assert.True(Gc("cni.dev/valid-attachments").Ok);
        Assert.Equal(["veth0123abcd"], Ports());
    }

    [Fact]
    public void Leftovers_of_a_crashed_add_are_reclaimed_by_gc()
    {
        var conf = _node.Conf();
        var live = _node.NewPod();
        _node.Add(conf, "alive", live);

        // What an ADD killed at various points leaves: a record with no owner line yet (killed while writing),
        // a record for a container the runtime never heard of, and its host veth on the bridge.
        File.WriteAllText(Path.Combine(_node.NetworkDir, "10.244.7.50"), "");
        File.WriteAllText(Path.Combine(_node.NetworkDir, "10.244.7.51"), "crashed\r\neth0");
        var leftover = CniNode.HostVethName("crashed");
        _node.Netlink.LinkAdd(new VethSpec(leftover, "crashpeer"));
        _node.Netlink.LinkSetMaster(_node.Netlink.LinkByName(leftover)!.Index, _node.Bridge().Index);

        Assert.True(Gc("cni.dev/valid-attachments", "alive").Ok);
        Assert.Equal(["10.244.7.2"], _node.IpamFiles());
        Assert.Equal(Veths("alive"), Ports());
        Assert.NotNull(live.Netlink.LinkByName("eth0"));
    }

    [Fact]
    public void Gc_with_ipMasq_removes_the_masquerade_chains_of_attachments_not_valid()
    {
        var conf = _node.Conf(edit: c => c["ipMasq"] = true);
        _node.Add(conf, "alive", _node.NewPod());
        _node.Add(conf, "crashed", _node.NewPod()); // as if killed after the rules, before the runtime saw a result
        Assert.Contains("name: \\\"t\\\" id: \\\"crashed\\\"", _node.NatRules(), StringComparison.Ordinal);

        conf["cni.dev/valid-attachments"] = Attachments("alive");
        var run = _node.Exec("GC", conf, ifName: null);
        Assert.True(run.Ok, run.ToString());
        var nat = _node.NatRules();
        Assert.DoesNotContain("crashed", nat, StringComparison.Ordinal);
        Assert.Contains("name: \\\"t\\\" id: \\\"alive\\\"", nat, StringComparison.Ordinal);
        Assert.Equal(2, nat.Split('\n').Count(l => l.StartsWith("-A CNI-", StringComparison.Ordinal)));
        Assert.Equal(["10.244.7.2"], _node.IpamFiles());
    }

    [Fact]
    public void Plugins_killed_mid_add_leave_nothing_gc_cannot_reclaim()
    {
        var masq = _node.Conf(edit: c => c["ipMasq"] = true);
        var conf = masq.ToJsonString();
        var gcConf = _node.Conf(edit: c =>
        {
            c["ipMasq"] = true;
            c["cni.dev/valid-attachments"] = Attachments("alive");
        });

        // Kill real ADDs with SIGKILL at spread-out moments (sometimes before, sometimes during, sometimes after
        // the veth and the address exist), then GC with only the survivor valid.
        var live = _node.NewPod();
        _node.Add(masq, "alive", live);
        var sw = Stopwatch.StartNew();
        var probe = _node.NewPod();
        _node.Add(masq, "probe", probe);
        var addMs = Math.Max(5, (int)sw.ElapsedMilliseconds);
        Assert.True(_node.Exec("GC", gcConf, ifName: null).Ok);

        var killedAfterSomething = 0;
        for (var i = 0; i < 12; i++)
        {
            var pod = _node.NewPod("k");
            var id = $"killed{i}";
            using var p = NetNs.Run(_node.Ns.Handle, () => Process.Start(Psi(id, CniNode.PathOf(pod)))!);
            p.StandardInput.Write(conf);
            p.StandardInput.Close();
            Thread.Sleep(addMs * i / 10);
            try
            {
                p.Kill(entireProcessTree: true); // an iptables-restore child left running could re-add rules after GC
            }
            catch (InvalidOperationException)
            {
                // Already finished: a completed ADD the runtime never recorded is a leftover just the same.
            }

            p.WaitForExit();
            if (_node.IpamFiles().Count > 1 || _node.BridgePorts().Count > 1)
            {
                killedAfterSomething++;
            }

            var gc = _node.Exec("GC", gcConf, ifName: null);
            Assert.True(gc.Ok, gc.ToString());
            Assert.Equal(["10.244.7.2"], _node.IpamFiles());
            Assert.Equal(Veths("alive"), Ports());
            var chains = _node.NatRules().Split('\n').Where(l => l.Contains("CNI-", StringComparison.Ordinal)).ToList();
            Assert.Equal(4, chains.Count); // alive's chain: declaration, ACCEPT, MASQUERADE, POSTROUTING jump
            Assert.All(chains, l => Assert.Contains(Loom.Linux.Firewall.IpMasq.ChainName(CniNode.Network, "alive"), l, StringComparison.Ordinal));
        }

        Assert.True(killedAfterSomething > 0, "no kill landed after the ADD had changed something");
    }

    private static ProcessStartInfo Psi(string containerId, string netns)
    {
        var psi = new ProcessStartInfo(CniRunner.LoomCni) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["CNI_COMMAND"] = "ADD";
        psi.Environment["CNI_CONTAINERID"] = containerId;
        psi.Environment["CNI_NETNS"] = netns;
        psi.Environment["CNI_IFNAME"] = "eth0";
        psi.Environment["CNI_PATH"] = CniRunner.BinDir;
        return psi;
    }
}
