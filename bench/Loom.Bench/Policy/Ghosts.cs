using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Store;

namespace Loom.Bench.Policy;

/// <summary>
/// The 1,000 "ghost" pods: Endpoint objects on a node that does not exist (<see cref="Node"/>), labels app=ghost-N,
/// addresses in 10.250.0.0/16 (no lab network uses it; nothing ever sends there), and their identities acquired with
/// <see cref="IdentityAllocator"/> under that node's name, as their own agent would: every real agent then finds them
/// in the store and carries them in its ipcache. They go with the lab's store at <c>lab down</c>.
/// </summary>
internal static class Ghosts
{
    public const string Node = "bench-ghost";

    public static IPAddress Address(int i) => new([10, 250, (byte)(i / 250), (byte)(i % 250 + 1)]);

    public static async Task CreateAsync(IStore store, int count, CancellationToken ct)
    {
        var ns = (await store.GetAsync(Kinds.Namespace, PolicyManifests.Namespace, ct).ConfigureAwait(false))?.Value
            ?? throw new BenchException($"namespace {PolicyManifests.Namespace} is not in the store");
        var allocator = new IdentityAllocator(store, Node);
        for (var i = 0; i < count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["app"] = PolicyManifests.Ghost(i) };
            // The label set exactly as the agents compute it for an endpoint of this namespace.
            await allocator.AcquireAsync(SecurityLabels.Of(ns.Name, labels, ns.EffectiveLabels), ct).ConfigureAwait(false);
            var ep = new Endpoint
            {
                Namespace = ns.Name,
                Name = PolicyManifests.Ghost(i),
                Node = Node,
                ContainerId = string.Create(CultureInfo.InvariantCulture, $"bench-ghost-{i:0000}"),
                IPs = [Address(i)],
                Labels = labels,
                Ready = true,
            };
            var put = await store.PutAsync(Kinds.Endpoint, ep, cancellationToken: ct).ConfigureAwait(false);
            if (!put.Succeeded)
            {
                throw new BenchException($"could not write ghost endpoint {ep.Key}: {put}");
            }
        }
    }
}
