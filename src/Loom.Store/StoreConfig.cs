namespace Loom.Store;

/// <summary>Which cluster store the agent uses.</summary>
public sealed record StoreConfig
{
    /// <summary><c>sqlite</c> (one machine, the lab) or <c>etcd</c> (many hosts).</summary>
    public string Type { get; set; } = "sqlite";

    /// <summary>SQLite database file shared by every agent on the machine.</summary>
    public string Path { get; set; } = "/var/lib/loom/state.db";

    /// <summary>etcd client URLs, e.g. https://192.168.10.100:2379.</summary>
    public IReadOnlyList<string> Endpoints { get; set; } = [];

    /// <summary>Client certificate for an etcd that requires one (<c>--client-cert-auth</c>); needs https endpoints.</summary>
    public StoreTlsConfig? Tls { get; set; }

    /// <summary>
    /// SQLite: how many revisions of change history the file keeps (etcd's <c>--auto-compaction-retention</c> in
    /// revision mode); a watcher further behind re-lists. 0 keeps all of it. etcd compacts by its own flags.
    /// </summary>
    public long KeepRevisions { get; set; } = Sqlite.SqliteStoreOptions.DefaultKeepRevisions;
}

/// <summary>
/// <c>store.tls</c>: PEM files for mutual TLS to etcd, e.g.
/// <c>{"ca": "/etc/loom/etcd/ca.crt", "cert": "/etc/loom/etcd/node.crt", "key": "/etc/loom/etcd/node.key"}</c>.
/// Only <see cref="Ca"/> is trusted for etcd's server certificate, not the machine's CA store.
/// </summary>
public sealed record StoreTlsConfig
{
    /// <summary>CA certificate(s) that signed etcd's server certificate (etcd's <c>--trusted-ca-file</c> CA, as kubeadm makes one).</summary>
    public string Ca { get; set; } = "";

    /// <summary>This node's client certificate, signed by the CA etcd trusts; null with <see cref="Key"/>: present none.</summary>
    public string? Cert { get; set; }

    /// <summary>Its private key; keep it 0600.</summary>
    public string? Key { get; set; }
}
