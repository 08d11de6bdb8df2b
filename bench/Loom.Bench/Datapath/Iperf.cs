using System.Globalization;
using System.Text.Json;
using Loom.Testing;

namespace Loom.Bench.Datapath;

/// <summary>One iperf3 client run: what the receiver got, and the sender's retransmissions.</summary>
internal sealed record IperfRun(int Streams, double Gbps, long Retransmits);

/// <summary>
/// iperf3 inside the lab's namespaces only (nsenter --net): a server in the receiving namespace, a client in the
/// sending one, aimed at an address of the lab. Killed by its own pid at the end or when a run overstays.
/// </summary>
internal static class Iperf
{
    public const int Port = 5201;

    public static string Tool => Shell.Require("iperf3", "apt-get install iperf3 (scripts/deps.sh)");

    /// <summary>Starts <c>iperf3 -s</c> in <paramref name="netns"/> and waits until it listens (read from its own /proc/PID/net).</summary>
    public static BackgroundProcess StartServer(string netns)
    {
        var server = Shell.StartInNetns(netns, Tool, "-s", "-p", Port.ToString(CultureInfo.InvariantCulture));
        // nsenter execs iperf3 (no fork for a net namespace alone): the pid is the server's, its /proc/PID/net the namespace's.
        if (!Shell.WaitFor(() => server.HasExited || Listening(server.Process.Id, Port), TimeSpan.FromSeconds(10)) || server.HasExited)
        {
            var err = server.HasExited ? server.Process.StandardError.ReadToEnd() : "not listening after 10 s";
            server.Dispose();
            throw new BenchException($"iperf3 server in {netns}: {err.Trim()}");
        }

        return server;
    }

    /// <summary><c>iperf3 -c TARGET -t SECONDS -O 1 -P STREAMS -J</c> in <paramref name="netns"/> (the first second, slow start, omitted).</summary>
    public static IperfRun Client(string netns, string target, int seconds, int streams)
    {
        string[] argv = [Tool, "-c", target, "-p", Port.ToString(CultureInfo.InvariantCulture), "-t", seconds.ToString(CultureInfo.InvariantCulture),
            "-O", "1", "-P", streams.ToString(CultureInfo.InvariantCulture), "-J"];
        var run = Shell.InNetns(netns, argv, timeout: TimeSpan.FromSeconds(seconds + 1 + 30));
        try
        {
            using var doc = JsonDocument.Parse(run.Stdout);
            var root = doc.RootElement;
            if (root.TryGetProperty("error", out var error))
            {
                throw new BenchException($"iperf3 -c {target} -P {streams} in {netns}: {error.GetString()}");
            }

            var end = root.GetProperty("end");
            var bps = end.GetProperty("sum_received").GetProperty("bits_per_second").GetDouble();
            var retr = end.GetProperty("sum_sent").TryGetProperty("retransmits", out var r) ? r.GetInt64() : 0;
            return new IperfRun(streams, bps / 1e9, retr);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new BenchException($"iperf3 -c {target} -P {streams} in {netns}: no result ({e.Message}); {run.Stderr.Trim()}");
        }
    }

    private static bool Listening(int pid, int port)
    {
        var hexPort = ":" + port.ToString("X4", CultureInfo.InvariantCulture);
        foreach (var file in new[] { "tcp", "tcp6" })
        {
            try
            {
                // sl local_address rem_address st ...: st 0A is LISTEN.
                if (File.ReadLines($"/proc/{pid}/net/{file}").Skip(1)
                    .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    .Any(f => f.Length > 3 && f[1].EndsWith(hexPort, StringComparison.Ordinal) && f[3] == "0A"))
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // the process is gone or has no such table
            }
        }

        return false;
    }
}
