using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Lab.Tests;

/// <summary>Every lab test builds a whole cluster: they run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SequentialLab
{
    public const string Name = "lab";
}

/// <summary>
/// Per-run lab names (<c>ll&lt;pid&gt;-</c> namespaces, /tmp/loom-lab-tests-&lt;pid&gt;) so tests never touch a user's lab;
/// labs left by killed test runs are swept on first use.
/// </summary>
public static class TestLab
{
    private const string Base = "ll";
    private static readonly Lazy<int> Swept = new(SweepStale);
    private static int _counter;

    /// <summary>Options for a fresh lab with its own prefix and directory.</summary>
    public static LabOptions Options(int nodes = 3, bool agents = false, LabStoreKind store = LabStoreKind.Sqlite)
    {
        _ = Swept.Value;
        var n = Interlocked.Increment(ref _counter);
        return new LabOptions
        {
            Nodes = nodes,
            StartAgents = agents,
            Store = store,
            Prefix = string.Create(CultureInfo.InvariantCulture, $"{RunPrefix.For(Base)}{n}-"),
            LabDir = string.Create(CultureInfo.InvariantCulture, $"/tmp/loom-lab-tests-{Environment.ProcessId}-{n}"),
            LoomPath = Path.Combine(CniRunner.BinDir, "loom"),
            CniBinDir = CniRunner.BinDir,
        };
    }

    /// <summary>
    /// Processes whose command line names the directory: what a test lab may leave behind. Only for checks and for
    /// sweeping this suite's own stale /tmp/loom-lab-tests-PID-N dirs; lab down never kills by command line.
    /// </summary>
    public static IReadOnlyList<int> ProcessesMentioning(string dir)
    {
        var needle = dir.TrimEnd('/') + "/";
        var found = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId)
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(entry, "cmdline")).Replace('\0', ' ').Contains(needle, StringComparison.Ordinal))
                    {
                        found.Add(pid);
                    }
                }
                catch (IOException)
                {
                    // gone meanwhile
                }
            }
        }

        return found;
    }

    /// <summary>Namespaces whose name starts with the prefix.</summary>
    public static IReadOnlyList<string> Namespaces(string prefix) => [.. NetNs.List().Where(n => n.StartsWith(prefix, StringComparison.Ordinal))];

    /// <summary>Names of the root namespace's links (read-only).</summary>
    public static IReadOnlyList<string> RootLinks()
    {
        using var nl = Netlink.Open();
        return [.. nl.LinkList().Select(l => l.Name).Order(StringComparer.Ordinal)];
    }

    /// <summary>Runs a command in a namespace and returns stdout, failing on a non-zero exit.</summary>
    public static async Task<string> Capture(string netns, params string[] command)
    {
        var (code, stdout, stderr) = await LabProcesses.CaptureAsync(netns, command);
        Assert.True(code == 0, $"{string.Join(' ', command)} in {netns}: exit {code}\n{stdout}\n{stderr}");
        return stdout;
    }

    /// <summary>Runs a command until its output satisfies <paramref name="done"/> (up to 10 s); returns the last output.</summary>
    public static async Task<string> Eventually(string netns, string[] command, Func<string, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var output = await Capture(netns, command);
            if (done(output) || DateTime.UtcNow > deadline)
            {
                return output;
            }

            await Task.Delay(100);
        }
    }

    /// <summary>One TCP exchange: a listener in <paramref name="serverNs"/> on ip:port, a client in <paramref name="clientNs"/>.</summary>
    public static async Task<string> TcpExchange(string serverNs, string clientNs, IPAddress ip, int port, string message)
    {
        using var sns = NetNs.Open(serverNs);
        using var cns = NetNs.Open(clientNs);
        using var listener = NetNs.Run(sns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(ip, port));
        listener.Listen();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var server = Task.Run(async () =>
        {
            using var conn = await listener.AcceptAsync(cts.Token);
            var buf = new byte[256];
            var n = await conn.ReceiveAsync(buf, cts.Token);
            var text = Encoding.ASCII.GetString(buf, 0, n);
            await conn.SendAsync(Encoding.ASCII.GetBytes("echo:" + text), cts.Token);
            conn.Shutdown(SocketShutdown.Both);
            return text;
        });
        using var client = NetNs.Run(cns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await client.ConnectAsync(new IPEndPoint(ip, port), cts.Token);
        await client.SendAsync(Encoding.ASCII.GetBytes(message), cts.Token);
        var reply = new byte[256];
        var got = await client.ReceiveAsync(reply, cts.Token);
        Assert.Equal(message, await server);
        return Encoding.ASCII.GetString(reply, 0, got);
    }

    /// <summary>Accepts connections and echoes the first read back, until cancelled.</summary>
    public static async Task EchoAsync(Socket listener, CancellationToken ct)
    {
        var open = new List<Task>();
        try
        {
            while (true)
            {
                var conn = await listener.AcceptAsync(ct);
                open.Add(Task.Run(async () =>
                {
                    using (conn)
                    {
                        var buf = new byte[64];
                        var n = await conn.ReceiveAsync(buf);
                        await conn.SendAsync(buf.AsMemory(0, n));
                    }
                }, CancellationToken.None));
            }
        }
        catch (OperationCanceledException)
        {
            await Task.WhenAll(open);
        }
    }

    /// <summary>One connection, request and echo; false on any failure.</summary>
    public static async Task<bool> ProbeOnceAsync(NetNsHandle ns, IPEndPoint target)
    {
        try
        {
            using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await s.ConnectAsync(target, timeout.Token);
            await s.SendAsync(Encoding.ASCII.GetBytes("hello"), timeout.Token);
            var buf = new byte[16];
            return await s.ReceiveAsync(buf, timeout.Token) == 5;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// A new connection every 20 ms from <paramref name="client"/> to <paramref name="target"/> while the agents of
    /// <paramref name="nodes"/> are SIGKILLed, restarted and back, and 1.5 s after. Returns once the probe has stopped,
    /// so the caller stops its echo servers only then (or the probe's last connection, handshaken by the kernel after
    /// the accept loop ended, would count as lost).
    /// </summary>
    public static async Task<(int Ok, int Failed, List<string> Errors)> ProbeAcrossAgentRestartAsync(LabState state, NetNsHandle client,
        IPEndPoint target, IReadOnlyList<string> nodes)
    {
        using var probing = new CancellationTokenSource();
        var probe = ProbeAsync(client, target, probing.Token);
        try
        {
            await Task.Delay(1000);
            foreach (var n in nodes)
            {
                LabProcesses.Kill(state.Node(n).AgentPid!.Value);
            }

            await Task.Delay(1000);
            foreach (var n in nodes)
            {
                Lab.RestartAgent(state, n);
            }

            foreach (var n in nodes)
            {
                await OverlayTests.WaitForRestartAsync(state, n);
            }

            await Task.Delay(1500);
        }
        finally
        {
            await probing.CancelAsync();
        }

        return await probe;
    }

    /// <summary>A new TCP connection every 20 ms with a request and its echo, until cancelled; counts failures.</summary>
    public static async Task<(int Ok, int Failed, List<string> Errors)> ProbeAsync(NetNsHandle ns, IPEndPoint target, CancellationToken ct)
    {
        int ok = 0, failed = 0;
        var errors = new List<string>();
        while (!ct.IsCancellationRequested)
        {
            var started = DateTime.UtcNow;
            var stage = "socket";
            try
            {
                using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                // A request counts as lost only if it never completes: the machine running CI is shared and busy
                // (agents starting take both cores), and a SYN retransmitted by TCP is not a lost request. Requests
                // slower than 900 ms are listed in the test output all the same.
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                stage = "connect";
                await s.ConnectAsync(target, timeout.Token);
                stage = $"echo (local port {((IPEndPoint)s.LocalEndPoint!).Port})"; // the port finds the flow in conntrack
                var msg = Encoding.ASCII.GetBytes($"ping {ok + failed}");
                await s.SendAsync(msg, timeout.Token);
                var buf = new byte[64];
                var n = await s.ReceiveAsync(buf, timeout.Token);
                if (Encoding.ASCII.GetString(buf, 0, n) == Encoding.ASCII.GetString(msg))
                {
                    ok++;
                    var took = DateTime.UtcNow - started;
                    if (took > TimeSpan.FromMilliseconds(900))
                    {
                        errors.Add($"{started:HH:mm:ss.fff} slow ({took.TotalMilliseconds:F0} ms) but answered");
                    }
                }
                else
                {
                    failed++;
                    errors.Add($"{started:HH:mm:ss.fff} wrong echo");
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                failed++;
                errors.Add($"{started:HH:mm:ss.fff} {stage}: {e.Message}");
            }

            await Task.Delay(20, CancellationToken.None);
        }

        return (ok, failed, errors);
    }

    private static int SweepStale()
    {
        var swept = 0;
        foreach (var name in NetNs.List())
        {
            if (RunPrefix.TryParsePid(name, Base, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
            {
                NetNs.Delete(name);
                swept++;
            }
        }

        // Node cgroups (their processes first) and eBPF pin directories of runs that died before lab down.
        var stale = new List<string>();
        if (LabCluster.CgroupRoot() is { } cgroupRoot)
        {
            stale.AddRange(Directory.GetDirectories(cgroupRoot, Base + "*"));
        }

        if (Directory.Exists("/sys/fs/bpf"))
        {
            stale.AddRange(Directory.GetDirectories("/sys/fs/bpf", Base + "*"));
        }

        foreach (var dir in stale)
        {
            if (RunPrefix.TryParsePid(Path.GetFileName(dir), Base, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
            {
                try
                {
                    if (dir.StartsWith("/sys/fs/bpf/", StringComparison.Ordinal))
                    {
                        Directory.Delete(dir, recursive: true);
                    }
                    else
                    {
                        foreach (var proc in File.ReadAllLines(Path.Combine(dir, "cgroup.procs")))
                        {
                            LabProcesses.Kill(int.Parse(proc, CultureInfo.InvariantCulture));
                        }

                        Directory.Delete(dir); // a cgroup goes with rmdir once empty
                    }

                    swept++;
                }
                catch (IOException)
                {
                    // still busy (a killed process exiting): the next run's sweep takes it
                }
            }
        }

        foreach (var dir in Directory.GetDirectories("/tmp", "loom-lab-tests-*"))
        {
            var parts = Path.GetFileName(dir).Split('-');
            if (parts.Length >= 4 && int.TryParse(parts[3], CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
            {
                foreach (var p in ProcessesMentioning(dir))
                {
                    LabProcesses.Kill(p);
                }

                Directory.Delete(dir, recursive: true);
                swept++;
            }
        }

        return swept;
    }
}
