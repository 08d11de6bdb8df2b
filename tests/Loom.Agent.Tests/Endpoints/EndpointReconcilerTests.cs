using System.Net;
using System.Text;
using Loom.Agent.Endpoints;
using Loom.Core.Cni;
using Loom.Core.Ipam;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Agent.Tests.Endpoints;

/// <summary>
/// One reconcile pass over an in-memory store, a scratch IPAM directory and a given set of host links: which Endpoints
/// go, which stay, which pending addresses are freed and which corrupt files are rebuilt.
/// </summary>
public sealed class EndpointReconcilerTests : IDisposable
{
    private readonly IStore _store = MemoryStore.Create();
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("loom-epr-");
    private readonly StringWriter _log = new();
    private readonly HashSet<string> _links = new(StringComparer.Ordinal);

    public void Dispose()
    {
        _dir.Delete(recursive: true);
        _log.Dispose();
    }

    private string NetDir => Path.Combine(_dir.FullName, "loom");

    private bool _linksUnreadable;

    private EndpointReconciler Reconciler()
    {
        var config = new AgentConfig { Node = "n1", IpamDataDir = _dir.FullName };
        var node = new NodeContext("n1", config, new ClusterConfig(), IPAddress.Loopback, 1500, IPNetwork.Parse("10.244.1.0/24"));
        return new EndpointReconciler(node, _store, new AgentLoops(_store, _log), () => _linksUnreadable ? null : _links);
    }

    private async Task Pod(string id, string ip, bool allocated = true, bool veth = true, string node = "n1")
    {
        await _store.PutAsync(Kinds.Endpoint, new Endpoint
        {
            Namespace = "default", Name = id, Node = node, ContainerId = id, Interface = "eth0", IPs = [IPAddress.Parse(ip)], Ready = true,
        });
        if (allocated)
        {
            Allocation(ip, id + "\r\neth0");
        }

        if (veth)
        {
            _links.Add(CniNames.HostVethName(id, "eth0"));
        }
    }

    private void Allocation(string ip, string content)
    {
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Combine(NetDir, ip), content);
    }

    private async Task<string[]> Endpoints() =>
        [.. (await _store.ListAsync(Kinds.Endpoint)).Items.Select(e => e.Value.Name).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task Endpoints_whose_address_or_veth_is_gone_are_removed_and_others_kept()
    {
        await Pod("live", "10.244.1.2");
        await Pod("freed", "10.244.1.3", allocated: false);             // DEL ran while the agent was down
        await Pod("vethless", "10.244.1.4", veth: false);               // the pod died and DEL never ran
        await Pod("other-node", "10.244.2.5", allocated: false, veth: false, node: "n2");
        await Pod("taken", "10.244.1.6", allocated: false);
        Allocation("10.244.1.6", "newpod\r\neth0");                       // the address already went to another pod

        using var r = Reconciler();
        await r.PassAsync(CancellationToken.None);

        Assert.Equal(["live", "other-node"], await Endpoints());
        var log = _log.ToString();
        Assert.Contains("default/freed (10.244.1.3) removed: address 10.244.1.3 is no longer allocated", log, StringComparison.Ordinal);
        Assert.Contains($"removed: its host veth {CniNames.HostVethName("vethless", "eth0")} is gone", log, StringComparison.Ordinal);
        Assert.Contains("default/taken (10.244.1.6) removed", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_allocation_file_with_no_interface_keeps_its_containers_endpoint()
    {
        await Pod("legacy", "10.244.1.2", allocated: false);
        Allocation("10.244.1.2", "legacy"); // older host-local: the container ID alone

        using var r = Reconciler();
        await r.PassAsync(CancellationToken.None);

        Assert.Equal(["legacy"], await Endpoints());
    }

    [Fact]
    public async Task An_address_pending_release_is_freed_once_no_endpoint_names_it()
    {
        await Pod("old", "10.244.1.2", veth: false);
        using (var ipam = IpAllocator.Open(IpamConfig.Create("loom", [RangeSet.Create([IpRange.Create(IPNetwork.Parse("10.244.1.0/24"))])], [], _dir.FullName)))
        {
            ipam.HoldForRelease(new Attachment("old", "eth0")); // DEL without the agent
        }

        using var r = Reconciler();
        await r.PassAsync(CancellationToken.None);

        Assert.Empty(await Endpoints());
        Assert.Empty(Directory.GetFiles(NetDir, "10.*"));
        Assert.Empty(Directory.GetFiles(NetDir, "pending_release.*"));
        Assert.Contains("10.244.1.2 of container old (eth0) released", _log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pending_address_stays_while_the_host_links_cannot_be_read()
    {
        Allocation("10.244.1.2", "old\r\neth0");
        File.WriteAllText(Path.Combine(NetDir, "pending_release.10.244.1.2"), "old\r\neth0");
        _linksUnreadable = true;

        using var r = Reconciler();
        await r.PassAsync(CancellationToken.None);

        Assert.True(File.Exists(Path.Combine(NetDir, "pending_release.10.244.1.2")));
        _linksUnreadable = false;
        await r.PassAsync(CancellationToken.None);
        Assert.False(File.Exists(Path.Combine(NetDir, "10.244.1.2")));
    }

    [Fact]
    public async Task A_pending_address_whose_pod_is_back_stays()
    {
        await Pod("back", "10.244.1.2");
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Combine(NetDir, "pending_release.10.244.1.2"), "back\r\neth0");

        using var r = Reconciler();
        await r.PassAsync(CancellationToken.None);

        // Its endpoint goes (DEL ran for it), but its veth is there: the address waits for the runtime's retried DEL.
        Assert.Empty(await Endpoints());
        Assert.True(File.Exists(Path.Combine(NetDir, "10.244.1.2")));
    }

    [Fact]
    public async Task A_corrupt_allocation_is_reported_and_rebuilt_from_the_endpoint_naming_its_address()
    {
        await Pod("kept", "10.244.1.2", allocated: false);
        Allocation("10.244.1.2", "\0\0\0\0");
        Allocation("10.244.1.9", "");

        using var r = Reconciler();
        await r.PassAsync(CancellationToken.None);
        await r.PassAsync(CancellationToken.None);

        Assert.Equal(["kept"], await Endpoints());
        Assert.Equal("kept\r\neth0", File.ReadAllText(Path.Combine(NetDir, "10.244.1.2"), Encoding.UTF8));
        Assert.Equal("", File.ReadAllText(Path.Combine(NetDir, "10.244.1.9"))); // nobody names it: left taken, for the runtime's GC
        var log = _log.ToString();
        Assert.Contains($"corrupt allocation file {Path.Combine(NetDir, "10.244.1.2")} rebuilt: owner container kept (eth0)", log, StringComparison.Ordinal);
        Assert.Single(log.Split('\n'), l => l.Contains($"corrupt allocation file {Path.Combine(NetDir, "10.244.1.9")} (no owner recorded)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_an_ipam_directory_only_the_veths_are_checked()
    {
        await Pod("a", "10.244.1.2", allocated: false);
        await Pod("b", "10.244.1.3", allocated: false, veth: false);

        using var r = Reconciler();
        await r.PassAsync(CancellationToken.None);

        Assert.Equal(["a"], await Endpoints());
    }
}
