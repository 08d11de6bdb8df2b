using System.Net;
using System.Text;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Store.Sqlite;
using Loom.Testing;

namespace Loom.Lab.Tests;

/// <summary>`loom lab apply` of many Services: one list per apply, distinct ClusterIPs, state.json written once.</summary>
public sealed class ServiceApplyTests
{
    [Fact]
    public async Task Two_thousand_Services_apply_with_distinct_ClusterIPs_in_a_bounded_number_of_store_operations()
    {
        await WithLabAsync(async (state, sqlite) =>
        {
            var store = new CountingStore(sqlite);
            var output = new StringWriter();
            await LabApi.ApplyAsync(state, store, Manifests.Parse(ServicesYaml(2000)), output);

            Assert.Equal(1, store.Lists);
            Assert.Equal(2000, store.Puts);
            Assert.Equal(2001, store.Calls);
            var services = (await sqlite.ListAsync(Kinds.Service)).Items;
            Assert.Equal(2000, services.Count);
            Assert.Equal(2000, services.Select(s => s.Value.ClusterIp).Distinct().Count());
            Assert.Equal(2000, Lab.Load(state.LabDir)!.Services.Count);
            Assert.Equal(2000, output.ToString().Split('\n').Count(l => l.EndsWith(" created", StringComparison.Ordinal)));

            // Applying again changes nothing and keeps every ClusterIP.
            var again = new CountingStore(sqlite);
            await LabApi.ApplyAsync(state, again, Manifests.Parse(ServicesYaml(2000)), new StringWriter());
            Assert.Equal((1, 0), (again.Lists, again.Puts));
            Assert.Equal(services.Select(s => (s.Key, s.Value.ClusterIp)), (await sqlite.ListAsync(Kinds.Service)).Items.Select(s => (s.Key, s.Value.ClusterIp)));
        });
    }

    [Fact]
    public async Task A_ClusterIP_a_concurrent_writer_took_first_is_given_up()
    {
        await WithLabAsync(async (state, sqlite) =>
        {
            // Before the apply's third put, another writer creates a Service with the address the apply picks next.
            var store = new CountingStore(sqlite)
            {
                BeforePut = n => n == 3
                    ? sqlite.PutAsync(Kinds.Service, new Service { Namespace = "other", Name = "intruder", ClusterIp = IPAddress.Parse("10.96.0.4"), Ports = [new ServicePort(null, Protocol.Tcp, 80, 80)] })
                    : Task.CompletedTask,
            };
            await LabApi.ApplyAsync(state, store, Manifests.Parse(ServicesYaml(5)), new StringWriter());

            var services = (await sqlite.ListAsync(Kinds.Service)).Items;
            Assert.Equal(6, services.Count);
            Assert.Equal(6, services.Select(s => s.Value.ClusterIp).Distinct().Count());
            Assert.Equal(IPAddress.Parse("10.96.0.4"), services.Single(s => s.Value.Name == "intruder").Value.ClusterIp);
            Assert.True(store.Lists > 1, "the apply re-read the Services after the other write");
            Assert.Equal(5, Lab.Load(state.LabDir)!.Services.Count);
        });
    }

    [Fact]
    public async Task NodePort_Services_get_free_node_ports_keep_them_on_reapply_and_release_them_as_ClusterIP()
    {
        await WithLabAsync(async (state, store) =>
        {
            var yaml = NodePortYaml("web", "NodePort", nodePort: null) + NodePortYaml("lb", "LoadBalancer", nodePort: 31234, local: true);
            await LabApi.ApplyAsync(state, store, Manifests.Parse(yaml), new StringWriter());
            var web = await GetAsync(store, "web");
            var lb = await GetAsync(store, "lb");
            Assert.Equal(ServiceType.NodePort, web.Type);
            Assert.InRange(web.Ports[0].NodePort, 30000, 32767);
            Assert.Equal((31234, 31234), (lb.Ports[0].NodePort, lb.Ports[1].NodePort));
            Assert.InRange(lb.HealthCheckNodePort, 30000, 32767);
            Assert.Equal(3, new[] { web.Ports[0].NodePort, lb.Ports[0].NodePort, lb.HealthCheckNodePort }.Distinct().Count());

            var output = new StringWriter();
            await LabApi.ApplyAsync(state, store, Manifests.Parse(yaml), output);
            Assert.Equal("service/web unchanged\nservice/lb unchanged\n", output.ToString().ReplaceLineEndings("\n"));
            Assert.Equal(web.Ports, (await GetAsync(store, "web")).Ports);
            Assert.Equal(lb.HealthCheckNodePort, (await GetAsync(store, "lb")).HealthCheckNodePort);

            // Back to ClusterIP: the node port is free for another Service to ask for.
            await LabApi.ApplyAsync(state, store, Manifests.Parse(NodePortYaml("web", "ClusterIP", nodePort: null)), new StringWriter());
            Assert.Equal(0, (await GetAsync(store, "web")).Ports[0].NodePort);
            await LabApi.ApplyAsync(state, store, Manifests.Parse(NodePortYaml("other", "NodePort", nodePort: web.Ports[0].NodePort)), new StringWriter());
            Assert.Equal(web.Ports[0].NodePort, (await GetAsync(store, "other")).Ports[0].NodePort);
        });
    }

    [Theory]
    [InlineData(31234, "Service/b: spec.ports[0].nodePort: Invalid value: 31234: provided port is already allocated (to default/a)")]
    [InlineData(40000, "Service/b: spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767")]
    public async Task A_refused_node_port_applies_nothing_of_the_file(int nodePort, string expected)
    {
        await WithLabAsync(async (state, store) =>
        {
            await LabApi.ApplyAsync(state, store, Manifests.Parse(NodePortYaml("a", "NodePort", nodePort: 31234)), new StringWriter());
            var revision = (await store.ListAsync(Kinds.Service)).Revision;
            var e = await Assert.ThrowsAsync<LabException>(() =>
                LabApi.ApplyAsync(state, store, Manifests.Parse(NodePortYaml("c", "NodePort", nodePort: null) + NodePortYaml("b", "NodePort", nodePort)), new StringWriter()));
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
            Assert.StartsWith("nothing applied", e.Message, StringComparison.Ordinal);
            var after = await store.ListAsync(Kinds.Service);
            Assert.Equal((revision, 1), (after.Revision, after.Items.Count));
        });
    }

    [Fact]
    public async Task One_node_port_asked_for_twice_in_a_file_is_refused()
    {
        await WithLabAsync(async (state, store) =>
        {
            var e = await Assert.ThrowsAsync<LabException>(() =>
                LabApi.ApplyAsync(state, store, Manifests.Parse(NodePortYaml("a", "NodePort", nodePort: 30500) + NodePortYaml("b", "LoadBalancer", nodePort: 30500)), new StringWriter()));
            Assert.Contains("Service/b: spec.ports[0].nodePort: Invalid value: 30500: provided port is already allocated (to default/a)", e.Message, StringComparison.Ordinal);
            Assert.Empty((await store.ListAsync(Kinds.Service)).Items);
        });
    }

    [Fact]
    public async Task A_node_port_a_concurrent_writer_took_first_withdraws_the_new_Service()
    {
        await WithLabAsync(async (state, sqlite) =>
        {
            // Between the apply's check and its put, another writer takes the node port the file asks for.
            var store = new CountingStore(sqlite)
            {
                BeforePut = n => n == 1
                    ? sqlite.PutAsync(Kinds.Service, new Service
                    {
                        Namespace = "other", Name = "intruder", ClusterIp = IPAddress.Parse("10.96.0.200"), Type = ServiceType.NodePort,
                        Ports = [new ServicePort(null, Protocol.Tcp, 80, 80, 31500)],
                    })
                    : Task.CompletedTask,
            };
            var e = await Assert.ThrowsAsync<LabException>(() => LabApi.ApplyAsync(state, store, Manifests.Parse(NodePortYaml("web", "NodePort", nodePort: 31500)), new StringWriter()));
            Assert.Equal("Service/web: node port 31500: provided port is already allocated (to other/intruder, written concurrently)", e.Message);
            Assert.Equal("intruder", Assert.Single((await sqlite.ListAsync(Kinds.Service)).Items).Value.Name);
            Assert.Empty(Lab.Load(state.LabDir)!.Services);
        });
    }

    private static async Task<Service> GetAsync(IStore store, string name) =>
        (await store.ListAsync(Kinds.Service)).Items.Single(i => i.Value.Name == name).Value;

    // A Service of the type with an http port and a dns pair (53/TCP and 53/UDP), the http one asking for nodePort.
    private static string NodePortYaml(string name, string type, int? nodePort, bool local = false) => FormattableString.Invariant($"""
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
        spec:
          type: {type}
        {(local ? "  externalTrafficPolicy: Local\n" : "")}  selector:
            app: x
          ports:
          - name: dns
            port: 53
            protocol: UDP
          - name: dns-tcp
            port: 53
        {(nodePort is { } n ? $"    nodePort: {n}\n" : "")}
        """);

    private static string ServicesYaml(int n)
    {
        var yaml = new StringBuilder();
        for (var i = 0; i < n; i++)
        {
            yaml.Append(FormattableString.Invariant($"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i:D5}\nspec:\n  selector:\n    app: x\n  ports:\n  - port: 80\n"));
        }

        return yaml.ToString();
    }

    private static async Task WithLabAsync(Func<LabState, IStore, Task> test)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"loom-svcapply-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var state = new LabState { Prefix = "lsa-", LabDir = dir, Store = "sqlite", StorePath = Path.Combine(dir, "store.db"), UnderlayNetns = "lsa-underlay" };
        try
        {
            LabState.Update(state.LabDir, _ => state);
            var sqlite = await SqliteStore.OpenAsync(state.StorePath!);
            await using (sqlite)
            {
                await test(state, sqlite);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private sealed class CountingStore(IStore inner) : DelegatingStore(inner)
    {
        public int Calls { get; private set; }

        public int Lists { get; private set; }

        public int Puts { get; private set; }

        public Func<int, Task> BeforePut { get; init; } = _ => Task.CompletedTask;

        protected override void OnCall() => Calls++;

        public override Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default)
        {
            Lists++;
            return base.ListAsync(kind, cancellationToken);
        }

        public override async Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
            CancellationToken cancellationToken = default)
        {
            Puts++;
            await BeforePut(Puts);
            return await base.PutAsync(kind, key, value, expectedRevision, lease, cancellationToken);
        }
    }
}
