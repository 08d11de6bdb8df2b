using System.Net;
using CsCheck;
using Loom.Core.Model;
using Loom.Datapath.Services;

namespace Loom.Datapath.Tests;

/// <summary>The incremental table against the full model: after any sequence of changes, the deltas add up to the model's output.</summary>
public sealed class ServiceTableTests
{
    private static readonly string[] Namespaces = ["a", "b"];
    private static readonly string[] Apps = ["x", "y", "z"];

    private static readonly Gen<Dictionary<string, string>> Labels =
        Gen.Select(Gen.OneOf<string>(Apps), Gen.Int[0, 2], (app, tier) =>
            tier == 0 ? new Dictionary<string, string> { ["app"] = app } : new Dictionary<string, string> { ["app"] = app, ["tier"] = tier.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    private static readonly Gen<Service> Services =
        Gen.Select(Gen.OneOf<string>(Namespaces), Gen.Int[0, 5], Gen.Int[1, 4], Gen.Int[0, 3], Gen.Bool, Gen.Int[0, 2], (ns, n, ip, sel, twoPorts, np) => new Service
        {
            Namespace = ns,
            Name = $"s{n}",
            ClusterIp = IPAddress.Parse($"10.96.0.{ip}"),
            // Node ports from a pool of two per protocol, so Services often share one (as a hand-written store may).
            Type = np == 0 ? ServiceType.ClusterIP : ServiceType.NodePort,
            Ports = twoPorts
                ? [new ServicePort("http", Protocol.Tcp, 80, 8080, np == 0 ? 0 : 30000 + np), new ServicePort("dns", Protocol.Udp, 53, 0, np == 0 ? 0 : 30000 + np)]
                : [new ServicePort(null, Protocol.Tcp, 80, 0, np == 0 ? 0 : 30000 + np)],
            Selector = sel switch
            {
                0 => new Dictionary<string, string>(),
                1 => new Dictionary<string, string> { ["app"] = "x" },
                2 => new Dictionary<string, string> { ["app"] = "y", ["tier"] = "1" },
                _ => new Dictionary<string, string> { ["app"] = "z" },
            },
        });

    private static readonly Gen<Endpoint> Endpoints =
        Gen.Select(Gen.OneOf<string>(Namespaces), Gen.Int[0, 7], Labels, Gen.Int[1, 6], Gen.Bool, (ns, n, labels, ip, ready) => new Endpoint
        {
            Namespace = ns, Name = $"e{n}", Node = "n1", ContainerId = $"c{n}", IPs = [IPAddress.Parse($"10.244.0.{ip}")], Labels = labels, Ready = ready,
        });

    private abstract record Op;

    private sealed record SetSvc(Service S) : Op;

    private sealed record DelSvc(string Key) : Op;

    private sealed record SetEp(Endpoint E) : Op;

    private sealed record DelEp(string Key) : Op;

    private static readonly Gen<Op> Ops = Gen.Frequency(
        (3, Services.Select(s => (Op)new SetSvc(s))),
        (1, Gen.Select(Gen.OneOf<string>(Namespaces), Gen.Int[0, 5], (ns, n) => (Op)new DelSvc($"{ns}/s{n}"))),
        (4, Endpoints.Select(e => (Op)new SetEp(e))),
        (1, Gen.Select(Gen.OneOf<string>(Namespaces), Gen.Int[0, 7], (ns, n) => (Op)new DelEp($"{ns}/e{n}"))));

    [Fact]
    public void The_deltas_add_up_to_the_full_model_after_any_sequence_of_changes()
    {
        Gen.Select(Ops.List[1, 40], Gen.Int[1, 6]).Sample((ops, every) =>
        {
            var table = new ServiceTable();
            var services = new Dictionary<string, Service>();
            var endpoints = new Dictionary<string, Endpoint>();
            var mirror = new Dictionary<string, ServicePortState>();
            for (var i = 0; i < ops.Count; i++)
            {
                switch (ops[i])
                {
                    case SetSvc(var s):
                        services[s.Key] = s;
                        table.SetService(s.Key, s);
                        break;
                    case DelSvc(var k):
                        services.Remove(k);
                        table.RemoveService(k);
                        break;
                    case SetEp(var e):
                        endpoints[e.Key] = e;
                        table.SetEndpoint(e.Key, e);
                        break;
                    case DelEp(var k):
                        endpoints.Remove(k);
                        table.RemoveEndpoint(k);
                        break;
                }

                if (i % every != 0 && i != ops.Count - 1)
                {
                    continue; // several changes per drain, as a coalesced batch brings them
                }

                var delta = table.Drain();
                foreach (var k in delta.Removed)
                {
                    Assert.True(mirror.Remove(k), $"removed {k}, which was not programmed");
                }

                foreach (var s in delta.Upserts)
                {
                    Assert.False(mirror.TryGetValue(ServiceTable.PortKey(s), out var prev) && prev.Equals(s), $"{s.Name}: an upsert that changes nothing");
                    mirror[ServiceTable.PortKey(s)] = s;
                }

                var skipped = new List<ServiceSkip>();
                var full = ServiceModel.Compute(services.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => s.Value), endpoints.Values, skipped);
                Assert.Equal(full.ToDictionary(ServiceTable.PortKey), mirror);
                Assert.Equal(mirror, table.Programmed);
                Assert.Equal(skipped.Select(s => s.ToString()).Order(StringComparer.Ordinal), table.Skipped().Select(s => s.ToString()).Order(StringComparer.Ordinal));
            }
        }, iter: 1000);
    }

    [Fact]
    public void One_endpoint_change_among_many_services_yields_one_upsert()
    {
        var table = new ServiceTable();
        for (var i = 0; i < 1000; i++)
        {
            var labels = new Dictionary<string, string> { ["app"] = $"app{i}" };
            table.SetService($"default/s{i}", new Service
            {
                Namespace = "default", Name = $"s{i}", ClusterIp = IPAddress.Parse($"10.96.{i / 250}.{1 + (i % 250)}"), Ports = [new ServicePort(null, Protocol.Tcp, 80, 8080)], Selector = labels,
            });
            table.SetEndpoint($"default/p{i}", new Endpoint
            {
                Namespace = "default", Name = $"p{i}", Node = "n1", ContainerId = $"c{i}", IPs = [IPAddress.Parse($"10.244.{i / 250}.{1 + (i % 250)}")], Labels = labels, Ready = true,
            });
        }

        Assert.Equal(1000, table.Drain().Upserts.Count);
        table.SetEndpoint("default/p7", new Endpoint
        {
            Namespace = "default", Name = "p7", Node = "n1", ContainerId = "c7", IPs = [IPAddress.Parse("10.244.9.9")], Labels = new Dictionary<string, string> { ["app"] = "app7" }, Ready = true,
        });

        var delta = table.Drain();
        var s = Assert.Single(delta.Upserts);
        Assert.Equal("default/s7", s.Name.ToString());
        Assert.Equal("10.244.9.9:8080", Assert.Single(s.Backends).ToString());
        Assert.Empty(delta.Removed);
        Assert.True(table.Drain().IsEmpty);
    }
}
