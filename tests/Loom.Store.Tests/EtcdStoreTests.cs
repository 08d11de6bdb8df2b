using Loom.Core.Store;
using Loom.Store.Etcd;

namespace Loom.Store.Tests;

/// <summary>The contract against a real etcd, one fresh server per test so compaction and revisions never leak between tests.</summary>
public sealed class EtcdStoreTests : StoreContractTests
{
    private EtcdServer? _server;

    protected override TimeSpan ShortLease => TimeSpan.FromSeconds(1);

    protected override async Task<IStore> OpenAsync()
    {
        _server ??= await EtcdServer.StartAsync();
        return EtcdStore.Connect(_server.ClientUrl);
    }

    protected override async Task CleanupAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Keys_live_under_the_prefix_and_other_prefixes_are_invisible()
    {
        await using var other = EtcdStore.Connect(_server!.ClientUrl, "/elsewhere/");
        await other.PutAsync("node", "n1", "{}");
        await A.PutAsync("endpoint", "default/pod-a", "{}");
        Assert.Empty((await A.ListAsync("node")).Items);
        Assert.Equal("default/pod-a", (await A.ListAsync("endpoint")).Items.Single().Key);
    }
}
