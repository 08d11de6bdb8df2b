using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Loom.Store.Etcd;

/// <summary>
/// Mutual TLS to etcd (<c>--client-cert-auth</c>): the client certificate and key we present, and the CA that
/// signed the server's certificate. Only that CA is trusted, not the machine's store: a cluster's etcd CA is private.
/// </summary>
/// <param name="CaFile">PEM file with the CA certificate(s) that sign etcd's server certificate.</param>
/// <param name="CertFile">PEM file with our client certificate; null: present none (an etcd without client-cert-auth).</param>
/// <param name="KeyFile">PEM file with its private key (PKCS#8 or SEC1); set exactly when <paramref name="CertFile"/> is.</param>
public sealed record EtcdTls(string CaFile, string? CertFile, string? KeyFile)
{
    /// <summary>Loads the files now, so a missing or unreadable one is reported at startup rather than on the first call.</summary>
    /// <exception cref="EtcdTlsException">A file is missing, unreadable or not what it should be.</exception>
    public SslClientAuthenticationOptions ClientOptions()
    {
        if (CertFile is null != KeyFile is null)
        {
            throw new EtcdTlsException("tls: cert and key go together; set both or neither");
        }

        Exists(CaFile, "ca");
        var roots = new X509Certificate2Collection();
        Load(CaFile, "ca", () => roots.ImportFromPemFile(CaFile));
        if (roots.Count == 0)
        {
            throw new EtcdTlsException($"tls ca {CaFile}: no PEM certificate in it");
        }

        SslStreamCertificateContext? client = null;
        if (CertFile is not null && KeyFile is not null)
        {
            Exists(CertFile, "cert");
            Exists(KeyFile, "key");
            Load($"{CertFile} with {KeyFile}", "cert", () => client = SslStreamCertificateContext.Create(
                X509Certificate2.CreateFromPemFile(CertFile, KeyFile), additionalCertificates: null, offline: true));
        }

        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(roots);
        return new SslClientAuthenticationOptions
        {
            ClientCertificateContext = client,
            CertificateChainPolicy = policy,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        };
    }

    private static void Exists(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new EtcdTlsException($"tls {what} {path}: no such file");
        }
    }

    private static void Load(string path, string what, Action load)
    {
        try
        {
            load();
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new EtcdTlsException($"tls {what} {path}: {e.Message}", e);
        }
    }
}

public sealed class EtcdTlsException : Exception
{
    public EtcdTlsException()
    {
    }

    public EtcdTlsException(string message)
        : base(message)
    {
    }

    public EtcdTlsException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
