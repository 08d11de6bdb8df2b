using System.Net;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Kubernetes.Tests;

public sealed class SourceTests
{
    [Fact]
    public async Task Initial_lists_are_mirrored_into_the_local_store_as_Loom_objects()
    {
        await using var server = new ReplayServer();
        await using var h = new Harness(server).WithFixtures();
        await h.StartAsync();

        var (nodes, _) = await h.Store.ListAsync(Kinds.Node);
        var n2 = Assert.Single(nodes).Value; // n1 is this node: its agent writes it
        Assert.Equal("n2", n2.Name);
        Assert.Equal(IPAddress.Parse("192.168.60.12"), n2.UnderlayIp); // Loom's annotation wins over the InternalIP
        Assert.Equal("eth1", n2.UnderlayInterface);
        Assert.Equal([IPNetwork.Parse("10.244.2.0/24")], n2.PodCidrs); // the IPv6 one is not Loom's
        Assert.Equal("02:42:c0:a8:3c:0c", n2.VtepMac);
        Assert.Equal(IPNetwork.Parse("10.244.2.0/24"), n2.Networks["flannel"].PodCidr);
        Assert.True(n2.Ready); // the LoomNode says so, although the kubelet is not ready
        Assert.True(n2.Unschedulable);
        Assert.Equal([new Taint("node.kubernetes.io/unschedulable", null, TaintEffect.NoSchedule), new Taint("dedicated", "db", TaintEffect.NoExecute)], n2.Taints);
        Assert.Equal("z2", n2.Labels["topology.kubernetes.io/zone"]);

        var (claims, _) = await h.Store.ListAsync(Kinds.PodCidr);
        Assert.Equal(["10.244.1.0/24 n1", "10.244.2.0/24 n2"], claims.Select(c => $"{c.Value.Cidr} {c.Value.Node}").Order());

        var (endpoints, _) = await h.Store.ListAsync(Kinds.Endpoint);
        Assert.Equal(["default/web-1", "default/web-2"], endpoints.Select(e => e.Key)); // no hostNetwork pod, no pod without an address
        var web1 = endpoints[0].Value;
        Assert.Equal("n2", web1.Node);
        Assert.Equal([IPAddress.Parse("10.244.2.5")], web1.IPs);
        Assert.True(web1.Ready);
        Assert.Equal("containerd://9f1e", web1.ContainerId);
        Assert.Equal([new ContainerPort("http", 8080, Protocol.Tcp), new ContainerPort("metrics", 9090, Protocol.Tcp)], web1.Ports);
        var web2 = endpoints[1].Value;
        Assert.False(web2.Ready); // its slice: terminating, not ready
        Assert.Equal("", web2.ContainerId); // this node's pod: the ID is CNI's

        var (services, _) = await h.Store.ListAsync(Kinds.Service);
        Assert.Equal(["default/lb", "default/np", "default/web"], services.Select(s => s.Key));
        var web = services[2].Value;
        Assert.Equal([new ServicePort("http", Protocol.Tcp, 80, 8080), new ServicePort("dns", Protocol.Udp, 53, 5353)], web.Ports); // "http" resolved by the slice
        Assert.Equal("web", web.Selector["app"]);
        var np = services[1].Value;
        Assert.Equal(ServiceType.NodePort, np.Type);
        Assert.Equal([new ServicePort(null, Protocol.Tcp, 8080, 8080, 30080)], np.Ports); // SCTP skipped
        Assert.Equal([IPAddress.Parse("203.0.113.7")], np.ExternalIps);
        Assert.Equal(TrafficPolicy.Local, np.ExternalTrafficPolicy);
        var lb = services[0].Value;
        Assert.Equal(ServiceType.LoadBalancer, lb.Type);
        Assert.Equal(31000, lb.HealthCheckNodePort);
        Assert.Equal(TrafficPolicy.Local, lb.InternalTrafficPolicy);
        Assert.Equal(SessionAffinity.ClientIP, lb.SessionAffinity);
        Assert.Equal(600, lb.SessionAffinityTimeoutSeconds);
        Assert.Contains("service default/headless: headless (DNS only)", h.Source.Skipped);
        Assert.Contains("service default/ext: ExternalName (DNS only)", h.Source.Skipped);

        var (namespaces, _) = await h.Store.ListAsync(Kinds.Namespace);
        Assert.Equal("a", namespaces.Single(n => n.Key == "default").Value.Labels["team"]);

        var (policies, _) = await h.Store.ListAsync(Kinds.NetworkPolicy);
        Assert.Equal(["default/allow-web", "kube-system/deny-all"], policies.Select(p => p.Key));
        var allow = policies[0].Value;
        Assert.Equal([PolicyType.Ingress, PolicyType.Egress], allow.PolicyTypes);
        var from = allow.Ingress[0].From;
        Assert.Equal("client", from[0].PodSelector!.MatchLabels["role"]);
        Assert.Equal(["a", "b"], from[0].NamespaceSelector!.MatchExpressions[0].Values);
        Assert.Equal("10.0.0.0/8", from[1].IPBlock!.Cidr);
        Assert.Equal(["10.1.0.0/16"], from[1].IPBlock!.Except);
        Assert.Equal([new NetworkPolicyPort { Protocol = Protocol.Tcp, Port = "http" }, new NetworkPolicyPort { Protocol = Protocol.Udp, Port = "53", EndPort = 60 }],
            allow.Ingress[0].Ports);
        Assert.True(allow.Egress[0].To[0].NamespaceSelector!.IsEmpty);
        Assert.Equal("443", allow.Egress[0].Ports[0].Port);
        Assert.Null(policies[1].Value.PolicyTypes);
        Assert.Contains(h.Source.Skipped, s => s.StartsWith("networkpolicy default/sctp:", StringComparison.Ordinal));

        Assert.StartsWith($"kubernetes (http://127.0.0.1:{server.Url.Port}), synced: nodes ✓ pods ✓ services ✓ endpointslices ✓ namespaces ✓ networkpolicies ✓ loomnodes ✓", h.Source.Describe());
        Assert.Equal([IPNetwork.Parse("10.244.1.0/24")], h.Source.PodCidrsOf("n1"));
    }

    [Fact]
    public async Task A_CNI_ADD_write_is_merged_with_the_pods_labels_and_keeps_its_container_ID()
    {
        await using var server = new ReplayServer();
        await using var h = new Harness(server).WithFixtures();
        await h.StartAsync();

        // As the agent's socket writes it on CNI ADD: the sandbox's ID, no labels, ready.
        await h.Store.PutAsync(Kinds.Endpoint, new Endpoint
        {
            Namespace = "default", Name = "web-2", Node = "n1", ContainerId = "sandbox-1", Interface = "eth0",
            IPs = [IPAddress.Parse("10.244.1.7")], Ready = true,
        });
        await Harness.EventuallyAsync(async () => (await h.Store.GetAsync(Kinds.Endpoint, "default/web-2"))?.Value.Labels.GetValueOrDefault("app") == "web",
            "the API's labels merged in");
        var merged = (await h.Store.GetAsync(Kinds.Endpoint, "default/web-2"))!.Value;
        Assert.Equal("sandbox-1", merged.ContainerId);
        Assert.False(merged.Ready); // the API's (its slice: terminating)
    }

    [Fact]
    public async Task Watch_events_change_the_store_and_a_bookmark_moves_the_next_watch_on()
    {
        await using var server = new ReplayServer();
        server.On("WATCH /api/v1/pods", Reply.WatchFixture("pods-watch.jsonl", WatchEnd.Close), Reply.Watch(WatchEnd.Hang));
        await using var h = new Harness(server).WithFixtures();
        await h.StartAsync();

        await Harness.EventuallyAsync(async () => await h.Store.GetAsync(Kinds.Endpoint, "default/web-3") is not null, "web-3 added");
        await Harness.EventuallyAsync(async () => (await h.Store.GetAsync(Kinds.Endpoint, "default/web-1"))?.Value.Labels.GetValueOrDefault("tier") == "front",
            "web-1 relabelled");
        await Harness.EventuallyAsync(() => Task.FromResult(server.Seen("GET", "/api/v1/pods", watch: true).Count >= 2), "a second watch");

        var watches = server.Seen("GET", "/api/v1/pods", watch: true);
        Assert.Equal("1000", watches[0].QueryValue("resourceVersion")); // from the list
        Assert.Equal("true", watches[0].QueryValue("allowWatchBookmarks"));
        Assert.Equal("1010", watches[1].QueryValue("resourceVersion")); // from the bookmark, not the last object
        Assert.Single(server.Seen("GET", "/api/v1/pods")); // no re-list
    }

    [Fact]
    public async Task Gone_lists_again_and_deletes_what_the_new_list_lacks()
    {
        await using var server = new ReplayServer();
        var smaller = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "pods.json"))
            .Replace("\"resourceVersion\": \"1000\"", "\"resourceVersion\": \"1500\"", StringComparison.Ordinal);
        smaller = smaller[..smaller.IndexOf("    {\n      \"metadata\": {\"name\": \"web-2\"", StringComparison.Ordinal)].TrimEnd().TrimEnd(',') + "\n  ]\n}\n";
        server.Replace("GET /api/v1/pods", Reply.Fixture("pods.json"), Reply.Json(smaller))
            .On("WATCH /api/v1/pods", Reply.WatchFixture("gone.jsonl", WatchEnd.Close), Reply.Watch(WatchEnd.Hang));
        await using var h = new Harness(server).WithFixtures();
        await h.StartAsync();

        await Harness.EventuallyAsync(async () => await h.Store.GetAsync(Kinds.Endpoint, "default/web-2") is null, "web-2 deleted after the re-list");
        Assert.NotNull(await h.Store.GetAsync(Kinds.Endpoint, "default/web-1"));
        Assert.Equal(2, server.Seen("GET", "/api/v1/pods").Count);
        await Harness.EventuallyAsync(() => Task.FromResult(server.Seen("GET", "/api/v1/pods", watch: true).Count >= 2), "a watch after the re-list");
        Assert.Equal("1500", server.Seen("GET", "/api/v1/pods", watch: true)[1].QueryValue("resourceVersion"));
        Assert.Equal(2, h.Source.Informers.Single(i => i.Resource == "pods").Relists);
    }

    [Fact]
    public async Task A_dropped_watch_resumes_from_the_last_version_after_a_backoff()
    {
        await using var server = new ReplayServer();
        var added = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "pods-watch.jsonl")).First();
        server.On("WATCH /api/v1/pods", Reply.Watch(WatchEnd.Drop, added), Reply.Watch(WatchEnd.Hang));
        await using var h = new Harness(server).WithFixtures();
        await h.StartAsync();

        await Harness.EventuallyAsync(() => Task.FromResult(server.Seen("GET", "/api/v1/pods", watch: true).Count >= 2), "a second watch");
        Assert.NotNull(await h.Store.GetAsync(Kinds.Endpoint, "default/web-3"));
        Assert.Equal("1001", server.Seen("GET", "/api/v1/pods", watch: true)[1].QueryValue("resourceVersion"));
        Assert.Single(server.Seen("GET", "/api/v1/pods")); // resumed, not re-listed
    }

    [Fact]
    public async Task Forbidden_names_the_verb_the_ClusterRole_lacks()
    {
        await using var server = new ReplayServer();
        await using var h = new Harness(server).WithFixtures();
        server.Replace("GET /apis/networking.k8s.io/v1/networkpolicies", Reply.ApiStatus(403, "Forbidden",
            "networkpolicies.networking.k8s.io is forbidden: User \\\"system:serviceaccount:loom-system:loom-agent\\\" cannot list resource \\\"networkpolicies\\\""));
        await h.StartAsync(waitSynced: false);

        var e = await Assert.ThrowsAsync<KubernetesSyncException>(() => h.Source.WaitSyncedAsync(TimeSpan.FromSeconds(2), h.Token));
        Assert.Contains("networkpolicies: GET /apis/networking.k8s.io/v1/networkpolicies: 403 Forbidden", e.Message, StringComparison.Ordinal);
        Assert.Contains("the ClusterRole loom-agent must grant list on networkpolicies.networking.k8s.io", e.Message, StringComparison.Ordinal);
        Assert.Contains("networkpolicies ✗", h.Source.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unauthorized_says_the_credentials_were_refused()
    {
        await using var server = new ReplayServer();
        await using var h = new Harness(server).WithFixtures();
        server.Replace("GET /api/v1/nodes", Reply.ApiStatus(401, "Unauthorized", "Unauthorized"));
        await h.StartAsync(waitSynced: false);

        var e = await Assert.ThrowsAsync<KubernetesSyncException>(() => h.Source.WaitSyncedAsync(TimeSpan.FromSeconds(2), h.Token));
        Assert.Contains("credentials were refused", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_JSON_is_an_error_and_the_informer_keeps_trying()
    {
        await using var server = new ReplayServer();
        await using var h = new Harness(server).WithFixtures();
        server.Replace("GET /api/v1/services", Reply.Json("{\"kind\":\"ServiceList\",\"items\":[{\"metadata\":"), Reply.Fixture("services.json"));
        await h.StartAsync();

        Assert.Equal(2, server.Seen("GET", "/api/v1/services").Count);
        Assert.NotNull(await h.Store.GetAsync(Kinds.Service, "default/web"));
    }

    [Fact]
    public async Task An_unreachable_server_fails_the_sync_with_the_connection_error()
    {
        var dir = Directory.CreateTempSubdirectory("loom-k8s-").FullName;
        try
        {
            var kubeconfig = Harness.WriteKubeconfig(dir, new Uri("http://127.0.0.1:9")); // discard port: nothing listens
            await using var store = MemoryStore.Create();
            using var source = KubernetesSource.Create(new KubernetesOptions { Kubeconfig = kubeconfig, BackoffFirst = TimeSpan.FromMilliseconds(50) }, store, "n1", TextWriter.Null);
            using var cts = new CancellationTokenSource();
            var run = source.RunAsync(cts.Token);
            var e = await Assert.ThrowsAsync<KubernetesSyncException>(() => source.WaitSyncedAsync(TimeSpan.FromSeconds(1), CancellationToken.None));
            Assert.Contains("Connection refused", e.Message, StringComparison.Ordinal);
            await cts.CancelAsync();
            await run;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
