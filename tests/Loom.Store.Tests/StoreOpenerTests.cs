using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Store.Tests;

/// <summary>The one way the agent, the CLI and the lab open the cluster store.</summary>
public sealed class StoreOpenerTests
{
    [Fact]
    public async Task Sqlite_creates_the_directory_and_opens_a_working_store()
    {
        var dir = Directory.CreateTempSubdirectory("loom-opener-").FullName;
        try
        {
            var path = Path.Combine(dir, "a", "b", "state.db");
            var store = await StoreOpener.OpenAsync(new StoreConfig { Type = "sqlite", Path = path });
            await using (store)
            {
                Assert.True((await store.PutAsync(Kinds.ClusterConfig, new ClusterConfig())).Succeeded);
                Assert.Single((await store.ListAsync(Kinds.ClusterConfig)).Items);
            }

            Assert.True(File.Exists(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("consul", new string[0], null, "store.type: \"consul\" is not a store; use sqlite or etcd")]
    [InlineData("etcd", new string[0], null, "store.endpoints: etcd needs at least one endpoint")]
    [InlineData("etcd", new[] { "https://127.0.0.1:2379" }, "", "store.tls.ca: the CA file that signed etcd's server certificate is required")]
    [InlineData("etcd", new[] { "ftp://127.0.0.1:2379" }, null, "store: etcd endpoint ftp://127.0.0.1:2379/: use http:// or https://")]
    [InlineData("etcd", new[] { "http://127.0.0.1:2379" }, "/nonexistent/ca.crt", "store: ")]
    public async Task A_bad_store_section_is_refused_naming_the_field(string type, string[] endpoints, string? ca, string expected)
    {
        var config = new StoreConfig { Type = type, Endpoints = endpoints, Tls = ca is null ? null : new StoreTlsConfig { Ca = ca } };
        var e = await Assert.ThrowsAsync<StoreConfigException>(() => StoreOpener.OpenAsync(config));
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }
}
