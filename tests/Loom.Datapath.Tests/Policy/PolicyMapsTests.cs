using System.Net;
using Loom.Core.Policy;
using Loom.Datapath.Policy;
using Loom.Linux.Bpf;
using static Loom.Datapath.Tests.Policy.PolicyLab;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Policy;

/// <summary>
/// What BpfPolicy writes into the maps: rules read back as written, syncs as diffs adopted after a restart, bad input
/// refused with nothing written, and Remove leaving no filter and no pin.
/// </summary>
public sealed class PolicyMapsTests : IDisposable
{
    private readonly PolicyLab _p = new();

    public void Dispose() => _p.Dispose();

    [Fact]
    public void Rules_and_regions_read_back_as_written_and_a_restart_adopts_them()
    {
        PolicyRule[] rules =
        [
            new(PolicyDirection.Ingress, Identity(1, 1), 6, 7000, 16),
            new(PolicyDirection.Ingress, Identity(1, 1), 6, 8192, 3),
            new(PolicyDirection.Ingress, 0, 17, 0, 0),
            new(PolicyDirection.Egress, ReservedIdentity.World, 0, 0, 0),
            new(PolicyDirection.Egress, ReservedIdentity.CidrBase + 1, 6, 443, 16),
        ];
        PolicyCidr[] cidrs =
        [
            new(PolicyDirection.Egress, IPNetwork.Parse("0.0.0.0/0"), ReservedIdentity.CidrBase + 1),
            new(PolicyDirection.Egress, IPNetwork.Parse("169.254.0.0/16"), ReservedIdentity.CidrBase + 2),
        ];
        _p.Endpoint(1, ingress: true, egress: true, rules, cidrs);
        _p.Endpoint(2, ingress: true, egress: false, [rules[0]]);

        var read = _p.Node.Run(() => _p.Policy.ReadEndpoint(1));
        Assert.Equal(rules.ToHashSet(), read.Rules.ToHashSet());
        Assert.Equal(cidrs.ToHashSet(), read.Cidrs.ToHashSet());

        // A restarted agent: a new instance over the pins diffs against what the maps hold (endpoint 2 untouched).
        var options = _p.Policy.Options;
        using var again = new BpfPolicy(options);
        _p.Node.Run(() => again.SyncEndpointRules(1, [rules[0], rules[2]], [cidrs[0]]));
        var after = again.ReadEndpoint(1);
        Assert.Equal(new[] { rules[0], rules[2] }.ToHashSet(), after.Rules.ToHashSet());
        Assert.Equal([cidrs[0]], after.Cidrs);
        Assert.Equal([rules[0]], again.ReadEndpoint(2).Rules);

        again.RemoveEndpointRules(1);
        Assert.Empty(again.ReadEndpoint(1).Rules);
        Assert.Empty(again.ReadEndpoint(1).Cidrs);
        Assert.Equal(PolicyMaps.EnforceIngress, again.Endpoints()[_p.Lab.Lxc(1, 2)].Flags);
    }

    [Fact]
    public void Bad_entries_are_refused_before_anything_is_written()
    {
        var good = PolicyLab.Tcp(PolicyDirection.Ingress, Identity(1, 1), 7000);
        _p.Endpoint(2, ingress: true, egress: false, [good]);

        PolicyRule[][] bad =
        [
            [good, new(PolicyDirection.Ingress, 5, 6, 7001, 13)],   // bits past the prefix
            [good, new(PolicyDirection.Ingress, 5, 0, 80, 16)],     // a port without a protocol
            [good, new(PolicyDirection.Ingress, 5, 6, 80, 17)],     // longer than a port
            [good, new((PolicyDirection)7, 5, 6, 80, 16)],
        ];
        foreach (var rules in bad)
        {
            Assert.ThrowsAny<ArgumentException>(() => _p.Node.Run(() => _p.Policy.SyncEndpointRules(2, rules, [])));
        }

        Assert.Throws<ArgumentException>(() => _p.Policy.SyncEndpointRules(2, [good, good with { Port = 9000 }],
            [new(PolicyDirection.Ingress, IPNetwork.Parse("10.0.0.0/8"), 5)]));
        Assert.Throws<ArgumentException>(() => _p.Policy.SyncEndpointRules(2, [],
            [new(PolicyDirection.Ingress, IPNetwork.Parse("10.0.0.0/8"), ReservedIdentity.CidrBase), new(PolicyDirection.Ingress, IPNetwork.Parse("10.0.0.0/8"), ReservedIdentity.CidrBase + 1)]));
        Assert.Throws<ArgumentException>(() => _p.Policy.SyncEndpointRules(2, [], [new(PolicyDirection.Ingress, IPNetwork.Parse("fd00::/64"), ReservedIdentity.CidrBase)]));
        Assert.Throws<ArgumentOutOfRangeException>(() => _p.Policy.SyncEndpointRules(70000, [good], []));
        Assert.Throws<ArgumentOutOfRangeException>(() => _p.Policy.SetEndpoint(_p.Lab.Lxc(1, 1), 0, 1, true, true));
        Assert.Throws<ArgumentException>(() => _p.Policy.SyncIpcache(new Dictionary<IPNetwork, uint>
        {
            [IPNetwork.Parse("10.1.0.0/16")] = 300,
            [IPNetwork.Parse("fd00::1/128")] = 301,
        }));

        Assert.Equal([good], _p.Policy.ReadEndpoint(2).Rules);
        Assert.DoesNotContain(IPNetwork.Parse("10.1.0.0/16"), _p.Policy.ReadIpcache().Keys);
        // What was refused changed nothing: the allowed flow still passes, others do not.
        Assert.True(Connects(_p.Lab.Pod(1, 1), PodIp(1, 2)));
        Assert.False(Connects(_p.Lab.Pod(2, 1), PodIp(1, 2)));
    }

    [Fact]
    public void Ipcache_sync_writes_the_difference_only()
    {
        var before = _p.Policy.ReadIpcache();
        Assert.Equal(Identity(1, 1), before[Host(PodIp(1, 1))]);
        var next = before.Where(e => !e.Key.Equals(Host(PodIp(2, 2)))).ToDictionary(e => e.Key, e => e.Value);
        next[Host(PodIp(1, 1))] = 4242;
        next[IPNetwork.Parse("10.245.3.0/24")] = ReservedIdentity.RemoteNode;
        _p.Policy.SyncIpcache(next);
        Assert.Equal(next, _p.Policy.ReadIpcache());

        // The kernel's own entries changed behind the instance's back are not rewritten by a no-op sync: it diffs
        // against its memory, not the map (a restart re-reads the map).
        var map = _p.Policy.Loaded.Map<PolIpKey, PolIdentity>(PolicyMaps.Ipcache);
        map.Delete(new PolIpKey(32, LbMaps.ToNetwork(PodIp(1, 2))));
        _p.Policy.SyncIpcache(next);
        Assert.DoesNotContain(Host(PodIp(1, 2)), _p.Policy.ReadIpcache().Keys);
        using var again = new BpfPolicy(_p.Policy.Options);
        again.SyncIpcache(next);
        Assert.Equal(next, again.ReadIpcache());
    }

    [Fact]
    public void Remove_leaves_no_filter_and_no_pin()
    {
        var node = _p.Lab.Underlay(1);
        _p.Node.Run(() => _p.Policy.AttachNodeEgress(node));
        _p.Endpoint(2, ingress: true, egress: true);
        Assert.False(Connects(_p.Lab.Pod(1, 1), PodIp(1, 2)));
        _p.Policy.Dispose();

        using var again = new BpfPolicy(_p.Policy.Options);
        var interfaces = _p.Node.Run(again.Interfaces);
        Assert.Equal(PolicyInterfaceRole.Endpoint, interfaces[_p.Lab.Lxc(1, 1)]);
        Assert.Equal(PolicyInterfaceRole.Endpoint, interfaces[_p.Lab.Lxc(1, 2)]);
        Assert.Equal(PolicyInterfaceRole.Node, interfaces[node]);
        // The filters still hold the first instance's programs (programs are not pinned; a re-attach replaces them).
        var programs = new[] { (_p.Lab.Lxc(1, 1), TcDirection.Ingress), (_p.Lab.Lxc(1, 2), TcDirection.Egress), (node, TcDirection.Egress) }
            .Select(h => _p.Node.Run(() => again.AttachedProgram(h.Item1, h.Item2)) ?? throw new InvalidOperationException($"no filter on {h}")).ToArray();
        var maps = again.Loaded.MapNames.Where(n => n.StartsWith("pol_", StringComparison.Ordinal)).Select(n => again.Loaded.Map(n).Id).ToArray();
        Assert.Equal(8, maps.Length);

        _p.Node.Run(again.Remove);

        Assert.False(Directory.Exists(again.Options.PinDirectory));
        Assert.True(FreedByKernel(programs, maps), "programs and maps freed");
        foreach (var ifindex in new[] { _p.Lab.Lxc(1, 1), _p.Lab.Lxc(1, 2), node })
        {
            foreach (var direction in new[] { TcDirection.Ingress, TcDirection.Egress })
            {
                Assert.Null(_p.Node.Run(() => BpfTc.Query(ifindex, direction, again.Options.TcPriority, again.Options.TcHandle)));
            }
        }

        Assert.True(Connects(_p.Lab.Pod(1, 1), PodIp(1, 2)));
    }
}
