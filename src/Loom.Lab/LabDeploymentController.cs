using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Loom.Core.Cni;
using Loom.Core.Model;

namespace Loom.Lab;

/// <summary>What controllers would do, run by each command that changes state: Pending pods placed, each Deployment brought to its replicas and template.</summary>
internal static class LabDeploymentController
{
    /// <summary>What controllers would do: places Pending pods that now fit, brings each Deployment to its replicas and template.</summary>
    internal static Task ReconcileAsync(LabState state, TextWriter output, CancellationToken cancellationToken = default) =>
        ReconcileAsync(state, output, null, cancellationToken);

    /// <summary>As the other overload; pods named in <paramref name="terminating"/> (a drain's, still serving) count for no Deployment and are left alone.</summary>
    internal static async Task ReconcileAsync(LabState state, TextWriter output, IReadOnlySet<string>? terminating, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        terminating ??= new HashSet<string>(StringComparer.Ordinal);
        state.Refresh();
        foreach (var pending in state.Pending.ToList())
        {
            var (nodes, pods) = await LabScheduling.SchedulerViewAsync(state, cancellationToken).ConfigureAwait(false);
            var result = Scheduler.Schedule(pending.Namespace, pending.Spec, nodes, pods);
            if (result.Scheduled)
            {
                state.Change(c => c.Pending.RemoveAll(x => x.Namespace == pending.Namespace && x.Name == pending.Name));
                await LabScheduling.CreatePodAsync(state, pending.Namespace, pending.Name, pending.Spec, pending.Owner, output, cancellationToken).ConfigureAwait(false);
            }
            else if (result.Reason != pending.Reason)
            {
                state.Change(c =>
                {
                    var i = c.Pending.FindIndex(x => x.Namespace == pending.Namespace && x.Name == pending.Name);
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
            foreach (var old in state.Pods.Where(p => p.Namespace == d.Namespace && p.Owner == d.Name && p.Labels.GetValueOrDefault(Lab.PodTemplateHashLabel) != d.TemplateHash
                                                  && !terminating.Contains(p.Name)).ToList())
            {
                LabPods.DeletePod(state, old.Name, old.Namespace);
                await output.WriteLineAsync($"pod/{old.Name} deleted (template changed)").ConfigureAwait(false);
            }

            state.Change(c => c.Pending.RemoveAll(p => p.Namespace == d.Namespace && p.Owner == d.Name && p.Spec.Labels.GetValueOrDefault(Lab.PodTemplateHashLabel) != d.TemplateHash));
            var running = state.Pods.Where(p => p.Namespace == d.Namespace && p.Owner == d.Name && !terminating.Contains(p.Name)).ToList();
            var pending = state.Pending.Where(p => p.Namespace == d.Namespace && p.Owner == d.Name).ToList();
            var have = running.Count + pending.Count;
            for (var i = have; i < d.Replicas; i++)
            {
                var name = $"{d.Name}-{d.TemplateHash}-{RandomSuffix()}";
                await LabScheduling.CreatePodAsync(state, d.Namespace, name, d.Template, d.Name, output, cancellationToken).ConfigureAwait(false);
            }

            var extra = have - d.Replicas;
            foreach (var p in pending.Take(Math.Max(0, extra)))
            {
                state.Change(c => c.Pending.RemoveAll(x => x.Namespace == p.Namespace && x.Name == p.Name));
                extra--;
            }

            foreach (var p in running.OrderByDescending(p => p.Created).Take(Math.Max(0, extra)))
            {
                LabPods.DeletePod(state, p.Name, p.Namespace);
            }
        }

        // Pods whose Deployment is gone.
        foreach (var orphan in state.Pods.Where(p => p.Owner is { } o && !terminating.Contains(p.Name) && !state.Deployments.Any(d => d.Namespace == p.Namespace && d.Name == o)).ToList())
        {
            LabPods.DeletePod(state, orphan.Name, orphan.Namespace);
        }
    }

    /// <summary>Kubernetes' pod-template-hash: FNV-32a of the template, its decimal text mapped onto a vowel-free alphabet.</summary>
    internal static string TemplateHash(LabPodSpec template)
    {
        var hash = FnvHash(JsonSerializer.SerializeToUtf8Bytes(template, LabJsonContext.Default.LabPodSpec));
        return SafeEncode(hash.ToString(CultureInfo.InvariantCulture));
    }

    internal const string Alphanums = "bcdfghjklmnpqrstvwxz2456789";

    internal static uint FnvHash(ReadOnlySpan<byte> data)
    {
        var h = 2166136261u;
        foreach (var b in data)
        {
            h ^= b;
            h *= 16777619u;
        }

        return h;
    }

    internal static string SafeEncode(string s) => new([.. s.Select(c => Alphanums[c % Alphanums.Length])]);

    internal static string RandomSuffix() => RandomNumberGenerator.GetString(Alphanums, 5);
}
