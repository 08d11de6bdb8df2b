using System.Net;
using Loom.Linux.Firewall;

namespace Loom.Linux.Tests.Firewall;

public class IpMasqRenderTests
{
    [Fact]
    public void Chain_name_is_stable_and_fits_iptables_limit()
    {
        var a = IpMasq.ChainName("cbr0", "abc123");
        Assert.Equal(a, IpMasq.ChainName("cbr0", "abc123"));
        Assert.NotEqual(a, IpMasq.ChainName("cbr0", "abc124"));
        Assert.StartsWith("CNI-", a, StringComparison.Ordinal);
        Assert.Equal(28, a.Length); // iptables chain names are at most 28 characters
    }

    [Fact]
    public void Setup_renders_the_reference_layout()
    {
        var rules = IpMasq.RenderSetup("cbr0", "c1", IPAddress.Parse("10.244.0.5"), IPNetwork.Parse("10.244.0.0/24"), []);
        var chain = IpMasq.ChainName("cbr0", "c1");
        var comment = "\"name: \\\"cbr0\\\" id: \\\"c1\\\"\"";
        Assert.Equal(
            "*nat\n" +
            $":{chain} - [0:0]\n" +
            $"-A {chain} -d 10.244.0.0/24 -m comment --comment {comment} -j ACCEPT\n" +
            $"-A {chain} ! -d 224.0.0.0/4 -m comment --comment {comment} -j MASQUERADE\n" +
            $"-A POSTROUTING -s 10.244.0.5/32 -m comment --comment {comment} -j {chain}\n" +
            "COMMIT\n",
            rules);
    }

    [Fact]
    public void Setup_does_not_repeat_an_existing_jump()
    {
        var first = IpMasq.RenderSetup("n", "c", IPAddress.Parse("10.0.0.2"), IPNetwork.Parse("10.0.0.0/24"), []);
        var jump = first.Split('\n').Single(l => l.StartsWith("-A POSTROUTING", StringComparison.Ordinal));
        var again = IpMasq.RenderSetup("n", "c", IPAddress.Parse("10.0.0.2"), IPNetwork.Parse("10.0.0.0/24"), [jump]);
        Assert.DoesNotContain("POSTROUTING", again, StringComparison.Ordinal);
    }

    [Fact]
    public void Teardown_deletes_jumps_and_chain_and_is_null_when_nothing_is_there()
    {
        var chain = IpMasq.ChainName("n", "c");
        var save = $"*nat\n:POSTROUTING ACCEPT [0:0]\n:{chain} - [0:0]\n-A POSTROUTING -s 10.0.0.2/32 -m comment --comment \"x\" -j {chain}\nCOMMIT\n";
        var rules = IpMasq.RenderTeardown("n", "c", save);
        Assert.Equal($"*nat\n-D POSTROUTING -s 10.0.0.2/32 -m comment --comment \"x\" -j {chain}\n:{chain} - [0:0]\n-X {chain}\nCOMMIT\n", rules);
        Assert.Null(IpMasq.RenderTeardown("n", "other", save));
    }
}
