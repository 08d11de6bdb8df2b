using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Services;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store;

namespace Loom.Lab;

/// <summary>
/// The lab as a small Kubernetes: <c>apply</c>/<c>delete</c> of Pods, Deployments and Services, a scheduler, the
/// workloads (whoami, cluster DNS, idle pods), cordon/uncordon/drain. There is no controller process: whatever would
/// reconcile in Kubernetes (a Deployment's replicas, Pending pods) is reconciled by each command that changes state.
/// </summary>
public static partial class Lab
{
    public const string EtcNetns = "/etc/netns";
    public const string ClusterDomain = "cluster.local";
    public const string PodTemplateHashLabel = "pod-template-hash";

    public static Taint ControlPlaneTaint { get; } = new("node-role.kubernetes.io/control-plane", null, TaintEffect.NoSchedule);

    /// <summary>kubeadm's cluster DNS, with Loom's DNS server as the image: a Deployment in kube-system behind kube-dns at 10.96.0.10.</summary>
    public const string ClusterDnsManifest = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: coredns
          namespace: kube-system
          labels:
            k8s-app: kube-dns
        spec:
          replicas: 1
          selector:
            matchLabels:
              k8s-app: kube-dns
          template:
            metadata:
              labels:
                k8s-app: kube-dns
            spec:
              tolerations:
              - key: node-role.kubernetes.io/control-plane
                effect: NoSchedule
              containers:
              - name: coredns
                image: loom/dns
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: kube-dns
          namespace: kube-system
          labels:
            k8s-app: kube-dns
        spec:
          clusterIP: 10.96.0.10
          selector:
            k8s-app: kube-dns
          ports:
          - name: dns
            protocol: UDP
            port: 53
            targetPort: 53
          - name: dns-tcp
            protocol: TCP
            port: 53
            targetPort: 53
        """;

    /// <summary>The workload's stdout/stderr (what <c>loom lab logs</c> shows).</summary>
    public static string PodLogFile(LabState state, string pod)
    {
        ArgumentNullException.ThrowIfNull(state);
        return Path.Combine(state.LabDir, "pods", pod + ".log");
    }

    /// <summary>The store the lab's agents share (SQLite labs; an etcd lab's store is only reachable inside k8s-ctr).</summary>
    public static async Task<IStore> OpenStoreAsync(LabState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Store != "sqlite" || state.StorePath is null)
        {
            throw new LabException("this command needs a lab with the SQLite store (`loom lab up --store sqlite`, the default); etcd labs are not supported by it yet");
        }

        return await StoreOpener.OpenAsync(new StoreConfig { Type = "sqlite", Path = state.StorePath }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads a manifest file, or standard input for "-".</summary>
    public static string ReadManifest(string file)
    {
        ArgumentException.ThrowIfNullOrEmpty(file);
        return file == "-" ? Console.In.ReadToEnd() : File.Exists(file) ? File.ReadAllText(file) : throw new LabException($"{file}: no such file");
    }

    /// <summary>
    /// <c>kubectl apply</c>: validates every document first (an error anywhere applies nothing), then creates or updates
    /// each object in file order and reconciles. Writes kubectl-style lines ("service/webpod created") and warnings.
    /// </summary>
    public static async Task ApplyAsync(LabState state, string yaml, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        var set = Manifests.Parse(yaml);
        var store = await OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            var (services, _) = await store.ListAsync(Kinds.Service, cancellationToken).ConfigureAwait(false);
            var errors = set.Errors.ToList();
            // ClusterIPs: a requested one must be free (or already this Service's), and a Service keeps the one it has.
            foreach (var s in set.Objects.OfType<ServiceManifest>())
            {
                var existing = services.FirstOrDefault(x => x.Value.Namespace == s.Namespace && x.Value.Name == s.Name)?.Value;
                if (s.ClusterIp is { } ip)
                {
                    if (existing is not null && !existing.ClusterIp.Equals(ip))
                    {
                        errors.Add($"Service/{s.Name}: spec.clusterIP: Invalid value: \"{ip}\": field is immutable (it is {existing.ClusterIp})");
                    }
                    else if (existing is null && services.FirstOrDefault(x => x.Value.ClusterIp.Equals(ip)) is { } owner)
                    {
                        errors.Add($"Service/{s.Name}: spec.clusterIP: Invalid value: \"{ip}\": provided IP is already allocated (to {owner.Key})");
                    }
                }
            }

            foreach (var p in set.Objects.OfType<PodManifest>())
            {
                if (state.Pod(p.Name) is { } pod && pod.Namespace != p.Namespace)
                {
                    errors.Add($"Pod/{p.Name}: metadata.name: the lab's pod names are cluster-wide and {pod.Namespace}/{p.Name} exists");
                }
            }

            foreach (var w in set.Warnings)
            {
                await output.WriteLineAsync($"Warning: {w}").ConfigureAwait(false);
            }

            if (errors.Count > 0)
            {
                throw new LabException($"nothing applied: {errors.Count} error(s):\n  " + string.Join("\n  ", errors));
            }

            foreach (var o in set.Objects)
            {
                switch (o)
                {
                    case ServiceManifest s:
                        await output.WriteLineAsync($"{o.Display} {await ApplyServiceAsync(state, store, s, cancellationToken).ConfigureAwait(false)}").ConfigureAwait(false);
                        break;
                    case DeploymentManifest d:
                        await output.WriteLineAsync($"{o.Display} {ApplyDeployment(state, d)}").ConfigureAwait(false);
                        break;
                    case PodManifest p:
                        if (state.Pod(p.Name) is not null || state.Pending.Any(x => x.Name == p.Name))
                        {
                            await output.WriteLineAsync($"{o.Display} unchanged").ConfigureAwait(false);
                        }
                        else
                        {
                            await CreatePodAsync(state, p.Namespace, p.Name, p.Spec, null, output, cancellationToken).ConfigureAwait(false);
                            await output.WriteLineAsync($"{o.Display} created").ConfigureAwait(false);
                        }

                        break;
                }
            }
        }

        await ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>kubectl delete -f</c>: deletes the named objects (a Deployment with its pods); missing ones are reported, not errors.</summary>
    public static async Task DeleteAsync(LabState state, string yaml, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        var set = Manifests.Parse(yaml);
        if (set.Errors.Count > 0)
        {
            throw new LabException($"nothing deleted: {set.Errors.Count} error(s):\n  " + string.Join("\n  ", set.Errors));
        }

        var store = await OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            foreach (var o in set.Objects)
            {
                var found = false;
                switch (o)
                {
                    case ServiceManifest s:
                        found = await store.DeleteAsync(Kinds.Service, ObjectKey.Of(s.Namespace, s.Name), cancellationToken: cancellationToken).ConfigureAwait(false);
                        Update(state, c => c.Services.RemoveAll(x => x.Namespace == s.Namespace && x.Name == s.Name));
                        break;
                    case DeploymentManifest d:
                        found = state.Deployments.Any(x => x.Namespace == d.Namespace && x.Name == d.Name);
                        Update(state, c =>
                        {
                            c.Deployments.RemoveAll(x => x.Namespace == d.Namespace && x.Name == d.Name);
                            c.Pending.RemoveAll(x => x.Namespace == d.Namespace && x.Owner == d.Name);
                        });
                        foreach (var pod in state.Pods.Where(p => p.Namespace == d.Namespace && p.Owner == d.Name).ToList())
                        {
                            DeletePod(state, pod.Name);
                        }

                        break;
                    case PodManifest p:
                        if (state.Pod(p.Name) is { } bare && bare.Namespace == p.Namespace)
                        {
                            found = true;
                            DeletePod(state, p.Name);
                        }

                        found |= state.Pending.Any(x => x.Name == p.Name);
                        Update(state, c => c.Pending.RemoveAll(x => x.Name == p.Name && x.Namespace == p.Namespace));
                        break;
                }

                await output.WriteLineAsync(found ? $"{o.Display} deleted" : $"Error from server (NotFound): {o.Kind.ToLowerInvariant()}s \"{o.Name}\" not found").ConfigureAwait(false);
            }
        }

        await ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>What controllers would do: places Pending pods that now fit, brings each Deployment to its replicas and template.</summary>
    public static async Task ReconcileAsync(LabState state, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        Refresh(state);
        foreach (var pending in state.Pending.ToList())
        {
            var (nodes, pods) = await SchedulerViewAsync(state, cancellationToken).ConfigureAwait(false);
            var result = Scheduler.Schedule(pending.Namespace, pending.Spec, nodes, pods);
            if (result.Scheduled)
            {
                Update(state, c => c.Pending.RemoveAll(x => x.Name == pending.Name));
                await CreatePodAsync(state, pending.Namespace, pending.Name, pending.Spec, pending.Owner, output, cancellationToken).ConfigureAwait(false);
            }
            else if (result.Reason != pending.Reason)
            {
                Update(state, c =>
                {
                    var i = c.Pending.FindIndex(x => x.Name == pending.Name);
                    if (i >= 0)
                    {
                        c.Pending[i] = c.Pending[i] with { Reason = result.Reason! };
                    }
                });
            }
        }

        foreach (var d in state.Deployments.ToList())
        {
            // Pods of an older template go (the Recreate strategy), then the count is brought to the replicas.
            foreach (var old in state.Pods.Where(p => p.Namespace == d.Namespace && p.Owner == d.Name && p.Labels.GetValueOrDefault(PodTemplateHashLabel) != d.TemplateHash).ToList())
            {
                DeletePod(state, old.Name);
                await output.WriteLineAsync($"pod/{old.Name} deleted (template changed)").ConfigureAwait(false);
            }

            Update(state, c => c.Pending.RemoveAll(p => p.Namespace == d.Namespace && p.Owner == d.Name && p.Spec.Labels.GetValueOrDefault(PodTemplateHashLabel) != d.TemplateHash));
            var running = state.Pods.Where(p => p.Namespace == d.Namespace && p.Owner == d.Name).ToList();
            var pending = state.Pending.Where(p => p.Namespace == d.Namespace && p.Owner == d.Name).ToList();
            var have = running.Count + pending.Count;
            for (var i = have; i < d.Replicas; i++)
            {
                var name = $"{d.Name}-{d.TemplateHash}-{RandomSuffix()}";
                await CreatePodAsync(state, d.Namespace, name, d.Template, d.Name, output, cancellationToken).ConfigureAwait(false);
            }

            var extra = have - d.Replicas;
            foreach (var p in pending.Take(Math.Max(0, extra)))
            {
                Update(state, c => c.Pending.RemoveAll(x => x.Name == p.Name));
                extra--;
            }

            foreach (var p in running.OrderByDescending(p => p.Created).Take(Math.Max(0, extra)))
            {
                DeletePod(state, p.Name);
            }
        }

        // Pods whose Deployment is gone.
        foreach (var orphan in state.Pods.Where(p => p.Owner is { } o && !state.Deployments.Any(d => d.Namespace == p.Namespace && d.Name == o)).ToList())
        {
            DeletePod(state, orphan.Name);
        }
    }

    /// <summary>Sets or clears a node's Unschedulable (kubectl cordon / uncordon); uncordon reconciles Pending pods.</summary>
    public static async Task CordonAsync(LabState state, string node, bool cordon, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        _ = state.Node(node);
        var changed = await UpdateNodeAsync(state, node, n => n.Unschedulable == cordon ? n : n with { Unschedulable = cordon }, cancellationToken).ConfigureAwait(false);
        await output.WriteLineAsync($"node/{node} {(changed ? cordon ? "cordoned" : "uncordoned" : "already " + (cordon ? "cordoned" : "uncordoned"))}").ConfigureAwait(false);
        if (!cordon)
        {
            await ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// kubectl drain: cordons the node and evicts its pods; a Deployment's pods are recreated by the scheduler elsewhere
    /// (or stay Pending, with the reason). Pods no controller owns are refused unless <paramref name="force"/>.
    /// </summary>
    public static async Task DrainAsync(LabState state, string node, bool force, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        Refresh(state);
        var pods = state.Pods.Where(p => p.Node == node).ToList();
        var bare = pods.Where(p => p.Owner is null).ToList();
        if (bare.Count > 0 && !force)
        {
            await CordonAsync(state, node, true, output, cancellationToken).ConfigureAwait(false);
            throw new LabException($"cannot delete Pods that declare no controller (use --force to override): {string.Join(", ", bare.Select(p => p.Namespace + "/" + p.Name))}");
        }

        await CordonAsync(state, node, true, output, cancellationToken).ConfigureAwait(false);
        foreach (var p in pods)
        {
            await output.WriteLineAsync($"evicting pod {p.Namespace}/{p.Name}").ConfigureAwait(false);
            DeletePod(state, p.Name);
            await output.WriteLineAsync($"pod/{p.Name} evicted").ConfigureAwait(false);
        }

        await output.WriteLineAsync($"node/{node} drained").ConfigureAwait(false);
        await ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Schedules and creates one pod (or records it Pending with the reason, which is also written as a warning).</summary>
    private static async Task CreatePodAsync(LabState state, string ns, string name, LabPodSpec spec, string? owner, TextWriter output, CancellationToken cancellationToken)
    {
        var (nodes, pods) = await SchedulerViewAsync(state, cancellationToken).ConfigureAwait(false);
        var placed = Scheduler.Schedule(ns, spec, nodes, pods);
        if (!placed.Scheduled)
        {
            Update(state, c =>
            {
                c.Pending.RemoveAll(x => x.Name == name);
                c.Pending.Add(new LabPendingPod { Namespace = ns, Name = name, Owner = owner, Spec = spec, Reason = placed.Reason!, Created = DateTimeOffset.UtcNow });
            });
            await output.WriteLineAsync($"Warning  FailedScheduling  pod/{name}  {placed.Reason}").ConfigureAwait(false);
            return;
        }

        var pod = AddPod(state, name, placed.Node!, ns, spec.Labels, spec, owner);
        try
        {
            var pid = await StartWorkloadAsync(state, pod, cancellationToken).ConfigureAwait(false);
            if (pid is not null)
            {
                Update(state, c =>
                {
                    var i = c.Pods.FindIndex(p => p.Name == name);
                    if (i >= 0)
                    {
                        c.Pods[i].WorkloadPid = pid;
                        c.Pods[i].WorkloadStartTime = LabProcesses.StartTime(pid.Value);
                    }
                });
            }
        }
        catch
        {
            DeletePod(state, name);
            throw;
        }

        await output.WriteLineAsync($"pod/{name} scheduled to {placed.Node}: {pod.Ip}").ConfigureAwait(false);
    }

    /// <summary>Starts what the image runs inside the pod's namespace and waits until it listens; null for idle (sleep) pods.</summary>
    private static async Task<int?> StartWorkloadAsync(LabState state, LabPod pod, CancellationToken cancellationToken)
    {
        var spec = pod.Spec ?? new LabPodSpec();
        var log = PodLogFile(state, pod.Name);
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        File.WriteAllText(log, "");
        int pid, port;
        switch (LabImages.Classify(spec.Image, spec.Command, spec.Args))
        {
            case LabImages.Kind.Sleep:
                return null;
            case LabImages.Kind.Whoami:
                port = LabImages.WhoamiPort(spec.Args);
                pid = LabProcesses.StartDetached(pod.Netns, log, state.LoomPath,
                    ["whoami", "--port", port.ToString(CultureInfo.InvariantCulture), "--hostname", pod.Name], NodeCgroup(state, pod.Node));
                break;
            case LabImages.Kind.Dns:
                port = 53;
                pid = LabProcesses.StartDetached(pod.Netns, log, state.LoomPath,
                    ["dns", "--config", Path.Combine(state.NodeDir(pod.Node), "agent.json"), "--port", "53"], NodeCgroup(state, pod.Node));
                break;
            default:
                throw new LabException($"pod {pod.Name}: image \"{spec.Image}\" is not one the lab can run");
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await ListeningAsync(pod.Netns, port, cancellationToken).ConfigureAwait(false))
        {
            if (!LabProcesses.IsAlive(pid) || DateTime.UtcNow > deadline)
            {
                throw new LabException($"pod {pod.Name}: {spec.Image} {(LabProcesses.IsAlive(pid) ? "did not listen on port " + port.ToString(CultureInfo.InvariantCulture) + " in 30 s" : "exited")}; {log}:\n{LogTail(log)}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        return pid;
    }

    private static async Task<bool> ListeningAsync(string netns, int port, CancellationToken cancellationToken)
    {
        using var ns = NetNs.Open(netns);
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(1));
            await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static async Task<string> ApplyServiceAsync(LabState state, IStore store, ServiceManifest s, CancellationToken cancellationToken)
    {
        var allocator = new ClusterIpAllocator(ClusterIpAllocator.DefaultServiceCidr);
        while (true)
        {
            var (services, _) = await store.ListAsync(Kinds.Service, cancellationToken).ConfigureAwait(false);
            var existing = services.FirstOrDefault(x => x.Value.Namespace == s.Namespace && x.Value.Name == s.Name);
            var ip = existing?.Value.ClusterIp ?? allocator.Allocate(services.Select(x => x.Value.ClusterIp).ToHashSet(), s.ClusterIp);
            var svc = new Service
            {
                Namespace = s.Namespace,
                Name = s.Name,
                ClusterIp = ip,
                Ports = s.Ports,
                Selector = s.Selector,
                SessionAffinity = s.SessionAffinity,
                SessionAffinityTimeoutSeconds = s.SessionAffinityTimeoutSeconds,
            };
            if (existing is not null && JsonSerializer.Serialize(existing.Value, Kinds.Service.TypeInfo) == JsonSerializer.Serialize(svc, Kinds.Service.TypeInfo))
            {
                return "unchanged";
            }

            var put = await store.PutAsync(Kinds.Service, svc, expectedRevision: existing?.Revision ?? 0, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (put.Succeeded)
            {
                Update(state, c =>
                {
                    if (!c.Services.Any(x => x.Namespace == s.Namespace && x.Name == s.Name))
                    {
                        c.Services.Add(new LabServiceRecord(s.Namespace, s.Name, DateTimeOffset.UtcNow));
                    }
                });
                return existing is null ? "created" : "configured";
            }
        }
    }

    private static string ApplyDeployment(LabState state, DeploymentManifest d)
    {
        var hash = TemplateHash(d.Template);
        var template = d.Template with { Labels = new Dictionary<string, string>(d.Template.Labels, StringComparer.Ordinal) { [PodTemplateHashLabel] = hash } };
        var result = "created";
        Update(state, c =>
        {
            var i = c.Deployments.FindIndex(x => x.Namespace == d.Namespace && x.Name == d.Name);
            var dep = new LabDeployment
            {
                Namespace = d.Namespace, Name = d.Name, Replicas = d.Replicas, Selector = d.Selector, Template = template, TemplateHash = hash,
                Created = i >= 0 ? c.Deployments[i].Created : DateTimeOffset.UtcNow,
            };
            if (i < 0)
            {
                c.Deployments.Add(dep);
            }
            else
            {
                result = c.Deployments[i].TemplateHash == hash && c.Deployments[i].Replicas == d.Replicas ? "unchanged" : "configured";
                c.Deployments[i] = dep;
            }
        });
        return result;
    }

    /// <summary>Kubernetes' pod-template-hash: FNV-32a of the template, its decimal text mapped onto a vowel-free alphabet.</summary>
    internal static string TemplateHash(LabPodSpec template)
    {
        var hash = FnvHash(JsonSerializer.SerializeToUtf8Bytes(template, LabJsonContext.Default.LabPodSpec));
        return SafeEncode(hash.ToString(CultureInfo.InvariantCulture));
    }

    private const string Alphanums = "bcdfghjklmnpqrstvwxz2456789";

    private static uint FnvHash(ReadOnlySpan<byte> data)
    {
        var h = 2166136261u;
        foreach (var b in data)
        {
            h ^= b;
            h *= 16777619u;
        }

        return h;
    }

    private static string SafeEncode(string s) => new([.. s.Select(c => Alphanums[c % Alphanums.Length])]);

    private static string RandomSuffix() => RandomNumberGenerator.GetString(Alphanums, 5);

    /// <summary>Nodes (from the store: labels, taints, cordon, Ready) and running pods, for the scheduler.</summary>
    private static async Task<(List<SchedulerNode> Nodes, List<SchedulerPod> Pods)> SchedulerViewAsync(LabState state, CancellationToken cancellationToken)
    {
        var stored = await ReadNodesAsync(state, cancellationToken).ConfigureAwait(false);
        var nodes = state.Nodes.Select(n => stored.TryGetValue(n.Name, out var s)
            ? new SchedulerNode(n.Name, s.Labels, s.Taints, s.Unschedulable, s.Ready)
            : new SchedulerNode(n.Name, new Dictionary<string, string> { [Scheduler.HostnameLabel] = n.Name }, [], false, false)).ToList();
        var pods = state.Pods.Select(p => new SchedulerPod(p.Namespace, p.Name, p.Node, p.Labels, p.Spec?.AntiAffinity ?? [])).ToList();
        return (nodes, pods);
    }

    /// <summary>kubeadm's node labels (hostname, os, the control plane's role) and the control plane's NoSchedule taint.</summary>
    private static async Task LabelNodesAsync(LabState state, CancellationToken cancellationToken)
    {
        if (state.Store != "sqlite")
        {
            return;
        }

        for (var i = 0; i < state.Nodes.Count; i++)
        {
            var control = i == 0;
            await UpdateNodeAsync(state, state.Nodes[i].Name, n =>
            {
                var labels = new Dictionary<string, string>(n.Labels, StringComparer.Ordinal)
                {
                    [Scheduler.HostnameLabel] = n.Name,
                    ["kubernetes.io/os"] = "linux",
                };
                if (control)
                {
                    labels["node-role.kubernetes.io/control-plane"] = "";
                }

                var taints = control && !n.Taints.Any(t => t.Key == ControlPlaneTaint.Key) ? [.. n.Taints, ControlPlaneTaint] : n.Taints;
                return n with { Labels = labels, Taints = taints };
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Compare-and-swap update of a Node object (the agent keeps what others set on it). True if it changed.</summary>
    private static async Task<bool> UpdateNodeAsync(LabState state, string node, Func<Node, Node> change, CancellationToken cancellationToken)
    {
        var store = await OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            for (var attempt = 0; attempt < 50; attempt++)
            {
                var existing = await store.GetAsync(Kinds.Node, node, cancellationToken).ConfigureAwait(false)
                               ?? throw new LabException($"node {node} is not registered in the store (is its agent running?)");
                var updated = change(existing.Value);
                if (JsonSerializer.Serialize(updated, Kinds.Node.TypeInfo) == JsonSerializer.Serialize(existing.Value, Kinds.Node.TypeInfo))
                {
                    return false;
                }

                var put = await store.PutAsync(Kinds.Node, updated, expectedRevision: existing.Revision, cancellationToken: cancellationToken).ConfigureAwait(false);
                if (put.Succeeded)
                {
                    return true;
                }
            }
        }

        throw new LabException($"could not update node {node}: the store kept changing under it");
    }

    private static async Task DeployClusterDnsAsync(LabState state, Action<string> step, CancellationToken cancellationToken)
    {
        var output = new StringWriter();
        await ApplyAsync(state, ClusterDnsManifest, output, cancellationToken).ConfigureAwait(false);
        var dns = state.Pods.FirstOrDefault(p => p.Owner == "coredns");
        step(dns is null
            ? $"cluster DNS Pending: {state.Pending.FirstOrDefault(p => p.Owner == "coredns")?.Reason}"
            : $"cluster DNS: pod kube-system/{dns.Name} on {dns.Node} ({dns.Ip}) behind service kube-dns 10.96.0.10:53 (UDP, TCP)");
    }

    /// <summary>Loads the state file under the lab lock, applies <paramref name="change"/>, saves, and refreshes <paramref name="state"/>.</summary>
    private static void Update(LabState state, Action<LabState> change)
    {
        using (LabLock.Take(state.LabDir))
        {
            var current = LabState.Load(state.LabDir) ?? throw new LabException($"no lab in {state.LabDir}");
            change(current);
            current.Save();
            CopyInto(state, current);
        }
    }

    private static void Refresh(LabState state)
    {
        var current = LabState.Load(state.LabDir) ?? throw new LabException($"no lab in {state.LabDir}");
        CopyInto(state, current);
    }

    private static void CopyInto(LabState state, LabState current)
    {
        state.Pods.Clear();
        state.Pods.AddRange(current.Pods);
        state.Deployments.Clear();
        state.Deployments.AddRange(current.Deployments);
        state.Pending.Clear();
        state.Pending.AddRange(current.Pending);
        state.Services.Clear();
        state.Services.AddRange(current.Services);
    }

    /// <summary>kubelet's resolv.conf for a ClusterFirst pod, where <c>ip netns exec</c> binds it over /etc/resolv.conf.</summary>
    private static void WriteResolvConf(string netns, string @namespace)
    {
        var dir = Path.Combine(EtcNetns, netns);
        Directory.CreateDirectory(dir);
        var text = new StringBuilder()
            .Append("search ").Append(@namespace).Append(".svc.").Append(ClusterDomain).Append(" svc.").Append(ClusterDomain).Append(' ').Append(ClusterDomain).Append('\n')
            .Append("nameserver ").Append(new ClusterIpAllocator(ClusterIpAllocator.DefaultServiceCidr).DnsIp).Append('\n')
            .Append("options ndots:5\n")
            .ToString();
        File.WriteAllText(Path.Combine(dir, "resolv.conf"), text);
    }

    private static void RemoveResolvConf(string netns)
    {
        if (netns.Length == 0 || netns.Contains('/', StringComparison.Ordinal) || netns is "." or "..")
        {
            return;
        }

        var dir = Path.Combine(EtcNetns, netns);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
