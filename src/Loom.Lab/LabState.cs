using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Lab;

/// <summary>What a running lab is made of; saved as state.json in the lab directory.</summary>
public sealed record LabState
{
    public required string Prefix { get; init; }

    public required string LabDir { get; init; }

    /// <summary>"sqlite" or "etcd".</summary>
    public required string Store { get; init; }

    /// <summary>SQLite file, when <see cref="Store"/> is sqlite.</summary>
    public string? StorePath { get; init; }

    /// <summary>The cluster's service backend at lab up: iptables, nftables or ebpf.</summary>
    public Loom.Core.Model.ServiceProxyMode ServiceBackend { get; init; } = Loom.Core.Model.ServiceProxyMode.Iptables;

    /// <summary>etcd client URLs, when <see cref="Store"/> is etcd.</summary>
    public IReadOnlyList<string> StoreEndpoints { get; init; } = [];

    public int? EtcdPid { get; set; }

    /// <summary>etcd's start time (/proc/PID/stat field 22): lab down stops the pid only while it still names this process.</summary>
    public ulong? EtcdStartTime { get; set; }

    public required string UnderlayNetns { get; init; }

    public string LoomPath { get; init; } = "";

    /// <summary>CNI_PATH used when wiring pods.</summary>
    public string CniPath { get; init; } = "";

    public List<LabNode> Nodes { get; init; } = [];

    public List<LabPod> Pods { get; init; } = [];

    /// <summary>Deployments applied with <c>loom lab apply</c>; their pods are in <see cref="Pods"/> or <see cref="Pending"/>.</summary>
    public List<LabDeployment> Deployments { get; init; } = [];

    /// <summary>Pods the scheduler could not place yet.</summary>
    public List<LabPendingPod> Pending { get; init; } = [];

    /// <summary>Services applied (the Services themselves live in the store).</summary>
    public List<LabServiceRecord> Services { get; init; } = [];

    public DateTimeOffset Created { get; init; }

    public LabNode Node(string name) =>
        Nodes.Find(n => n.Name == name) ?? throw new LabException($"no node '{name}' in the lab (nodes: {string.Join(", ", Nodes.Select(n => n.Name))})");

    /// <summary>A pod of the default namespace.</summary>
    public LabPod? Pod(string name) => Pod("default", name);

    public LabPod? Pod(string @namespace, string name) => Pods.Find(p => p.Namespace == @namespace && p.Name == name);

    /// <summary>Whether a pod of that namespace and name waits to be scheduled.</summary>
    public bool IsPending(string @namespace, string name) => Pending.Any(p => p.Namespace == @namespace && p.Name == name);

    /// <summary>Every namespace of this lab: pods, nodes, underlay.</summary>
    public IEnumerable<string> Namespaces => Pods.Select(p => p.Netns).Concat(Nodes.Select(n => n.Netns)).Append(UnderlayNetns);

    public string NodeDir(string node) => Path.Combine(LabDir, "nodes", node);

    public string CniConfDir(string node) => Path.Combine(NodeDir(node), "net.d");

    public static string StateFile(string labDir) => Path.Combine(labDir, "state.json");

    public static LabState? Load(string labDir)
    {
        var file = StateFile(labDir);
        if (!File.Exists(file))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(file), LabJsonContext.Default.LabState);
        }
        catch (JsonException e)
        {
            throw new LabException($"{file}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The one way state.json changes: under the lab lock, <paramref name="change"/> gets the saved state (null before
    /// the lab's first) and returns the state to save. Returns what was saved.
    /// </summary>
    public static LabState Update(string labDir, Func<LabState?, LabState> change)
    {
        ArgumentException.ThrowIfNullOrEmpty(labDir);
        ArgumentNullException.ThrowIfNull(change);
        Directory.CreateDirectory(labDir);
        using (LabLock.Take(labDir))
        {
            var next = change(Load(labDir));
            next.Save(labDir);
            return next;
        }
    }

    /// <summary>Changes the saved lab through <see cref="Update"/>, then refreshes this copy from what was saved.</summary>
    internal void Change(Action<LabState> change)
    {
        var saved = Update(LabDir, current =>
        {
            var lab = current ?? throw new LabException($"no lab in {LabDir}");
            change(lab);
            return lab;
        });
        CopyFrom(saved);
    }

    /// <summary>Reloads the workloads from the state file (another command may have changed them).</summary>
    internal void Refresh() => CopyFrom(Load(LabDir) ?? throw new LabException($"no lab in {LabDir}"));

    private void CopyFrom(LabState current)
    {
        Pods.Clear();
        Pods.AddRange(current.Pods);
        Deployments.Clear();
        Deployments.AddRange(current.Deployments);
        Pending.Clear();
        Pending.AddRange(current.Pending);
        Services.Clear();
        Services.AddRange(current.Services);
        EtcdPid = current.EtcdPid;
        EtcdStartTime = current.EtcdStartTime;
        foreach (var node in Nodes)
        {
            if (current.Nodes.Find(n => n.Name == node.Name) is { } saved)
            {
                node.AgentPid = saved.AgentPid;
                node.AgentStartTime = saved.AgentStartTime;
            }
        }
    }

    private void Save(string labDir)
    {
        var file = StateFile(labDir);
        var tmp = file + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(this, LabJsonContext.Default.LabState));
        File.Move(tmp, file, overwrite: true);
    }
}

/// <summary>A node: its namespace, underlay address and agent.</summary>
public sealed record LabNode
{
    public required string Name { get; init; }

    public required string Netns { get; init; }

    /// <summary>eth1's address on 192.168.10.0/24.</summary>
    public required string Ip { get; init; }

    public int? AgentPid { get; set; }

    /// <summary>The agent's start time (/proc/PID/stat field 22), so a reused pid is never taken for it.</summary>
    public ulong? AgentStartTime { get; set; }
}

/// <summary>A pod: a namespace wired by the node's CNI config.</summary>
public sealed record LabPod
{
    public required string Name { get; init; }

    public required string Node { get; init; }

    public required string Netns { get; init; }

    public required string ContainerId { get; init; }

    /// <summary>eth0's address (CIDR notation) as the CNI result reported it.</summary>
    public string? Ip { get; init; }

    /// <summary><see cref="Ip"/> without its prefix length; null if there is none.</summary>
    [JsonIgnore]
    public System.Net.IPAddress? Address => Ip is { } ip && System.Net.IPAddress.TryParse(ip.Split('/')[0], out var a) ? a : null;

    /// <summary>The conflist the pod was wired with (DEL uses the same one).</summary>
    public string? ConfList { get; init; }

    public string Namespace { get; init; } = "default";

    public Dictionary<string, string> Labels { get; init; } = new(StringComparer.Ordinal);

    /// <summary>What the pod runs; null for a bare namespace (<c>loom lab pod add</c>).</summary>
    public LabPodSpec? Spec { get; init; }

    /// <summary>The Deployment that owns it, if any.</summary>
    public string? Owner { get; init; }

    /// <summary>The workload process (whoami, DNS); null for idle pods.</summary>
    public int? WorkloadPid { get; set; }

    /// <summary>The workload's start time (/proc/PID/stat field 22), so a reused pid is never taken for it.</summary>
    public ulong? WorkloadStartTime { get; set; }

    /// <summary>Every container's process (idle containers have none); the first is <see cref="WorkloadPid"/>.</summary>
    public List<LabContainerProcess> Processes { get; init; } = [];

    public DateTimeOffset Created { get; init; }
}

/// <summary>A container's process, with its start time so a reused pid is never taken for it.</summary>
public sealed record LabContainerProcess(string Container, int Pid, ulong? StartTime);

public sealed class LabException : Exception
{
    public LabException()
    {
    }

    public LabException(string message)
        : base(message)
    {
    }

    public LabException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LabState))]
[JsonSerializable(typeof(LabPodSpec))]
internal sealed partial class LabJsonContext : JsonSerializerContext;
