using Grpc.Core;
using Loom.Core.Store;
using Loom.Store.Etcd;

namespace Loom.Store.Tests;

/// <summary>The store contract over mutual TLS, against an etcd started with <c>--client-cert-auth</c>.</summary>
public sealed class EtcdTlsStoreTests : StoreContractTests
{
    private EtcdServer? _server;

    protected override TimeSpan ShortLease => TimeSpan.FromSeconds(1);

    protected override async Task<IStore> OpenAsync()
    {
        _server ??= await EtcdServer.StartAsync(tls: true);
        return EtcdStore.Connect(_server.ClientUrl, tls: _server.ClientTls);
    }

    protected override async Task CleanupAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

/// <summary>Who etcd refuses, and who the client refuses, when etcd requires client certificates.</summary>
public sealed class EtcdTlsTests : IAsyncLifetime
{
    private EtcdServer? _server;

    private EtcdServer Server => _server ?? throw new InvalidOperationException("not initialized");

    public async Task InitializeAsync() => _server = await EtcdServer.StartAsync(tls: true);

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_client_without_a_certificate_is_refused_with_the_reason()
    {
        // Trusts etcd's CA (so the failure is etcd refusing us, not us refusing etcd) but presents no certificate.
        await using var store = EtcdStore.Connect(Server.ClientUrl, tls: Server.ClientTls! with { CertFile = null, KeyFile = null });
        var e = await Assert.ThrowsAsync<RpcException>(() => store.PutAsync("node", "n1", "{}"));
        Assert.Contains("refused a connection without a client certificate", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("bad certificate", e.Status.Detail, StringComparison.Ordinal);
        await AssertAbsentAsync("n1");
    }

    [Fact]
    public async Task A_client_certificate_from_another_CA_is_refused_with_the_reason()
    {
        using var other = EtcdCertificateAuthority.Create("not-etcds-ca");
        var cert = Path.Combine(Server.Dir, "stranger.crt");
        var key = Path.Combine(Server.Dir, "stranger.key");
        other.IssueClient("stranger", cert, key);
        await using var store = EtcdStore.Connect(Server.ClientUrl, tls: Server.ClientTls! with { CertFile = cert, KeyFile = key });
        var e = await Assert.ThrowsAsync<RpcException>(() => store.PutAsync("node", "n2", "{}"));
        Assert.Contains("refused our client certificate (CN=stranger, issued by CN=not-etcds-ca)", e.Status.Detail, StringComparison.Ordinal);
        await AssertAbsentAsync("n2");
    }

    [Fact]
    public async Task A_server_certificate_from_another_CA_is_not_trusted()
    {
        // Our client certificate is good, but we were given the wrong CA: etcd's server certificate must be refused.
        using var other = EtcdCertificateAuthority.Create("not-etcds-ca");
        var ca = Path.Combine(Server.Dir, "other-ca.crt");
        other.WriteCaCertificate(ca);
        await using var store = EtcdStore.Connect(Server.ClientUrl, tls: Server.ClientTls! with { CaFile = ca });
        var e = await Assert.ThrowsAsync<RpcException>(() => store.GetRevisionAsync());
        Assert.Contains("TLS handshake failed", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("store.tls.ca", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_right_certificate_is_accepted_and_keys_are_written_0600()
    {
        await using var store = EtcdStore.Connect(Server.ClientUrl, tls: Server.ClientTls);
        Assert.True((await store.PutAsync("node", "n3", "{}")).Succeeded);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Server.ClientTls!.KeyFile!));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(Server.Dir, "server.key")));
    }

    [Fact]
    public void Bad_settings_are_refused_before_connecting()
    {
        var tls = Server.ClientTls!;
        var http = new UriBuilder(Server.ClientUrl) { Scheme = "http" }.Uri;
        Assert.Contains("need an https:// endpoint", Assert.Throws<ArgumentException>(() => EtcdStore.Connect(http, tls: tls)).Message,
            StringComparison.Ordinal);
        var missing = Path.Combine(Server.Dir, "missing.key");
        Assert.Equal($"tls key {missing}: no such file",
            Assert.Throws<EtcdTlsException>(() => EtcdStore.Connect(Server.ClientUrl, tls: tls with { KeyFile = missing })).Message);
        Assert.Contains("cert and key go together",
            Assert.Throws<EtcdTlsException>(() => EtcdStore.Connect(Server.ClientUrl, tls: tls with { KeyFile = null })).Message,
            StringComparison.Ordinal);
        Assert.StartsWith($"tls ca {tls.KeyFile}: no PEM certificate",
            Assert.Throws<EtcdTlsException>(() => EtcdStore.Connect(Server.ClientUrl, tls: tls with { CaFile = tls.KeyFile! })).Message,
            StringComparison.Ordinal);
    }

    private async Task AssertAbsentAsync(string node)
    {
        await using var good = EtcdStore.Connect(Server.ClientUrl, tls: Server.ClientTls);
        Assert.Null(await good.GetAsync("node", node));
    }
}
