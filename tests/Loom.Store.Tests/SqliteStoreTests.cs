using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Store.Tests;

/// <summary>Two store instances on one file, as two node agents on one machine would have.</summary>
public sealed class SqliteStoreTests : StoreContractTests
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-store-").FullName;

    private string DbPath => Path.Combine(_dir, "state.db");

    protected override Task<IStore> OpenAsync() => SqliteStore.OpenAsync(DbPath, new SqliteStoreOptions { PollInterval = TimeSpan.FromMilliseconds(20) });

    protected override Task CleanupAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task State_survives_reopening_the_file()
    {
        var put = await A.PutAsync("node", "n1", "{}");
        await using var reopened = await OpenAsync();
        Assert.Equal(put.Revision, (await reopened.GetAsync("node", "n1"))!.ModRevision);
        Assert.Equal(put.Revision, await reopened.GetRevisionAsync());
    }
}
