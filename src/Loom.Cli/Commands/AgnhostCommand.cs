using Loom.Workloads;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom agnhost SUBCOMMAND ...</c> (hidden): what the lab runs for the e2e-test-images/agnhost image and for
/// <c>agnhost</c> exec'd in a pod. Dispatched before the command line parser, so agnhost's own flag syntax
/// (<c>--http=false</c>, <c>--timeout=1s</c>) reaches it untouched.
/// </summary>
internal static class AgnhostCommand
{
    /// <summary>Loom's addition, set by the lab: the pod's name, which serve-hostname answers (agnhost answers the host name).</summary>
    private const string PodNameFlag = "--pod-name";

    public static async Task<int> RunAsync(string[] args)
    {
        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        switch (args.FirstOrDefault())
        {
            case "connect":
                return await Agnhost.ConnectAsync(args[1..], Console.Error, cts.Token).ConfigureAwait(false);
            case "serve-hostname":
                var rest = args[1..].ToList();
                var hostname = Environment.GetEnvironmentVariable("HOSTNAME") is { Length: > 0 } h ? h : Environment.MachineName;
                var i = rest.FindIndex(a => a == PodNameFlag || a.StartsWith(PodNameFlag + "=", StringComparison.Ordinal));
                if (i >= 0)
                {
                    var inline = rest[i].Length > PodNameFlag.Length;
                    hostname = inline ? rest[i][(PodNameFlag.Length + 1)..] : i + 1 < rest.Count ? rest[i + 1] : "";
                    rest.RemoveRange(i, inline ? 1 : 2);
                }

                ServeHostnameOptions options;
                try
                {
                    options = Agnhost.ParseServeHostname(rest);
                    ArgumentException.ThrowIfNullOrEmpty(hostname, PodNameFlag);
                }
                catch (ArgumentException e)
                {
                    await Console.Error.WriteLineAsync($"agnhost serve-hostname: {e.Message}").ConfigureAwait(false);
                    return 2;
                }

                await Agnhost.ServeHostnameAsync(options, hostname, Console.Out, cts.Token).ConfigureAwait(false);
                return 0;
            default:
                await Console.Error.WriteLineAsync("usage: loom agnhost serve-hostname [--tcp] [--udp] [--http=false] [--port N] | connect HOST:PORT [--timeout=1s] [--protocol=tcp|udp]").ConfigureAwait(false);
                return 2;
        }
    }
}
