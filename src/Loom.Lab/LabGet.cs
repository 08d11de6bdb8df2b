using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Store;

namespace Loom.Lab;

/// <summary><c>kubectl get nodes|pods|svc|endpoints</c> over the lab: the same columns, or a <c>List</c> of Kubernetes-shaped objects.</summary>
public static class LabGet
{
    public static readonly IReadOnlyList<string> Resources = ["nodes", "pods", "svc", "endpoints", "namespaces", "networkpolicies"];

    /// <summary>Canonical resource name for kubectl's aliases (no, node, po, pod, service, services, ep...).</summary>
    public static string? Resolve(string resource) => resource switch
    {
        "nodes" or "node" or "no" => "nodes",
        "pods" or "pod" or "po" => "pods",
        "svc" or "service" or "services" => "svc",
        "endpoints" or "ep" or "endpoint" => "endpoints",
        "namespaces" or "namespace" or "ns" => "namespaces",
        "networkpolicies" or "networkpolicy" or "netpol" => "networkpolicies",
        _ => null,
    };

    /// <param name="output">"" (table), "wide" or "json".</param>
    /// <param name="namespace">null: all namespaces (-A).</param>
    public static async Task<string> GetAsync(LabState state, string resource, string output, string? @namespace, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var kind = Resolve(resource) ?? throw new LabException($"the server doesn't have a resource type \"{resource}\" (the lab has {string.Join(", ", Resources)})");
        if (output is not ("" or "wide" or "json"))
        {
            throw new LabException($"unable to match a printer suitable for the output format \"{output}\", allowed formats are: json, wide");
        }

        var now = DateTimeOffset.UtcNow;
        var nodes = await Lab.ReadNodesAsync(state, cancellationToken).ConfigureAwait(false);
        List<Service> services = [];
        List<Endpoint> endpoints = [];
        if (kind is "svc" or "endpoints")
        {
            var store = await Lab.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                services = [.. (await store.ListAsync(Kinds.Service, cancellationToken).ConfigureAwait(false)).Items.Select(i => i.Value)];
                endpoints = [.. (await store.ListAsync(Kinds.Endpoint, cancellationToken).ConfigureAwait(false)).Items.Select(i => i.Value)];
            }

            services = [.. services.Where(s => @namespace is null || s.Namespace == @namespace).OrderBy(s => s.Namespace, StringComparer.Ordinal).ThenBy(s => s.Name, StringComparer.Ordinal)];
        }

        if (kind is "namespaces" or "networkpolicies")
        {
            return await PolicyObjectsAsync(state, kind, output, @namespace, cancellationToken).ConfigureAwait(false);
        }

        var all = @namespace is null;
        return (kind, output) switch
        {
            ("nodes", "json") => Json(w => state.Nodes.ForEach(n => NodeJson(w, state, n, nodes.GetValueOrDefault(n.Name)))),
            ("nodes", _) => Table(
                output == "wide" ? ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"] : ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
                state.Nodes.Select(n =>
                {
                    var s = nodes.GetValueOrDefault(n.Name);
                    string[] row = [n.Name, NodeStatus(s), Roles(s), Age(now - state.Created), Version];
                    return output == "wide" ? [.. row, n.Ip, "<none>", "Loom lab (network namespace)", Environment.OSVersion.Version.ToString(), "loom-lab"] : row;
                })),
            ("pods", "json") => Json(w =>
            {
                foreach (var p in Pods(state, @namespace))
                {
                    PodJson(w, state, p.Running, p.Pending);
                }
            }),
            ("pods", _) => Table(
                [.. all ? ["NAMESPACE"] : Array.Empty<string>(), "NAME", "READY", "STATUS", "RESTARTS", "AGE", .. output == "wide" ? ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"] : Array.Empty<string>()],
                Pods(state, @namespace).Select(p =>
                {
                    var running = p.Running;
                    var ns = running?.Namespace ?? p.Pending!.Namespace;
                    var name = running?.Name ?? p.Pending!.Name;
                    // A container is ready unless its process died (idle containers have none); a state from before
                    // containers were recorded has only the workload's pid.
                    var containers = (running?.Spec ?? p.Pending?.Spec)?.AllContainers.Count ?? 1;
                    var dead = running is null ? containers
                        : running.Processes.Count > 0 ? running.Processes.Count(w => !LabProcesses.IsRecordedAlive(w.Pid, w.StartTime))
                        : running.WorkloadPid is { } pid && !LabProcesses.IsAlive(pid) ? containers : 0;
                    var ready = running is not null && dead == 0;
                    var status = running is null ? "Pending" : ready ? "Running" : "Error";
                    var age = Age(now - (running?.Created ?? p.Pending!.Created));
                    var readyText = string.Create(CultureInfo.InvariantCulture, $"{containers - dead}/{containers}");
                    string[] row = [.. all ? [ns] : Array.Empty<string>(), name, readyText, status, "0", age];
                    return output == "wide" ? [.. row, running?.Ip?.Split('/')[0] ?? "<none>", running?.Node ?? "<none>", "<none>", "<none>"] : row;
                })),
            ("svc", "json") => Json(w => services.ForEach(s => ServiceJson(w, state, s))),
            ("svc", _) => Table(
                [.. all ? ["NAMESPACE"] : Array.Empty<string>(), "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", .. output == "wide" ? ["SELECTOR"] : Array.Empty<string>()],
                services.Select(s =>
                {
                    string[] row = [.. all ? [s.Namespace] : Array.Empty<string>(), s.Name, s.Type.ToString(), s.ClusterIp.ToString(), ExternalIp(s),
                        PortsText(s), ServiceAge(state, s, now)];
                    return output == "wide" ? [.. row, LabelSelector.ForService(s.Selector).ToString()] : row;
                })),
            ("endpoints", "json") => Json(w => services.ForEach(s => EndpointsJson(w, state, s, endpoints))),
            _ => Table(
                [.. all ? ["NAMESPACE"] : Array.Empty<string>(), "NAME", "ENDPOINTS", "AGE"],
                services.Select(s =>
                {
                    var addrs = Addresses(s, endpoints).SelectMany(ip => s.Ports.Select(p => string.Create(CultureInfo.InvariantCulture, $"{ip}:{p.TargetPort}"))).ToList();
                    var text = addrs.Count == 0 ? "<none>" : string.Join(",", addrs.Take(3)) + (addrs.Count > 3 ? string.Create(CultureInfo.InvariantCulture, $" + {addrs.Count - 3} more...") : "");
                    return (string[])[.. all ? [s.Namespace] : Array.Empty<string>(), s.Name, text, ServiceAge(state, s, now)];
                })),
        };
    }

    /// <summary>kubectl's PORT(S): <c>80/TCP</c>, with a node port <c>80:31234/TCP</c>, several joined by ",".</summary>
    public static string PortsText(Service service)
    {
        ArgumentNullException.ThrowIfNull(service);
        return string.Join(",", service.Ports.Select(p => p.NodePort != 0
            ? string.Create(CultureInfo.InvariantCulture, $"{p.Port}:{p.NodePort}/{Proto(p.Protocol)}")
            : string.Create(CultureInfo.InvariantCulture, $"{p.Port}/{Proto(p.Protocol)}")));
    }

    /// <summary>
    /// kubectl's EXTERNAL-IP: the external IPs joined by ","; a LoadBalancer without them shows <c>&lt;pending&gt;</c>
    /// (the lab has no load-balancer controller to give it an address); otherwise <c>&lt;none&gt;</c>.
    /// </summary>
    public static string ExternalIp(Service service)
    {
        ArgumentNullException.ThrowIfNull(service);
        return service.ExternalIps.Count > 0 ? string.Join(",", service.ExternalIps)
            : service.Type == ServiceType.LoadBalancer ? "<pending>" : "<none>";
    }

    /// <summary>kubectl's age format (HumanDuration): 45s, 3m20s, 25m, 5h3m, 3d4h...</summary>
    public static string Age(TimeSpan d)
    {
        var s = (long)Math.Max(0, d.TotalSeconds);
        var i = CultureInfo.InvariantCulture;
        if (s < 120)
        {
            return string.Create(i, $"{s}s");
        }

        var m = s / 60;
        if (m < 10)
        {
            return s % 60 == 0 ? string.Create(i, $"{m}m") : string.Create(i, $"{m}m{s % 60}s");
        }

        if (m < 180)
        {
            return string.Create(i, $"{m}m");
        }

        var h = m / 60;
        if (h < 8)
        {
            return m % 60 == 0 ? string.Create(i, $"{h}h") : string.Create(i, $"{h}h{m % 60}m");
        }

        if (h < 48)
        {
            return string.Create(i, $"{h}h");
        }

        var days = h / 24;
        return h < 24 * 8 && h % 24 != 0 ? string.Create(i, $"{days}d{h % 24}h") : string.Create(i, $"{days}d");
    }

    /// <summary>The ready endpoints' IPv4 addresses that a Service's selector picks (what its Endpoints object lists).</summary>
    public static IReadOnlyList<IPAddress> Addresses(Service service, IReadOnlyList<Endpoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(endpoints);
        var selector = LabelSelector.ForService(service.Selector);
        return [.. endpoints
            .Where(e => e.Namespace == service.Namespace && selector.Matches(e.Labels))
            .SelectMany(e => e.IPs.Where(ip => ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork))
            .OrderBy(ip => ip.ToString(), StringComparer.Ordinal)];
    }

    private static string Version => "v1.33.0-loom";

    private static string Proto(Protocol p) => p == Protocol.Udp ? "UDP" : "TCP";

    private static string NodeStatus(Node? n) => n is null ? "NotReady" : (n.Ready ? "Ready" : "NotReady") + (n.Unschedulable ? ",SchedulingDisabled" : "");

    private static string Roles(Node? n)
    {
        var roles = n?.Labels.Keys.Where(k => k.StartsWith("node-role.kubernetes.io/", StringComparison.Ordinal)).Select(k => k["node-role.kubernetes.io/".Length..]).Order(StringComparer.Ordinal).ToList() ?? [];
        return roles.Count == 0 ? "<none>" : string.Join(",", roles);
    }

    private static string ServiceAge(LabState state, Service s, DateTimeOffset now) =>
        state.Services.FirstOrDefault(x => x.Namespace == s.Namespace && x.Name == s.Name) is { } r ? Age(now - r.Created) : "<unknown>";

    private static IEnumerable<(LabPod? Running, LabPendingPod? Pending)> Pods(LabState state, string? ns) =>
        state.Pods.Where(p => ns is null || p.Namespace == ns).Select(p => ((LabPod?)p, (LabPendingPod?)null))
            .Concat(state.Pending.Where(p => ns is null || p.Namespace == ns).Select(p => ((LabPod?)null, (LabPendingPod?)p)))
            .OrderBy(p => p.Item1?.Namespace ?? p.Item2!.Namespace, StringComparer.Ordinal)
            .ThenBy(p => p.Item1?.Name ?? p.Item2!.Name, StringComparer.Ordinal);

    private static string Table(string[] headers, IEnumerable<string[]> rows)
    {
        var all = rows.ToList();
        if (all.Count == 0)
        {
            return "No resources found.\n";
        }

        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        foreach (var row in all.Prepend(headers))
        {
            for (var i = 0; i < row.Length; i++)
            {
                sb.Append(i == row.Length - 1 ? row[i] : row[i].PadRight(widths[i] + 3));
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    private static string Json(Action<Utf8JsonWriter> items)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("apiVersion", "v1");
            w.WriteStartArray("items");
            items(w);
            w.WriteEndArray();
            w.WriteString("kind", "List");
            w.WriteStartObject("metadata");
            w.WriteString("resourceVersion", "");
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    private static void Metadata(Utf8JsonWriter w, string name, string? ns, DateTimeOffset? created, IReadOnlyDictionary<string, string>? labels)
    {
        w.WriteStartObject("metadata");
        w.WriteString("name", name);
        if (ns is not null)
        {
            w.WriteString("namespace", ns);
        }

        if (created is { } c)
        {
            w.WriteString("creationTimestamp", c.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
        }

        if (labels is { Count: > 0 })
        {
            StringMap(w, "labels", labels);
        }
    }

    private static void StringMap(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, string> map)
    {
        w.WriteStartObject(name);
        foreach (var (k, v) in map.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            w.WriteString(k, v);
        }

        w.WriteEndObject();
    }

    private static void NodeJson(Utf8JsonWriter w, LabState state, LabNode n, Node? s)
    {
        w.WriteStartObject();
        w.WriteString("apiVersion", "v1");
        w.WriteString("kind", "Node");
        Metadata(w, n.Name, null, state.Created, s?.Labels);
        w.WriteEndObject();
        w.WriteStartObject("spec");
        if (s?.PodCidrs is { Count: > 0 } cidrs)
        {
            w.WriteString("podCIDR", cidrs[0].ToString());
            w.WriteStartArray("podCIDRs");
            foreach (var c in cidrs)
            {
                w.WriteStringValue(c.ToString());
            }

            w.WriteEndArray();
        }

        if (s?.Taints is { Count: > 0 } taints)
        {
            w.WriteStartArray("taints");
            foreach (var t in taints)
            {
                w.WriteStartObject();
                w.WriteString("key", t.Key);
                if (t.Value is not null)
                {
                    w.WriteString("value", t.Value);
                }

                w.WriteString("effect", t.Effect.ToString());
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        if (s?.Unschedulable == true)
        {
            w.WriteBoolean("unschedulable", true);
        }

        w.WriteEndObject();
        w.WriteStartObject("status");
        w.WriteStartArray("addresses");
        w.WriteStartObject();
        w.WriteString("type", "InternalIP");
        w.WriteString("address", n.Ip);
        w.WriteEndObject();
        w.WriteStartObject();
        w.WriteString("type", "Hostname");
        w.WriteString("address", n.Name);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteStartArray("conditions");
        w.WriteStartObject();
        w.WriteString("type", "Ready");
        w.WriteString("status", s?.Ready == true ? "True" : "False");
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteStartObject("nodeInfo");
        w.WriteString("kubeletVersion", Version);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void PodJson(Utf8JsonWriter w, LabState state, LabPod? p, LabPendingPod? pending)
    {
        var spec = p?.Spec ?? pending?.Spec;
        var name = p?.Name ?? pending!.Name;
        var ns = p?.Namespace ?? pending!.Namespace;
        var owner = p?.Owner ?? pending?.Owner;
        w.WriteStartObject();
        w.WriteString("apiVersion", "v1");
        w.WriteString("kind", "Pod");
        Metadata(w, name, ns, p?.Created ?? pending!.Created, p?.Labels ?? pending?.Spec.Labels);
        if (owner is not null && state.Deployments.FirstOrDefault(d => d.Namespace == ns && d.Name == owner) is { } d)
        {
            w.WriteStartArray("ownerReferences");
            w.WriteStartObject();
            w.WriteString("apiVersion", "apps/v1");
            w.WriteString("kind", "ReplicaSet");
            w.WriteString("name", $"{d.Name}-{d.TemplateHash}");
            w.WriteBoolean("controller", true);
            w.WriteEndObject();
            w.WriteEndArray();
        }

        w.WriteEndObject();
        w.WriteStartObject("spec");
        if ((p?.Node ?? spec?.NodeName) is { } node)
        {
            w.WriteString("nodeName", node);
        }

        w.WriteStartArray("containers");
        foreach (var c in spec?.AllContainers ?? [])
        {
            ContainerJson(w, c);
        }

        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartObject("status");
        w.WriteString("phase", p is null ? "Pending" : "Running");
        w.WriteStartArray("conditions");
        w.WriteStartObject();
        w.WriteString("type", "PodScheduled");
        w.WriteString("status", p is null ? "False" : "True");
        if (pending is not null)
        {
            w.WriteString("reason", "Unschedulable");
            w.WriteString("message", pending.Reason);
        }

        w.WriteEndObject();
        w.WriteEndArray();
        if (p is not null)
        {
            w.WriteString("hostIP", state.Nodes.FirstOrDefault(n => n.Name == p.Node)?.Ip);
            if (p.Ip?.Split('/')[0] is { } ip)
            {
                w.WriteString("podIP", ip);
                w.WriteStartArray("podIPs");
                w.WriteStartObject();
                w.WriteString("ip", ip);
                w.WriteEndObject();
                w.WriteEndArray();
            }
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void ContainerJson(Utf8JsonWriter w, LabContainer c)
    {
        w.WriteStartObject();
        w.WriteString("name", c.Name);
        w.WriteString("image", c.Image);
        if (c.Command.Count > 0)
        {
            w.WriteStartArray("command");
            c.Command.ForEach(w.WriteStringValue);
            w.WriteEndArray();
        }

        if (c.Args.Count > 0)
        {
            w.WriteStartArray("args");
            c.Args.ForEach(w.WriteStringValue);
            w.WriteEndArray();
        }

        if (c.Ports.Count > 0)
        {
            w.WriteStartArray("ports");
            foreach (var p in c.Ports)
            {
                w.WriteStartObject();
                if (p.Name is not null)
                {
                    w.WriteString("name", p.Name);
                }

                w.WriteNumber("containerPort", p.Port);
                w.WriteString("protocol", Proto(p.Protocol));
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
    }

    // Namespaces (the stored objects plus every namespace a pod or Service uses) and NetworkPolicies, from the store.
    private static async Task<string> PolicyObjectsAsync(LabState state, string kind, string output, string? @namespace, CancellationToken cancellationToken)
    {
        List<ClusterNamespace> namespaces;
        List<NetworkPolicy> policies;
        List<Service> services;
        var store = await Lab.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            namespaces = [.. (await store.ListAsync(Kinds.Namespace, cancellationToken).ConfigureAwait(false)).Items.Select(i => i.Value)];
            policies = [.. (await store.ListAsync(Kinds.NetworkPolicy, cancellationToken).ConfigureAwait(false)).Items.Select(i => i.Value)];
            services = [.. (await store.ListAsync(Kinds.Service, cancellationToken).ConfigureAwait(false)).Items.Select(i => i.Value)];
        }

        if (kind == "namespaces")
        {
            var used = state.Pods.Select(p => p.Namespace).Concat(state.Pending.Select(p => p.Namespace)).Concat(services.Select(s => s.Namespace)).Append("default");
            var all = namespaces.Concat(used.Where(n => !namespaces.Any(x => x.Name == n)).Distinct().Select(n => new ClusterNamespace { Name = n }))
                .OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
            return output == "json"
                ? Json(w => all.ForEach(n =>
                {
                    w.WriteStartObject();
                    w.WriteString("apiVersion", "v1");
                    w.WriteString("kind", "Namespace");
                    Metadata(w, n.Name, null, null, n.EffectiveLabels);
                    w.WriteEndObject();
                    w.WriteStartObject("status");
                    w.WriteString("phase", "Active");
                    w.WriteEndObject();
                    w.WriteEndObject();
                }))
                : Table(output == "wide" ? ["NAME", "STATUS", "AGE", "LABELS"] : ["NAME", "STATUS", "AGE"], all.Select(n =>
                {
                    string[] row = [n.Name, "Active", "<unknown>"];
                    return output == "wide" ? [.. row, string.Join(",", n.EffectiveLabels.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key + "=" + kv.Value))] : row;
                }));
        }

        var selected = policies.Where(p => @namespace is null || p.Namespace == @namespace)
            .OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal).ToList();
        return output == "json"
            ? Json(w => selected.ForEach(p =>
            {
                w.WriteStartObject();
                w.WriteString("apiVersion", "networking.k8s.io/v1");
                w.WriteString("kind", "NetworkPolicy");
                Metadata(w, p.Name, p.Namespace, null, null);
                w.WriteEndObject();
                w.WritePropertyName("spec");
                JsonSerializer.Serialize(w, p, Kinds.NetworkPolicy.TypeInfo);
                w.WriteEndObject();
            }))
            : Table([.. @namespace is null ? ["NAMESPACE"] : Array.Empty<string>(), "NAME", "POD-SELECTOR", "AGE"], selected.Select(p =>
                (string[])[.. @namespace is null ? [p.Namespace] : Array.Empty<string>(), p.Name, p.PodSelector.IsEmpty ? "<none>" : p.PodSelector.ToString(), "<unknown>"]));
    }

    private static void ServiceJson(Utf8JsonWriter w, LabState state, Service s)
    {
        w.WriteStartObject();
        w.WriteString("apiVersion", "v1");
        w.WriteString("kind", "Service");
        Metadata(w, s.Name, s.Namespace, state.Services.FirstOrDefault(x => x.Namespace == s.Namespace && x.Name == s.Name)?.Created, null);
        w.WriteEndObject();
        w.WriteStartObject("spec");
        w.WriteString("type", s.Type.ToString());
        w.WriteString("clusterIP", s.ClusterIp.ToString());
        w.WriteStartArray("clusterIPs");
        w.WriteStringValue(s.ClusterIp.ToString());
        w.WriteEndArray();
        if (s.ExternalIps.Count > 0)
        {
            w.WriteStartArray("externalIPs");
            foreach (var ip in s.ExternalIps)
            {
                w.WriteStringValue(ip.ToString());
            }

            w.WriteEndArray();
        }

        if (s.Type != ServiceType.ClusterIP || s.ExternalIps.Count > 0)
        {
            w.WriteString("externalTrafficPolicy", s.ExternalTrafficPolicy.ToString());
        }

        if (s.HealthCheckNodePort != 0)
        {
            w.WriteNumber("healthCheckNodePort", s.HealthCheckNodePort);
        }

        w.WriteString("internalTrafficPolicy", s.InternalTrafficPolicy.ToString());
        w.WriteStartArray("ports");
        foreach (var p in s.Ports)
        {
            w.WriteStartObject();
            if (p.Name is not null)
            {
                w.WriteString("name", p.Name);
            }

            w.WriteString("protocol", Proto(p.Protocol));
            w.WriteNumber("port", p.Port);
            w.WriteNumber("targetPort", p.TargetPort);
            if (p.NodePort != 0)
            {
                w.WriteNumber("nodePort", p.NodePort);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        StringMap(w, "selector", s.Selector);
        w.WriteString("sessionAffinity", s.SessionAffinity.ToString());
        if (s.SessionAffinity == SessionAffinity.ClientIP)
        {
            w.WriteStartObject("sessionAffinityConfig");
            w.WriteStartObject("clientIP");
            w.WriteNumber("timeoutSeconds", s.SessionAffinityTimeoutSeconds);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteStartObject("status");
        w.WriteStartObject("loadBalancer");
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void EndpointsJson(Utf8JsonWriter w, LabState state, Service s, IReadOnlyList<Endpoint> endpoints)
    {
        w.WriteStartObject();
        w.WriteString("apiVersion", "v1");
        w.WriteString("kind", "Endpoints");
        Metadata(w, s.Name, s.Namespace, state.Services.FirstOrDefault(x => x.Namespace == s.Namespace && x.Name == s.Name)?.Created, null);
        w.WriteEndObject();
        w.WriteStartArray("subsets");
        var addrs = Addresses(s, endpoints);
        if (addrs.Count > 0)
        {
            w.WriteStartObject();
            w.WriteStartArray("addresses");
            foreach (var ip in addrs)
            {
                w.WriteStartObject();
                w.WriteString("ip", ip.ToString());
                var ep = endpoints.FirstOrDefault(e => e.IPs.Contains(ip));
                if (ep is not null)
                {
                    w.WriteString("nodeName", ep.Node);
                    w.WriteStartObject("targetRef");
                    w.WriteString("kind", "Pod");
                    w.WriteString("name", ep.Name);
                    w.WriteString("namespace", ep.Namespace);
                    w.WriteEndObject();
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("ports");
            foreach (var p in s.Ports)
            {
                w.WriteStartObject();
                if (p.Name is not null)
                {
                    w.WriteString("name", p.Name);
                }

                w.WriteNumber("port", p.TargetPort);
                w.WriteString("protocol", Proto(p.Protocol));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }
}
