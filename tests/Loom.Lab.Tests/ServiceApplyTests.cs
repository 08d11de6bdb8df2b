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
