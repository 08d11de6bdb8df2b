using System.Security.Cryptography;
using System.Text;

namespace Loom.Cni.Tests;

/// <summary>ipMasq: per-pod nat chain in the node namespace, laid out like the reference plugin's; DEL removes it.</summary>
public sealed class IpMasqTests : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    // The reference plugin's chain name: "CNI-" + the first 24 hex digits of sha512(network name + container id).
    private static string Chain(string containerId) =>
        "CNI-" + Convert.ToHexStringLower(SHA512.HashData(Encoding.UTF8.GetBytes(CniNode.Network + containerId)))[..24];

    [Fact]
    public void IpMasq_installs_a_chain_with_accept_and_masquerade_and_del_removes_it()
    {
        var conf = _node.Conf(edit: c => c["ipMasq"] = true);
        var podA = _node.NewPod();
        var podB = _node.NewPod();
        _node.Add(conf, "ma", podA);
        _node.Add(conf, "mb", podB);

        var nat = _node.NatRules().Split('\n');
        var a = Chain("ma");
        Assert.Contains($":{a} - [0:0]", nat);
        Assert.Contains(nat, l => l.StartsWith($"-A {a} -d 10.244.7.0/24 ", StringComparison.Ordinal) && l.EndsWith("-j ACCEPT", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.StartsWith($"-A {a} ! -d 224.0.0.0/4 ", StringComparison.Ordinal) && l.EndsWith("-j MASQUERADE", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.StartsWith("-A POSTROUTING -s 10.244.7.2/32 ", StringComparison.Ordinal) && l.EndsWith($"-j {a}", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.StartsWith("-A POSTROUTING -s 10.244.7.3/32 ", StringComparison.Ordinal) && l.EndsWith($"-j {Chain("mb")}", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.Contains("name: \\\"t\\\" id: \\\"ma\\\"", StringComparison.Ordinal));

        _node.Del(conf, "ma", podA);
        var after = _node.NatRules();
        Assert.DoesNotContain(a, after, StringComparison.Ordinal);
        Assert.Contains(Chain("mb"), after, StringComparison.Ordinal); // the other pod's rules stay

        _node.Del(conf, "mb", podB);
        Assert.DoesNotContain("CNI-", _node.NatRules(), StringComparison.Ordinal);
        var root = Tool.Run("iptables-save", "-t", "nat"); // the machine's own namespace never saw any of it
        Assert.DoesNotContain(a, root, StringComparison.Ordinal);
        Assert.DoesNotContain(Chain("mb"), root, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_ipMasq_no_rule_is_made()
    {
        _node.Add(_node.Conf(), "m0", _node.NewPod());
        Assert.DoesNotContain("CNI-", _node.NatRules(), StringComparison.Ordinal);
    }

    [Fact]
    public void Container_ids_are_read_back_from_real_rules_of_this_network_only()
    {
        _node.Add(_node.Conf(edit: c => c["ipMasq"] = true), "id-a.1", _node.NewPod());
        _node.Add(_node.Conf(edit: c => c["ipMasq"] = true), "id_b", _node.NewPod());
        var other = _node.Conf(edit: c =>
        {
            c["name"] = "other";
            c["ipMasq"] = true;
        });
        _node.Add(other, "id-c", _node.NewPod());
        var nat = _node.NatRules();
        Assert.Equal(["id-a.1", "id_b"], Loom.Linux.Firewall.IpMasq.ContainerIds(CniNode.Network, nat).Order(StringComparer.Ordinal));
        Assert.Equal(["id-c"], Loom.Linux.Firewall.IpMasq.ContainerIds("other", nat));
    }
}
