using System.Net;
using Loom.Core.Model;
using Loom.Agent.Services;
using Loom.Core.Store;
using Loom.Datapath.Services;

namespace Loom.Agent.Tests;

/// <summary>What one Service gets wrong is left out of the sync; every other Service is still programmed.</summary>
public sealed class ServiceSelectionTests
{
    private static readonly Dictionary<string, string> Web = new() { ["app"] = "web" };

    private static Versioned<Service> Svc(string name, string ip, int port) => new($"default/{name}", new Service
    {
        Namespace = "default", Name = name, ClusterIp = IPAddress.Parse(ip), Ports = [new ServicePort(null, Protocol.Tcp, port, 8080)], Selector = Web,
    }, 1);

    private static List<Endpoint> Pods(int n) => Enumerable.Range(0, n).Select(i => new Endpoint
    {
        Namespace = "default", Name = $"web-{i}", Node = "k8s-w2", ContainerId = $"c{i}", IPs = [IPAddress.Parse($"10.244.{5 + (i / 250)}.{1 + (i % 250)}")],
        Labels = Web, Ready = true,
    }).ToList();

    /// <summary>The agent's table (the incremental model) fed as its caches feed it, drained once.</summary>
    private static (List<ServicePortState> Programmed, List<ServiceSkip> Skipped) Table(IEnumerable<Versioned<Service>> services, IEnumerable<Endpoint> endpoints)
    {
        var table = new ServiceTable();
        foreach (var s in services)
        {
            table.SetService(s.Key, s.Value);
        }

        foreach (var e in endpoints)
        {
            table.SetEndpoint(e.Key, e);
        }

        return ([.. table.Drain().Upserts], [.. table.Skipped()]);
    }

    [Fact]
    public void A_service_the_model_cannot_compute_and_a_taken_frontend_are_left_out()
    {
        var broken = TypedStoreExtensions.TryDecode(Kinds.Service,
            """{"namespace": "default", "name": "broken", "clusterIp": "10.96.0.30", "ports": null, "selector": {"app": "web"}}""", out var b, out _)
            ? new Versioned<Service>("default/broken", b, 1)
            : throw new InvalidOperationException("a null list is valid JSON for the model");

        var (desired, skipped) = Table([Svc("api", "10.96.0.20", 443), broken, Svc("web", "10.96.0.10", 80), Svc("web2", "10.96.0.10", 80)], Pods(2));

        Assert.Equal(["default/api", "default/web"], desired.Select(d => d.Name.ToString()));
        Assert.All(desired, d => Assert.Equal(2, d.Backends.Count));
        Assert.Equal([("default/broken", "invalid"), ("default/web2", "duplicate-frontend")], skipped.Select(r => (r.Service, r.Code)));
    }

    [Fact]
    public void More_backends_than_the_maglev_table_has_slots_are_refused_for_that_service_only()
    {
        var big = Svc("big", "10.96.0.40", 80);
        var small = new Versioned<Service>("default/small", big.Value with { Name = "small", ClusterIp = IPAddress.Parse("10.96.0.41"), Selector = new Dictionary<string, string>() }, 1);
        var (ports, _) = Table([big, small], Pods(300));

        var refused = ports.Select(p => ServiceController.TooBig(p, maglev: true, tableSize: 251)).ToList();

        Assert.Null(refused[1]);
        var r = Assert.IsType<Rejection>(refused[0]);
        Assert.Equal(("default/big", "maglev-table-too-small"), (r.Key, r.Reason));
        Assert.Contains("300 backends do not fit a Maglev table of 251 slots", r.Detail, StringComparison.Ordinal);
        Assert.Null(ServiceController.TooBig(ports[0], maglev: false, tableSize: 251)); // random/iptables: no table to fit
    }
}
