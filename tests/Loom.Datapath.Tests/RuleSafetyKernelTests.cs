using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Testing;
using static Loom.Datapath.Tests.Fixtures;

namespace Loom.Datapath.Tests;

/// <summary>
/// The hostile ports of <see cref="RuleSafetyTests"/> applied for real, by the iptables and nftables backends inside a
/// namespace of this run: the kernel takes the whole sync, and what it holds has the name only inside comments.
/// </summary>
public sealed class RuleSafetyKernelTests : IDisposable
{
    private readonly TestNetns _ns = new("rules");

    public void Dispose() => _ns.Dispose();

    private static ServicePortState[] Hostile()
    {
        var longName = new string('n', 300);
        return
        [
            Port("default", "webpod", RuleSafetyTests.Injection, "10.96.0.100", 80, ["10.244.1.2", "10.244.2.2"], affinity: SessionAffinity.ClientIP, timeout: -5),
            Port("default", "empty", RuleSafetyTests.Injection, "10.96.0.101", 80, []),
            Port(longName, longName, longName, "10.96.0.102", 80, ["10.244.1.2"]),
            Port(longName, longName + "x", longName, "10.96.0.103", 80, []),
            Port("default", "zz-same-frontend", null, "10.96.0.100", 80, ["10.244.3.2"]),
        ];
    }

    private string Run(params string[] command)
    {
        var r = Shell.InNetns(_ns.Name, command);
        return r.Ok ? r.Stdout : throw new InvalidOperationException(r.ToString());
    }

    [Fact]
    public void Iptables_applies_hostile_names_as_comments_only()
    {
        var b = (IptablesServiceBackend)ServiceBackends.Iptables();
        _ns.Run(() => b.Sync(Hostile()));
        Assert.Single(b.LastSkipped, s => s.Contains("already taken by default/webpod", StringComparison.Ordinal));
        Assert.Single(b.LastSkipped, s => s.Contains("clamped to 1s", StringComparison.Ordinal));
        var nat = Run("iptables-save", "-t", "nat").Split('\n');
        Assert.EndsWith("-j MARK --set-xmark 0x4000/0x4000", Assert.Single(nat, l => l.StartsWith("-A KUBE-MARK-MASQ", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.DoesNotContain(nat, l => l.EndsWith("-j ACCEPT", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.Contains("--comment \"default/webpod:x\\\"?-A KUBE-MARK-MASQ -j ACCEPT?# cluster IP\"", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.Contains("--rcheck --seconds 1 --reap", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.Contains($"--comment \"{new string('n', 255)}\"", StringComparison.Ordinal)
                                   || l.Contains($"--comment {new string('n', 255)} ", StringComparison.Ordinal));
        Assert.DoesNotContain(nat, l => l.Contains("10.244.3.2", StringComparison.Ordinal));

        // A second (partial) sync of the same state is accepted too.
        _ns.Run(() => b.Sync(Hostile()));
        Assert.False(b.LastSyncWasFull);

        // Flip to a benign state and back: partial syncs delete the hostile KUBE-SERVICES rules by their exact text.
        _ns.Run(() => b.Sync([Webpod()]));
        Assert.False(b.LastSyncWasFull);
        Assert.DoesNotContain("-A KUBE-MARK-MASQ -j ACCEPT", Run("iptables-save"), StringComparison.Ordinal);
        _ns.Run(() => b.Sync(Hostile()));
        _ns.Run(() => b.Sync([Webpod()]));
        Assert.False(b.LastSyncWasFull);
        Assert.DoesNotContain("nnnn", Run("iptables-save"), StringComparison.Ordinal);
    }

    [Fact]
    public void Nftables_applies_hostile_names_with_safe_chain_names_and_comments()
    {
        var b = (NftablesServiceBackend)ServiceBackends.Nftables();
        _ns.Run(() => b.Sync(Hostile()));
        Assert.Single(b.LastSkipped, s => s.Contains("already taken by default/webpod", StringComparison.Ordinal));
        var table = Run("nft", "list", "table", "ip", NftablesRules.Table);
        Assert.Contains("comment \"default/empty:x'?-A KUBE-MARK-MASQ -j ACCEPT?#\"", table, StringComparison.Ordinal);
        Assert.Contains("timeout 1s", table, StringComparison.Ordinal);
        Assert.DoesNotMatch("(?<!policy )accept", table);
        Assert.DoesNotContain("10.244.3.2", table, StringComparison.Ordinal);
        Assert.Contains($"comment \"{new string('n', RuleText.NftCommentMax)}\"", table, StringComparison.Ordinal);

        // Flip to a benign state and back: the stale hostile chains and sets are deleted by name without error.
        _ns.Run(() => b.Sync([Webpod()]));
        _ns.Run(() => b.Sync(Hostile()));
        _ns.Run(() => b.Sync([Webpod()]));
        Assert.DoesNotContain("KUBE-MARK-MASQ", Run("nft", "list", "table", "ip", NftablesRules.Table), StringComparison.Ordinal);
    }
}
