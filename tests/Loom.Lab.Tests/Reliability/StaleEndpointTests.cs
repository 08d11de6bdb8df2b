using System.Diagnostics;
using Loom.Core.AgentApi;
using Loom.Core.Ipam;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Lab.Tests.Reliability;

/// <summary>One lab (two nodes, agents, iptables Services) for the stale-endpoint checks.</summary>
public sealed class StaleEndpointLab : IAsyncLifetime
{
    private LabOptions? _options;

    public LabState State { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _options = TestLab.Options(nodes: 2, agents: true) with { ServiceBackend = ServiceProxyMode.Iptables };
        try
        {
            State = await Lab.UpAsync(_options, TextWriter.Null);
        }
        catch
        {
            await Lab.DownAsync(_options.LabDir, _options.Prefix);
            _options = null;
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_options is not null)
        {
            await Lab.DownAsync(_options.LabDir, _options.Prefix);
        }
    }
}

/// <summary>
/// A pod deleted while its node's agent is stopped: DEL succeeds, its address stays allocated (pending release) while
/// its Endpoint exists, so no ADD can be given it, and the restarted agent removes the Endpoint (the Service's
/// backends drop it on every node) and then frees the address.
/// </summary>
public sealed class StaleEndpointTests(StaleEndpointLab lab) : IClassFixture<StaleEndpointLab>
{
    private const string ServiceYaml = """
        apiVersion: v1
        kind: Service
        metadata:
          name: stale
        spec:
          selector:
            app: stale
          ports:
          - port: 80
        """;

    private static readonly Dictionary<string, string> Labels = new(StringComparer.Ordinal) { ["app"] = "stale" };

    [Fact]
    public async Task A_pod_deleted_with_its_agent_down_leaves_no_stale_endpoint_and_its_address_is_not_reused_meanwhile()
    {
        var state = lab.State;
        var ctr = state.Nodes[0].Name;
        var worker = state.Nodes[1].Name;
        await Lab.ApplyAsync(state, ServiceYaml, TextWriter.Null);
        var old = Lab.AddPod(state, "stale-old", worker, labels: Labels);
        var kept = Lab.AddPod(state, "stale-kept", worker, labels: Labels);
        var oldIp = old.Address!;
        await WaitBackendsAsync(state, ctr, [$"{oldIp}:80", $"{kept.Address}:80"]);

        var pid = state.Node(worker).AgentPid!.Value;
        LabProcesses.Kill(pid);
        await WaitUntilAsync(() => Task.FromResult(!LabProcesses.IsAlive(pid)), TimeSpan.FromSeconds(10), "the agent to stop");

        // DEL with the agent down succeeds, but nothing could remove the Endpoint: the address is held for it.
        Lab.DeletePod(state, "stale-old");
        Assert.Contains("stale-old", await EndpointNamesAsync(state));
        var ipamDir = Path.Combine(state.NodeDir(worker), "ipam", "loom");
        Assert.True(File.Exists(Path.Combine(ipamDir, oldIp.ToString())), "the deleted pod's address was freed while its Endpoint exists");
        Assert.True(File.Exists(Path.Combine(ipamDir, "pending_release." + oldIp)));

        // Even asked for by name, the address is refused while its Endpoint may draw the Service's traffic.
        var podCidr = (await Lab.ReadNodesAsync(state))[worker].PodCidrs[0];
        using (var ipam = IpAllocator.Open(IpamConfig.Create("loom", [RangeSet.Create([IpRange.Create(podCidr)])], [], Path.Combine(state.NodeDir(worker), "ipam"))))
        {
            var refused = Assert.Throws<IpamException>(() => ipam.Allocate(new Attachment("probe", "eth0"), [oldIp]));
            Assert.Equal(IpamErrorKind.RequestedIpUnavailable, refused.Kind);
        }

        // A new ADD with the agent down fails (code 11, try again later) rather than wiring a pod no Service knows.
        var down = Assert.Throws<LabException>(() => Lab.AddPod(state, "stale-new", worker, labels: Labels));
        Assert.Contains("not reachable", down.Message, StringComparison.Ordinal);

        var clock = Stopwatch.StartNew();
        Lab.RestartAgent(state, worker);
        await WaitUntilAsync(async () => !(await EndpointNamesAsync(state)).Contains("stale-old"), TimeSpan.FromSeconds(60), "the stale Endpoint to go");
        var removedAfter = clock.Elapsed;
        await WaitBackendsAsync(state, ctr, [$"{kept.Address}:80"]);
        await WaitBackendsAsync(state, worker, [$"{kept.Address}:80"]);
        await WaitUntilAsync(() => Task.FromResult(!File.Exists(Path.Combine(ipamDir, oldIp.ToString())) && Directory.GetFiles(ipamDir, "pending_release.*").Length == 0),
            TimeSpan.FromSeconds(10), "the held addresses to be freed");
        Assert.Contains("stale-kept", await EndpointNamesAsync(state));
        Assert.True(removedAfter < TimeSpan.FromSeconds(60), $"stale Endpoint removed {removedAfter.TotalSeconds:0.0} s after the agent's restart");

        // With the agent back a new pod is wired and is a backend; the old address is free again for anyone.
        var added = Lab.AddPod(state, "stale-new", worker, labels: Labels);
        await WaitBackendsAsync(state, ctr, [$"{kept.Address}:80", $"{added.Address}:80"]);
        var log = File.ReadAllText(Path.Combine(state.NodeDir(worker), "agent.log"));
        Assert.Contains($"endpoint default/stale-old ({oldIp}) removed", log, StringComparison.Ordinal);
    }

    private static async Task<List<string>> EndpointNamesAsync(LabState state)
    {
        var store = await Lab.OpenStoreAsync(state);
        await using (store)
        {
            return [.. (await store.ListAsync(Kinds.Endpoint)).Items.Select(e => e.Value.Name)];
        }
    }

    /// <summary>Until the node's agent programs exactly these backends for default/stale.</summary>
    private static Task WaitBackendsAsync(LabState state, string node, string[] backends)
    {
        var want = backends.Order(StringComparer.Ordinal).ToList();
        List<string>? last = null;
        return WaitUntilAsync(async () =>
        {
            try
            {
                var r = await AgentClient.SendAsync(Lab.AgentSocket(state, node), new AgentRequest { Op = "services" }, TimeSpan.FromSeconds(5));
                last = r.Services?.FirstOrDefault(s => s.Namespace == "default" && s.Name == "stale")?.Endpoints.Order(StringComparer.Ordinal).ToList();
                return last is not null && last.SequenceEqual(want);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), () => $"{node} to program backends [{string.Join(", ", want)}] (last: [{string.Join(", ", last ?? [])}])");
    }

    private static Task WaitUntilAsync(Func<Task<bool>> done, TimeSpan timeout, string what) => WaitUntilAsync(done, timeout, () => what);

    private static async Task WaitUntilAsync(Func<Task<bool>> done, TimeSpan timeout, Func<string> what)
    {
        var sw = Stopwatch.StartNew();
        while (!await done())
        {
            Assert.True(sw.Elapsed < timeout, $"timed out after {timeout.TotalSeconds:0} s waiting for {what()}");
            await Task.Delay(200);
        }
    }
}
