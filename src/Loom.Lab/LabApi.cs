using System.Text.Json;
using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Core.Services;
using Loom.Core.Store;

namespace Loom.Lab;

/// <summary>The API verbs: <c>kubectl apply</c> and <c>delete</c> of Pods, Deployments and Services.</summary>
internal static class LabApi
{
    /// <summary>Reads a manifest file, or standard input for "-".</summary>
    internal static string ReadManifest(string file)
    {
        ArgumentException.ThrowIfNullOrEmpty(file);
        return file == "-" ? Console.In.ReadToEnd() : File.Exists(file) ? File.ReadAllText(file) : throw new LabException($"{file}: no such file");
    }

    /// <summary>
    /// <c>kubectl apply</c>: validates every document first (an error anywhere applies nothing), then creates or updates
    /// each object in file order and reconciles. Writes kubectl-style lines ("service/webpod created") and warnings.
    /// </summary>
    internal static async Task ApplyAsync(LabState state, string yaml, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        var set = Manifests.Parse(yaml);
        var store = await LabStore.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            await ApplyAsync(state, store, set, output, cancellationToken).ConfigureAwait(false);
        }

        await LabDeploymentController.ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The apply against <paramref name="store"/> (the caller's to dispose), without the reconcile.</summary>
    internal static async Task ApplyAsync(LabState state, IStore store, ManifestSet set, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(output);
        var services = await LabServiceApply.ReadAsync(store, cancellationToken).ConfigureAwait(false);
        var errors = set.Errors.ToList();
        // ClusterIPs: a requested one must be free (or already this Service's), and a Service keeps the one it has.
        foreach (var s in set.Objects.OfType<ServiceManifest>())
        {
            var existing = services.Find(s.Namespace, s.Name)?.Value;
            if (s.ClusterIp is { } ip)
            {
                if (existing is not null && !existing.ClusterIp.Equals(ip))
                {
                    errors.Add($"Service/{s.Name}: spec.clusterIP: Invalid value: \"{ip}\": field is immutable (it is {existing.ClusterIp})");
                }
                else if (existing is null && services.Owner(ip) is { } owner)
                {
                    errors.Add($"Service/{s.Name}: spec.clusterIP: Invalid value: \"{ip}\": provided IP is already allocated (to {owner.Key})");
                }
            }
        }

        // Node ports: a requested one must be free (or already this Service's) and in range.
        services.CheckNodePorts(set.Objects.OfType<ServiceManifest>(), errors);
        foreach (var w in set.Warnings)
        {
            await output.WriteLineAsync($"Warning: {w}").ConfigureAwait(false);
        }

        if (errors.Count > 0)
        {
            throw new LabException($"nothing applied: {errors.Count} error(s):\n  " + string.Join("\n  ", errors));
        }

        try
        {
            await ApplyObjectsAsync(state, store, set, services, output, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Once per apply, and for the Services written before any failure too.
            RecordServices(state, services.Created);
        }
    }

    private static async Task ApplyObjectsAsync(LabState state, IStore store, ManifestSet set, LabServiceApply services, TextWriter output, CancellationToken cancellationToken)
    {
        foreach (var o in set.Objects)
        {
            switch (o)
            {
                case ServiceManifest s:
                    await output.WriteLineAsync($"{o.Display} {await services.ApplyAsync(s, cancellationToken).ConfigureAwait(false)}").ConfigureAwait(false);
                    break;
                case DeploymentManifest d:
                    await output.WriteLineAsync($"{o.Display} {ApplyDeployment(state, d)}").ConfigureAwait(false);
                    break;
                case NamespaceManifest n:
                    await output.WriteLineAsync($"{o.Display} {await PutAsync(store, Kinds.Namespace, n.Name, new ClusterNamespace { Name = n.Name, Labels = n.Labels }, cancellationToken).ConfigureAwait(false)}").ConfigureAwait(false);
                    break;
                case NetworkPolicyManifest np:
                    await output.WriteLineAsync($"{o.Display} {await PutAsync(store, Kinds.NetworkPolicy, np.Policy.Key, np.Policy, cancellationToken).ConfigureAwait(false)}").ConfigureAwait(false);
                    break;
                case PodManifest p:
                    if (state.Pod(p.Namespace, p.Name) is not null || state.IsPending(p.Namespace, p.Name))
                    {
                        await output.WriteLineAsync($"{o.Display} unchanged").ConfigureAwait(false);
                    }
                    else
                    {
                        await LabScheduling.CreatePodAsync(state, p.Namespace, p.Name, p.Spec, null, output, cancellationToken).ConfigureAwait(false);
                        await output.WriteLineAsync($"{o.Display} created").ConfigureAwait(false);
                    }

                    break;
            }
        }
    }

    /// <summary><c>kubectl delete -f</c>: deletes the named objects (a Deployment with its pods); missing ones are reported, not errors.</summary>
    internal static async Task DeleteAsync(LabState state, string yaml, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        var set = Manifests.Parse(yaml);
        if (set.Errors.Count > 0)
        {
            throw new LabException($"nothing deleted: {set.Errors.Count} error(s):\n  " + string.Join("\n  ", set.Errors));
        }

        var store = await LabStore.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            foreach (var o in set.Objects)
            {
                var found = false;
                switch (o)
                {
                    case ServiceManifest s:
                        found = await store.DeleteAsync(Kinds.Service, ObjectKey.Of(s.Namespace, s.Name), cancellationToken: cancellationToken).ConfigureAwait(false);
                        state.Change(c => c.Services.RemoveAll(x => x.Namespace == s.Namespace && x.Name == s.Name));
                        break;
                    case DeploymentManifest d:
                        found = state.Deployments.Any(x => x.Namespace == d.Namespace && x.Name == d.Name);
                        state.Change(c =>
                        {
                            c.Deployments.RemoveAll(x => x.Namespace == d.Namespace && x.Name == d.Name);
                            c.Pending.RemoveAll(x => x.Namespace == d.Namespace && x.Owner == d.Name);
                        });
                        foreach (var pod in state.Pods.Where(p => p.Namespace == d.Namespace && p.Owner == d.Name).ToList())
                        {
                            LabPods.DeletePod(state, pod.Name, pod.Namespace);
                        }

                        break;
                    case PodManifest p:
                        found = DeletePod(state, p.Namespace, p.Name);
                        break;
                    case NamespaceManifest n:
                        found = await store.DeleteAsync(Kinds.Namespace, n.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
                        break;
                    case NetworkPolicyManifest np:
                        found = await store.DeleteAsync(Kinds.NetworkPolicy, np.Policy.Key, cancellationToken: cancellationToken).ConfigureAwait(false);
                        break;
                }

                await output.WriteLineAsync(found ? $"{o.Display} deleted" : $"Error from server (NotFound): {(o is NetworkPolicyManifest ? "networkpolicies.networking.k8s.io" : o.Kind.ToLowerInvariant() + "s")} \"{o.Name}\" not found").ConfigureAwait(false);
            }
        }

        await LabDeploymentController.ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>kubectl delete pod|namespace|networkpolicy NAME [-n NS]</c>: the one object (a namespace's pods and policies
    /// stay: the lab has no namespace controller). Writes kubectl's line; false when there was no such object.
    /// </summary>
    internal static async Task<bool> DeleteObjectAsync(LabState state, string kind, string @namespace, string name, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        var (display, plural) = kind switch
        {
            "pod" or "pods" or "po" => ("pod", "pods"),
            "namespace" or "namespaces" or "ns" => ("namespace", "namespaces"),
            "networkpolicy" or "networkpolicies" or "netpol" => ("networkpolicy.networking.k8s.io", "networkpolicies.networking.k8s.io"),
            _ => throw new LabException($"the server doesn't have a resource type \"{kind}\" to delete by name (the lab deletes pod, namespace and networkpolicy by name; others with -f)"),
        };
        bool found;
        if (display == "pod")
        {
            found = DeletePod(state, @namespace, name);
        }
        else
        {
            var store = await LabStore.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                found = display == "namespace"
                    ? await store.DeleteAsync(Kinds.Namespace, name, cancellationToken: cancellationToken).ConfigureAwait(false)
                    : await store.DeleteAsync(Kinds.NetworkPolicy, ObjectKey.Of(@namespace, name), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }

        await output.WriteLineAsync(found ? $"{display}/{name} deleted" : $"Error from server (NotFound): {plural} \"{name}\" not found").ConfigureAwait(false);
        if (display == "pod")
        {
            await LabDeploymentController.ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
        }

        return found;
    }

    // A running pod (CNI DEL) or a Pending one; false when neither exists.
    private static bool DeletePod(LabState state, string @namespace, string name)
    {
        var found = false;
        if (state.Pod(@namespace, name) is not null)
        {
            found = true;
            LabPods.DeletePod(state, name, @namespace);
        }

        found |= state.IsPending(@namespace, name);
        state.Change(c => c.Pending.RemoveAll(x => x.Name == name && x.Namespace == @namespace));
        return found;
    }

    // Create or update, as kubectl reports it: "created", "configured", or "unchanged" when the stored object is equal.
    private static async Task<string> PutAsync<T>(IStore store, ObjectKind<T> kind, string key, T value, CancellationToken cancellationToken)
        where T : class
    {
        var existing = await store.GetAsync(kind, key, cancellationToken).ConfigureAwait(false);
        if (existing is not null && JsonSerializer.Serialize(existing.Value, kind.TypeInfo) == JsonSerializer.Serialize(value, kind.TypeInfo))
        {
            return "unchanged";
        }

        await store.PutAsync(kind, value, cancellationToken: cancellationToken).ConfigureAwait(false);
        return existing is null ? "created" : "configured";
    }

    private static void RecordServices(LabState state, List<LabServiceRecord> created)
    {
        if (created.Count == 0)
        {
            return;
        }

        state.Change(c =>
        {
            var known = c.Services.Select(x => (x.Namespace, x.Name)).ToHashSet();
            c.Services.AddRange(created.Where(r => known.Add((r.Namespace, r.Name))));
        });
    }

    internal static string ApplyDeployment(LabState state, DeploymentManifest d)
    {
        var hash = LabDeploymentController.TemplateHash(d.Template);
        var template = d.Template with { Labels = new Dictionary<string, string>(d.Template.Labels, StringComparer.Ordinal) { [Lab.PodTemplateHashLabel] = hash } };
        var result = "created";
        state.Change(c =>
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
}
