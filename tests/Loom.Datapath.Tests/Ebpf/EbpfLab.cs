using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Linux;
using Loom.Linux.Bpf;
using Loom.Testing;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// A node namespace and N pod namespaces for the eBPF load balancer. Routed mode: pod i is 10.244.i.2 behind veth{i}
/// (node end 10.244.i.1). Bridge mode (flannel's cni0): every host-side veth is a port of the bridge cni0 10.244.0.1/24
/// and pod i is 10.244.0.(10+i). The node forwards (ip_forward=1), as a real node does. Every pod answers TCP with
/// "podN\n" and then echoes, and UDP with "podN\n". The tc programs go on the host-side veths inside the node namespace;
/// the cgroup programs on a cgroup of this lab's own. Nothing is created outside these namespaces, this cgroup and the
/// lab's pin directory, all removed on Dispose.
/// </summary>
internal sealed partial class EbpfLab : IDisposable
{
    public const string PinBase = "loom-test-";
    public const string CgroupRoot = "/sys/fs/cgroup/unified";

    private static readonly Lazy<int> Swept = new(Sweep);
    private static int _counter;

    private readonly PodNetwork _net;
    private readonly List<int> _hostIfindex = [];

    public EbpfLab(bool bridge, int pods, params int[] ports)
    {
        _ = Swept.Value;
        Bridge = bridge;
        PinDirectory = Path.Combine(BpfFs.DefaultRoot, UniqueName("lb4"));
        _net = new PodNetwork("ebpf");
        try
        {
            var nl = Node.Netlink;
            Sysctl("net.ipv4.ip_forward=1");
            Sysctl("net.ipv4.conf.all.send_redirects=0");
            int? cni0 = null;
            if (bridge)
            {
                cni0 = nl.LinkAdd(new BridgeSpec("cni0")).Index;
                nl.AddrAdd(cni0.Value, IPAddress.Parse("10.244.0.1"), 24);
                nl.LinkSetUp(cni0.Value);
            }

            for (var i = 1; i <= pods; i++)
            {
                _hostIfindex.Add(_net.AddPod(PodIp(i), Gateway(i), cni0));
                foreach (var port in ports)
                {
                    _net.Serve(i, port, $"pod{i}\n", echo: true);
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public bool Bridge { get; }

    public TestNetns Node => _net.Node;

    public string PinDirectory { get; }

    /// <summary>The lab's own cgroup (created on first use), for the socket-level LB.</summary>
    public string Cgroup => _cgroup ??= CreateCgroup();

    private string? _cgroup;

    public IReadOnlyList<int> HostIfindexes => _hostIfindex;

    public TestNetns Pod(int i) => _net.Pod(i);

    public int HostIfindex(int i) => _hostIfindex[i - 1];

    public IPAddress PodIp(int i) => Bridge
        ? IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.244.0.{10 + i}"))
        : IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.244.{i}.2"));

    public IPAddress Gateway(int i) => Bridge
        ? IPAddress.Parse("10.244.0.1")
        : IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.244.{i}.1"));

    public static string ObjectDirectory =>
        Environment.GetEnvironmentVariable("LOOM_BPF_DIR") is { Length: > 0 } env ? env : Path.Combine(RepoPaths.Root, "out", "bpf");

    public static string ObjectPath(string file)
    {
        var path = Path.Combine(ObjectDirectory, file);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: run `make build` (it runs make -C bpf)");
    }

    public ServicePortState Service(string name, string clusterIp, int port, int[] pods, Protocol protocol = Protocol.Tcp, SessionAffinity affinity = SessionAffinity.None) =>
        PodNetwork.Service(name, clusterIp, port, pods.Select(PodIp), protocol, affinity);

    public void InNode(Action action) => Node.Run(action);

    public T InNode<T>(Func<T> func) => Node.Run(func);

    public static string UniqueName(string tag) =>
        string.Create(CultureInfo.InvariantCulture, $"{RunPrefix.For(PinBase)}{Interlocked.Increment(ref _counter)}-{tag}");

    // ---------------------------------------------------------------- clients

    /// <summary>A TCP connection from pod <paramref name="client"/> (in-process socket in its namespace); the greeting is read.</summary>
    public (Socket Socket, string Greeting) OpenTcp(int client, IPAddress ip, int port, int timeoutMs = 3000)
    {
        var s = PodNetwork.Connect(Pod(client), ip, port, timeoutMs);
        try
        {
            s.ReceiveTimeout = timeoutMs;
            return (s, ReadLine(s));
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="text"/> on an open connection and returns the echo.</summary>
    public static string Echo(Socket s, string text)
    {
        s.Send(Encoding.ASCII.GetBytes(text + "\n"));
        return ReadLine(s);
    }

    public string Tcp(int client, IPAddress ip, int port, int timeoutMs = 3000)
    {
        var (s, greeting) = OpenTcp(client, ip, port, timeoutMs);
        s.Dispose();
        return greeting;
    }

    public string? Udp(int client, IPAddress ip, int port, int timeoutMs = 2000) => PodNetwork.Udp(Pod(client), ip, port, timeoutMs)?.Trim();

    /// <summary>How a TCP connect from pod <paramref name="client"/> ends: "refused", "timeout", an error name, or the answer.</summary>
    public (string Outcome, TimeSpan Elapsed) TcpOutcome(int client, IPAddress ip, int port, int timeoutMs = 3000)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            return (Tcp(client, ip, port, timeoutMs), sw.Elapsed);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return ("refused", sw.Elapsed);
        }
        catch (SocketException e)
        {
            return (e.SocketErrorCode.ToString(), sw.Elapsed);
        }
        catch (TimeoutException)
        {
            return ("timeout", sw.Elapsed);
        }
    }

    /// <summary>
    /// Runs <c>bash -c script</c> as a child process moved into the lab's cgroup before it starts (it waits on stdin
    /// until moved), inside pod <paramref name="client"/>'s network namespace.
    /// </summary>
    public ShellRun BashInCgroup(int client, string script, int timeoutMs = 20_000) =>
        RunInCgroup(client, [Shell.Require("bash"), "-c", script], timeoutMs);

    public ShellRun RunInCgroup(int client, string[] argv, int timeoutMs = 20_000) =>
        Shell.InCgroupAndNetns(Pod(client).Name, Cgroup, argv, timeoutMs);

    public void Dispose()
    {
        _net.Dispose();
        BpfFs.RemoveTree(PinDirectory);
        if (_cgroup is not null)
        {
            Shell.WaitFor(() => TryRmdir(_cgroup), TimeSpan.FromSeconds(5));
        }
    }

    private static string ReadLine(Socket s)
    {
        var sb = new StringBuilder();
        var buf = new byte[1];
        while (s.Receive(buf) == 1 && buf[0] != (byte)'\n')
        {
            sb.Append((char)buf[0]);
        }

        return sb.ToString();
    }

    private void Sysctl(string setting)
    {
        var r = Shell.InNetns(Node.Name, [Shell.Require("sysctl"), "-qw", setting]);
        if (!r.Ok)
        {
            throw new InvalidOperationException(r.ToString());
        }
    }

    private static string CreateCgroup()
    {
        var path = Path.Combine(CgroupRoot, UniqueName("lb"));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Pin trees and cgroups named loom-test-&lt;dead pid&gt;-* (from killed runs).</summary>
    private static int Sweep()
    {
        var n = 0;
        foreach (var root in new[] { BpfFs.DefaultRoot, CgroupRoot })
        {
            if (!Directory.Exists(root))
            {
                continue;
            }

            foreach (var p in Directory.GetFileSystemEntries(root, PinBase + "*"))
            {
                if (!RunPrefix.TryParsePid(Path.GetFileName(p), PinBase, out var pid) || pid == Environment.ProcessId || RunPrefix.IsAlive(pid))
                {
                    continue;
                }

                if (root == CgroupRoot)
                {
                    TryRmdir(p);
                }
                else
                {
                    BpfFs.RemoveTree(p);
                }

                n++;
            }
        }

        return n;
    }

    private static bool TryRmdir(string path) => rmdir(path) == 0 || Marshal.GetLastPInvokeError() == 2;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rmdir(string path);
}
