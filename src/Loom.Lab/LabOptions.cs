namespace Loom.Lab;

/// <summary>Which cluster store the lab's agents share.</summary>
public enum LabStoreKind
{
    /// <summary>One SQLite file in the lab directory, opened by every agent.</summary>
    Sqlite,

    /// <summary>Debian's etcd running inside k8s-ctr on 192.168.10.100:2379.</summary>
    Etcd,
}

/// <summary>How to build a lab. The defaults are the scenario's 3-node cluster.</summary>
public sealed record LabOptions
{
    public const string DefaultPrefix = "loomlab-";

    public const string DefaultLabDir = "/var/run/loom-lab";

    /// <summary>k8s-ctr plus k8s-w1..k8s-w(N-1).</summary>
    public int Nodes { get; init; } = 3;

    public LabStoreKind Store { get; init; } = LabStoreKind.Sqlite;

    /// <summary>The cluster file's networks and settings (<c>loom lab up --config</c>); null: today's Flannel-style cluster, <see cref="Loom.Core.Networks.ClusterFile.Default"/>.
    /// <see cref="ServiceBackend"/> overrides the file's.</summary>
    public Loom.Core.Networks.ClusterFile? Cluster { get; init; }

    /// <summary>The cluster's service backend (kube-proxy's iptables by default).</summary>
    public Loom.Core.Model.ServiceProxyMode ServiceBackend { get; init; } = Loom.Core.Model.ServiceProxyMode.Iptables;

    /// <summary>Prefix of every network namespace the lab creates; <c>up</c> and <c>down</c> sweep namespaces carrying it.</summary>
    public string Prefix { get; init; } = DefaultPrefix;

    /// <summary>State directory: state.json, the store, per-node agent config, CNI config, logs.</summary>
    public string LabDir { get; init; } = DefaultLabDir;

    /// <summary>The <c>loom</c> executable agents run as; null: the running CLI (or <c>loom</c> beside this assembly).</summary>
    public string? LoomPath { get; init; }

    /// <summary>Where loom-cni lives (CNI_PATH's first entry); null: the directory of <see cref="LoomPath"/>.</summary>
    public string? CniBinDir { get; init; }

    /// <summary>Start an agent per node and wait until every node is Ready. False builds the topology only.</summary>
    public bool StartAgents { get; init; } = true;

    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public string EtcdPath { get; init; } = "/usr/bin/etcd";

    /// <summary>Run the cluster DNS (a <c>coredns-*</c> pod in kube-system behind the kube-dns Service at 10.96.0.10) once the nodes are Ready.</summary>
    public bool ClusterDns { get; init; }
}
