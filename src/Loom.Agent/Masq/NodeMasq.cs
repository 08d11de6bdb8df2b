using System.Text;
using Loom.Agent.Networks;
using Loom.Core.Model;
using Loom.Linux.Firewall;

namespace Loom.Agent.Masq;

/// <summary>
/// <c>--ip-masq</c> for every network of the node, laid out as flannel's chains so an operator recognises them. First
/// what keeps its source: each network's block towards its no-masquerade CIDR and towards every other network's pool
/// (pods of network A reach pods of network B with their own IP, which a migration between them depends on), and
/// anything arriving at a local block. Then, for <c>masquerade: iptables</c> networks only, the rest of their pool's
/// traffic is masqueraded to the node's address. A FORWARD chain accepts every network's pod traffic so a host
/// firewall with a DROP policy does not cut the overlay. Once every network masquerades in BPF (or not at all) and
/// routes hosts' traffic in BPF, pod traffic no longer goes through netfilter: both chains and their jumps are
/// deleted, as Cilium's end state has no iptables rule.
/// </summary>
internal static class NodeMasq
{
    public const string PostroutingChain = "LOOM-POSTRTG";
    public const string ForwardChain = "LOOM-FWD";
    private const string Comment = "\"loom masq\"";

    /// <summary>The whole iptables-restore input: declaring a chain flushes it, so a sync rewrites it atomically.</summary>
    public static string Render(IReadOnlyList<NetworkOnNode> networks, bool masq, string existingNat, string existingFilter)
    {
        ArgumentNullException.ThrowIfNull(networks);
        if (networks.Count > 0 && networks.All(n => n.Network.Masquerade != Masquerade.Iptables && n.Network.HostRouting == HostRouting.Bpf))
        {
            return Removal(existingNat, existingFilter);
        }

        var sb = new StringBuilder();
        sb.Append("*nat\n").Append(':').Append(PostroutingChain).Append(" - [0:0]\n");
        if (masq)
        {
            JumpOnce(sb, existingNat, "POSTROUTING", PostroutingChain);
            // Only our own MASQUERADE rules could rewrite a packet here: without an iptables network the chain stays empty.
            var masquerading = networks.Where(n => n.Network.Masquerade == Masquerade.Iptables).ToList();
            if (masquerading.Count > 0)
            {
                Keep(sb, networks);
                foreach (var n in masquerading)
                {
                    sb.Append($"-A {PostroutingChain} -s {n.Network.PodCidr} ! -d 224.0.0.0/4 -m comment --comment {Comment} -j MASQUERADE --random-fully\n");
                    sb.Append($"-A {PostroutingChain} ! -s {n.Network.PodCidr} -d {n.Network.PodCidr} -m comment --comment {Comment} -j MASQUERADE --random-fully\n");
                }
            }
        }
        else
        {
            DropJump(sb, existingNat, "POSTROUTING", PostroutingChain);
        }

        sb.Append("COMMIT\n*filter\n").Append(':').Append(ForwardChain).Append(" - [0:0]\n");
        JumpOnce(sb, existingFilter, "FORWARD", ForwardChain);
        foreach (var n in networks)
        {
            sb.Append($"-A {ForwardChain} -s {n.Network.PodCidr} -m comment --comment \"loom forward\" -j ACCEPT\n");
            sb.Append($"-A {ForwardChain} -d {n.Network.PodCidr} -m comment --comment \"loom forward\" -j ACCEPT\n");
        }

        sb.Append("COMMIT\n");
        return sb.ToString();
    }

    /// <summary>Both chains and their jumps deleted (declaring a chain flushes it, so it can then be deleted); nothing if they are gone.</summary>
    private static string Removal(string existingNat, string existingFilter)
    {
        var sb = new StringBuilder("*nat\n");
        if (HasChain(existingNat, PostroutingChain))
        {
            sb.Append(':').Append(PostroutingChain).Append(" - [0:0]\n");
            DropJump(sb, existingNat, "POSTROUTING", PostroutingChain);
            sb.Append("-X ").Append(PostroutingChain).Append('\n');
        }

        sb.Append("COMMIT\n*filter\n");
        if (HasChain(existingFilter, ForwardChain))
        {
            sb.Append(':').Append(ForwardChain).Append(" - [0:0]\n");
            DropJump(sb, existingFilter, "FORWARD", ForwardChain);
            sb.Append("-X ").Append(ForwardChain).Append('\n');
        }

        sb.Append("COMMIT\n");
        return sb.ToString();
    }

    // iptables-save lists a chain as ":NAME POLICY [packets:bytes]".
    private static bool HasChain(string saved, string chain) =>
        saved.Split('\n').Any(l => l.StartsWith($":{chain} ", StringComparison.Ordinal));

    /// <summary>Applies <see cref="Render"/> in the calling thread's network namespace.</summary>
    public static void Sync(IReadOnlyList<NetworkOnNode> networks, bool masq) =>
        IptablesRestore.Apply(Render(networks, masq, IptablesRestore.Save("nat"), IptablesRestore.Save("filter")));

    /// <summary>The RETURN rules, before any MASQUERADE: with one network, exactly flannel's.</summary>
    private static void Keep(StringBuilder sb, IReadOnlyList<NetworkOnNode> networks)
    {
        sb.Append($"-A {PostroutingChain} -m mark --mark 0x4000/0x4000 -m comment --comment {Comment} -j RETURN\n");
        foreach (var n in networks)
        {
            var (pool, block) = (n.Network.PodCidr, n.Block);
            if (n.Network.Masquerade == Masquerade.Iptables)
            {
                Return(sb, $"-s {block} -d {n.NoMasqueradeCidr}");
            }

            foreach (var other in networks.Where(o => o.Name != n.Name))
            {
                Return(sb, $"-s {block} -d {other.Network.PodCidr}");
            }

            Return(sb, $"-s {pool} -d {block}");
            Return(sb, $"! -s {pool} -d {block}");
        }
    }

    private static void Return(StringBuilder sb, string match) =>
        sb.Append($"-A {PostroutingChain} {match} -m comment --comment {Comment} -j RETURN\n");

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
