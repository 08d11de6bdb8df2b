using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Loom.Store.Etcd;

/// <summary>
/// A small private CA for one etcd (what kubeadm makes for its etcd): a server certificate for etcd's listen
/// addresses and a client certificate per agent. ECDSA P-256; keys are written 0600 from the moment they exist.
/// The CA's own key stays in memory: nothing can issue more certificates once the lab is set up.
/// </summary>
public sealed class EtcdCertificateAuthority : IDisposable
{
    private static readonly TimeSpan Validity = TimeSpan.FromDays(365);

    private readonly X509Certificate2 _ca;
    private readonly ECDsa _key;

    private EtcdCertificateAuthority(X509Certificate2 ca, ECDsa key)
    {
        _ca = ca;
        _key = key;
    }

    public static EtcdCertificateAuthority Create(string commonName)
    {
        ArgumentException.ThrowIfNullOrEmpty(commonName);
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={commonName}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return new EtcdCertificateAuthority(request.CreateSelfSigned(now.AddMinutes(-5), now + Validity), key);
    }

    /// <summary>Writes the CA certificate (public: every client needs it to check etcd).</summary>
    public void WriteCaCertificate(string path) => WritePem(path, _ca.ExportCertificatePem(), secret: false);

    /// <summary>
    /// etcd's serving certificate for these addresses. It also carries clientAuth: etcd 3.4's JSON gateway dials
    /// etcd's own gRPC port with it, and that port checks client certificates too.
    /// </summary>
    public void IssueServer(string name, IReadOnlyCollection<IPAddress> addresses, string certPath, string keyPath)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        if (addresses.Count == 0)
        {
            throw new ArgumentException("a server certificate needs at least one address", nameof(addresses));
        }

        var san = new SubjectAlternativeNameBuilder();
        foreach (var a in addresses)
        {
            san.AddIpAddress(a);
        }

        Issue(name, san.Build(), ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], certPath, keyPath);
    }

    /// <summary>A client certificate (clientAuth only) whose CN names the client, e.g. the node.</summary>
    public void IssueClient(string name, string certPath, string keyPath) => Issue(name, null, ["1.3.6.1.5.5.7.3.2"], certPath, keyPath);

    public void Dispose()
    {
        _ca.Dispose();
        _key.Dispose();
    }

    private void Issue(string name, X509Extension? san, string[] usages, string certPath, string keyPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var oids = new OidCollection();
        foreach (var oid in usages)
        {
            oids.Add(new Oid(oid));
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        if (san is not null)
        {
            request.CertificateExtensions.Add(san);
        }

        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f; // a positive serial number
        using var cert = request.Create(_ca.SubjectName, X509SignatureGenerator.CreateForECDsa(_key), now.AddMinutes(-5), now + Validity, serial);
        WritePem(keyPath, key.ExportPkcs8PrivateKeyPem(), secret: true);
        WritePem(certPath, cert.ExportCertificatePem(), secret: false);
    }

    private static void WritePem(string path, string pem, bool secret)
    {
        // Replace rather than reuse: an existing file would keep its old mode.
        File.Delete(path);
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = secret
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
        };
        using var file = new StreamWriter(path, options);
        file.Write(pem);
        file.Write('\n');
    }
}
