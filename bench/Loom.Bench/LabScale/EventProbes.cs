using System.Diagnostics;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Services;
using Loom.Core.Store;
using Loom.Lab;
using Loom.Linux;

namespace Loom.Bench.LabScale;

/// <summary>
/// Event to live: with the N Services in place, one new Service at a time (probe-NNN, a free ClusterIP, selecting the
/// webpod pods, which are ready) written straight to the store, while a client in each node's client pod connects to
/// its ClusterIP (<see cref="ClusterIpProbe"/>); per node, the time from the write until whoami answers through it.
/// </summary>
internal static class EventProbes
{
    public const string EventToWrite = "loom_service_event_to_write_seconds";

    public static async Task RunAsync(IStore store, LabState state, List<AgentScrape> scrapes, BackendResult result, LabBenchOptions options, CancellationToken ct)
    {
        var (services, _) = await store.ListAsync(Kinds.Service, ct).ConfigureAwait(false);
        var used = services.Select(s => s.Value.ClusterIp).ToHashSet();
        var allocator = new ClusterIpAllocator(ClusterIpAllocator.DefaultServiceCidr);
        var clients = new List<NetNsHandle>();
        try
        {
            foreach (var node in state.Nodes)
            {
                var pod = state.Pod(ScaleManifest.ClientPod(node.Name)) ?? throw new BenchException($"client pod {ScaleManifest.ClientPod(node.Name)} is missing");
                clients.Add(NetNs.Open(pod.Netns));
            }

            var before = await HistogramsAsync(scrapes, ct).ConfigureAwait(false);
            var phase = Stopwatch.StartNew();
            var probeTimeout = TimeSpan.FromSeconds(options.ProbeTimeoutSeconds);
            Console.Write($"   {options.Probes} probes (new Service -> ClusterIP answers on every node):");
            for (var i = 0; i < options.Probes && phase.Elapsed < TimeSpan.FromSeconds(options.ProbeBudgetSeconds); i++)
            {
                var ip = allocator.Allocate(used);
                used.Add(ip);
                var hits = await ProbeOnceAsync(store, clients, Probe(i, ip), probeTimeout, ct).ConfigureAwait(false);
                for (var k = 0; k < hits.Length; k++)
                {
                    result.Nodes[k].LiveMs.Add(hits[k] is { } h ? Math.Round(h.LiveMs, 2) : null);
                    result.Nodes[k].AnsweredMs.Add(hits[k] is { } a ? Math.Round(a.AnsweredMs, 2) : null);
                    result.Nodes[k].Attempts.Add(hits[k]?.Attempts ?? 0);
                }

                result.ProbesRun++;
                Console.Write(hits.All(h => h is not null) ? $" {hits.Max(h => h!.LiveMs):0}" : " timeout");
                // Let the agents settle (a sync still finishing elsewhere) before the next write.
                await Task.Delay(200, ct).ConfigureAwait(false);
            }

            Console.WriteLine(" (ms, slowest node)");
            var after = await HistogramsAsync(scrapes, ct).ConfigureAwait(false);
            for (var k = 0; k < after.Length; k++)
            {
                if (after[k]?.Since(before[k]) is { Count: > 0 } h)
                {
                    result.Nodes[k].EventToWrite = new HistogramSummary(h.Count, h.Quantile(0.50) * 1000, h.Quantile(0.99) * 1000);
                }
            }
        }
        finally
        {
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    private static Service Probe(int i, IPAddress ip) => new()
    {
        Namespace = "default",
        Name = $"probe-{i:D3}",
        ClusterIp = ip,
        Ports = [new ServicePort(null, Protocol.Tcp, 80, 80)],
        Selector = new Dictionary<string, string>(StringComparer.Ordinal) { ["app"] = ScaleManifest.WhoamiLabel },
    };

    /// <summary>Starts a prober per node, waits until each is inside its pod, then writes the Service and waits for them.</summary>
    private static async Task<ProbeHit?[]> ProbeOnceAsync(IStore store, List<NetNsHandle> clients, Service service, TimeSpan timeout, CancellationToken ct)
    {
        using var gun = new ProbeStart(clients.Count);
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var target = new IPEndPoint(service.ClusterIp, service.Ports[0].Port);
        var probers = clients.Select(ns => Task.Factory.StartNew(() => ClusterIpProbe.Run(ns, target, gun, timeout, abort.Token),
            abort.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        try
        {
            await Task.Run(() => gun.Ready.Wait(abort.Token), abort.Token).ConfigureAwait(false);
            gun.Fire();
            var put = await store.PutAsync(Kinds.Service, service, expectedRevision: 0, cancellationToken: ct).ConfigureAwait(false);
            if (!put.Succeeded)
            {
                throw new BenchException($"the store refused Service {service.Key} (it exists already?)");
            }

            return await Task.WhenAll(probers).ConfigureAwait(false);
        }
        catch
        {
            await abort.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(probers.Select(p => p.ContinueWith(_ => { }, TaskScheduler.Default))).ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<Histogram?[]> HistogramsAsync(List<AgentScrape> scrapes, CancellationToken ct)
    {
        var all = new Histogram?[scrapes.Count];
        for (var i = 0; i < scrapes.Count; i++)
        {
            all[i] = (await scrapes[i].TryReadAsync(ct).ConfigureAwait(false))?.Histogram(EventToWrite);
        }

        return all;
    }
}
