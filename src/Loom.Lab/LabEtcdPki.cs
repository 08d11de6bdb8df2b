using System.Net;
using Loom.Store.Etcd;

namespace Loom.Lab;

/// <summary>
/// The etcd lab's certificates, in <c>{lab}/pki</c> (0700, keys 0600): a CA made at <c>lab up</c>, etcd's server
/// certificate for its listen address and 127.0.0.1, one client certificate per node's agent and one for the lab itself.
/// etcd requires a client certificate from that CA, so a pod that reaches 192.168.10.100:2379 gets nowhere.
/// </summary>
internal static class LabEtcdPki
{
    public static string Dir(LabState state) => Path.Combine(state.LabDir, "pki");

    public static string CaFile(LabState state) => Path.Combine(Dir(state), "ca.crt");

    public static string ServerCert(LabState state) => Path.Combine(Dir(state), "etcd-server.crt");

    public static string ServerKey(LabState state) => Path.Combine(Dir(state), "etcd-server.key");

    /// <summary>The client certificate of a node's agent, or of the lab itself (<c>lab</c>).</summary>
    public static EtcdTls Client(LabState state, string name) =>
        new(CaFile(state), Path.Combine(Dir(state), name + ".crt"), Path.Combine(Dir(state), name + ".key"));

    public static EtcdTls Lab(LabState state) => Client(state, "lab");

    public static void Create(LabState state, IPAddress listen)
    {
        var dir = Dir(state);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var ca = EtcdCertificateAuthority.Create($"loom-lab-etcd-ca ({state.Prefix})");
        ca.WriteCaCertificate(CaFile(state));
        ca.IssueServer("etcd", [listen, IPAddress.Loopback], ServerCert(state), ServerKey(state));
        foreach (var name in state.Nodes.Select(n => n.Name).Append("lab"))
        {
            var tls = Client(state, name);
            ca.IssueClient(name, tls.CertFile!, tls.KeyFile!);
        }
    }
}
