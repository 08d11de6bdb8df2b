using System.CommandLine;
using System.Net;
using Loom.Agent;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store;
using Loom.Workloads;

namespace Loom.Cli.Commands;

/// <summary><c>loom dns --config AGENT.json</c>: the cluster DNS (what the lab runs for the <c>loom/dns</c> image).</summary>
internal static class DnsCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config") { Description = "An agent configuration naming the store to read Services from.", Required = true };
        var port = new Option<int>("--port") { Description = "UDP and TCP port.", DefaultValueFactory = _ => 53 };
        var storeNetns = new Option<string?>("--store-netns")
        {
            Description = "Reach etcd from this network namespace (the lab's DNS pod reads the store before its own network is wired).",
        };
        var cmd = new Command("dns", "Cluster DNS: A records for svc, svc.ns and svc.ns.svc.cluster.local from the store's Services; NXDOMAIN otherwise.")
        {
            config, port, storeNetns,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            AgentConfig cfg;
            IStore store;
            try
            {
                cfg = AgentConfig.Load(parse.GetValue(config)!.FullName);
                // A bad store section (store.tls files, endpoints) is a config error like any other.
                var connect = parse.GetValue(storeNetns) is { } netns ? NetNsHttpHandler.ConnectIn(netns) : null;
                store = await StoreOpener.OpenAsync(cfg.Store, connect, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AgentConfigException or StoreConfigException)
            {
                await Console.Error.WriteLineAsync($"loom dns: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            await using (store.ConfigureAwait(false))
            {
                // Queries are answered from memory, kept current by the store's watch (not two listings per query).
                var cache = ClusterDnsCache.Start(store, Console.Out);
                await using var stopCache = cache.ConfigureAwait(false);
                using var server = new ClusterDnsServer(new IPEndPoint(IPAddress.Any, parse.GetValue(port)), cache.ViewAsync, Console.Out);
                server.Start();
                Console.WriteLine($"cluster DNS listening on :{parse.GetValue(port)} (UDP, TCP), store {cfg.Store.Type}");
                try
                {
                    await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // SIGTERM / Ctrl-C
                }

                return 0;
            }
        });
        return cmd;
    }
}
