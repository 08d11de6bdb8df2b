using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Loom.Kubernetes.Tests;

public sealed class ConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-k8s-sa-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static Func<string, string?> Env(string? host, string? port) => name => name switch
    {
        "KUBERNETES_SERVICE_HOST" => host,
        "KUBERNETES_SERVICE_PORT" => port,
        _ => null,
    };

    [Fact]
    public async Task In_cluster_config_reads_the_service_account_directory()
    {
        File.WriteAllText(Path.Combine(_dir, "token"), "sa-token\n");
        File.WriteAllText(Path.Combine(_dir, "namespace"), "loom-system");
        using (var key = RSA.Create(2048))
        {
            var req = new CertificateRequest("CN=kubernetes", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            using var ca = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            File.WriteAllText(Path.Combine(_dir, "ca.crt"), ca.ExportCertificatePem());
        }

        var config = ApiConnection.InCluster(new KubernetesOptions { ServiceAccountDir = _dir, Environment = Env("10.96.0.1", "443") });
        Assert.Equal("https://10.96.0.1/", config.Host);
        Assert.Equal("loom-system", config.Namespace);
        Assert.Equal("CN=kubernetes", Assert.Single(config.SslCaCerts).Subject);
        var header = await config.TokenProvider.GetAuthenticationHeaderAsync(CancellationToken.None);
        Assert.Equal("Bearer sa-token", header.ToString());
    }

    [Fact]
    public void Outside_a_pod_the_error_says_to_set_a_kubeconfig()
    {
        var e = Assert.Throws<KubernetesConfigException>(() => ApiConnection.Open(new KubernetesOptions { ServiceAccountDir = _dir, Environment = Env(null, null) }));
        Assert.Contains("KUBERNETES_SERVICE_HOST", e.Message, StringComparison.Ordinal);
        Assert.Contains("kubeconfig", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_token_is_named()
    {
        var e = Assert.Throws<KubernetesConfigException>(() => ApiConnection.Open(new KubernetesOptions { ServiceAccountDir = _dir, Environment = Env("10.96.0.1", "443") }));
        Assert.Contains(Path.Combine(_dir, "token"), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_kubeconfig_gives_its_server_and_a_missing_one_is_named()
    {
        var path = Harness.WriteKubeconfig(_dir, new Uri("https://api.example.test:6443"));
        using var api = ApiConnection.Open(new KubernetesOptions { Kubeconfig = path });
        Assert.Equal("https://api.example.test:6443/", api.Server.ToString());

        var missing = Path.Combine(_dir, "nope");
        var e = Assert.Throws<KubernetesConfigException>(() => ApiConnection.Open(new KubernetesOptions { Kubeconfig = missing }));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_kubeconfig_is_a_config_error()
    {
        var path = Path.Combine(_dir, "bad");
        File.WriteAllText(path, "clusters: [unclosed");
        Assert.Throws<KubernetesConfigException>(() => ApiConnection.Open(new KubernetesOptions { Kubeconfig = path }));
    }
}
