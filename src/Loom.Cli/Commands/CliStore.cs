using System.CommandLine;
using Loom.Agent;
using Loom.Core.Store;
using Loom.Store;

namespace Loom.Cli.Commands;

/// <summary>How store commands find the cluster store: through an agent configuration's store section.</summary>
internal static class CliStore
{
    public static Option<FileInfo> ConfigOption() => new("--config") { Description = "An agent configuration naming the store.", Required = true };

    /// <summary>The store, or null after printing why not (a bad config or store section is the caller's exit code 2).</summary>
    public static async Task<IStore?> OpenAsync(string verb, FileInfo config, CancellationToken ct)
    {
        try
        {
            var cfg = AgentConfig.Load(config.FullName);
            // A bad store section (store.tls files, endpoints) is a config error like any other.
            return await StoreOpener.OpenAsync(cfg.Store, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentConfigException or StoreConfigException)
        {
            await Console.Error.WriteLineAsync($"{verb}: {e.Message}").ConfigureAwait(false);
            return null;
        }
    }
}
