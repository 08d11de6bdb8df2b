using System.Net;
using System.Text;
using Loom.Linux.Firewall;

namespace Loom.Agent.Masq;

/// <summary>
/// <c>--ip-masq</c>, laid out as flannel's chains so an operator recognises them: pod-to-pod traffic inside the
/// cluster pools keeps its source address; pod traffic leaving the pools is masqueraded to the node's address.
/// A FORWARD chain accepts pod traffic so a host firewall with a DROP policy does not cut the overlay.
/// </summary>
internal static class NodeMasq
{
    public const string PostroutingChain = "LOOM-POSTRTG";
    public const string ForwardChain = "LOOM-FWD";
    private const string Comment = "\"loom masq\"";

    /// <summary>The whole iptables-restore input: declaring a chain flushes it, so a sync rewrites it atomically.</summary>
    public static string Render(IReadOnlyList<IPNetwork> pools, IPNetwork nodeCidr, bool masq, string existingNat, string existingFilter)
    {
        var sb = new StringBuilder();
        sb.Append("*nat\n").Append(':').Append(PostroutingChain).Append(" - [0:0]\n");
        if (masq)
        {
            JumpOnce(sb, existingNat, "POSTROUTING", PostroutingChain);
            sb.Append($"-A {PostroutingChain} -m mark --mark 0x4000/0x4000 -m comment --comment {Comment} -j RETURN\n");
            foreach (var pool in pools)
            {
                sb.Append($"-A {PostroutingChain} -s {nodeCidr} -d {pool} -m comment --comment {Comment} -j RETURN\n");
                sb.Append($"-A {PostroutingChain} -s {pool} -d {nodeCidr} -m comment --comment {Comment} -j RETURN\n");
                sb.Append($"-A {PostroutingChain} ! -s {pool} -d {nodeCidr} -m comment --comment {Comment} -j RETURN\n");
                sb.Append($"-A {PostroutingChain} -s {pool} ! -d 224.0.0.0/4 -m comment --comment {Comment} -j MASQUERADE --random-fully\n");
                sb.Append($"-A {PostroutingChain} ! -s {pool} -d {pool} -m comment --comment {Comment} -j MASQUERADE --random-fully\n");
            }
        }
        else
        {
            DropJump(sb, existingNat, "POSTROUTING", PostroutingChain);
        }

        sb.Append("COMMIT\n*filter\n").Append(':').Append(ForwardChain).Append(" - [0:0]\n");
        JumpOnce(sb, existingFilter, "FORWARD", ForwardChain);
        foreach (var pool in pools)
        {
            sb.Append($"-A {ForwardChain} -s {pool} -m comment --comment \"loom forward\" -j ACCEPT\n");
            sb.Append($"-A {ForwardChain} -d {pool} -m comment --comment \"loom forward\" -j ACCEPT\n");
        }

        sb.Append("COMMIT\n");
        return sb.ToString();
    }

    public static void Sync(IReadOnlyList<IPNetwork> pools, IPNetwork nodeCidr, bool masq) =>
        IptablesRestore.Apply(Render(pools, nodeCidr, masq, IptablesRestore.Save("nat"), IptablesRestore.Save("filter")));

    private static string JumpRule(string from, string chain) =>
        $"-A {from} -m comment --comment {(from == "FORWARD" ? "\"loom forward\"" : Comment)} -j {chain}";

    private static void JumpOnce(StringBuilder sb, string existing, string from, string chain)
    {
        if (!existing.Split('\n').Contains(JumpRule(from, chain)))
        {
            sb.Append(JumpRule(from, chain)).Append('\n');
        }
    }

    private static void DropJump(StringBuilder sb, string existing, string from, string chain)
    {
        if (existing.Split('\n').Contains(JumpRule(from, chain)))
        {
            sb.Append("-D").Append(JumpRule(from, chain).AsSpan(2)).Append('\n');
        }
    }
}
