using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Lab.Tests.Services;

/// <summary>
/// One lab for every NodePort test (a bring-up costs most of the class's time): examples/nodeport applied (two whoami
/// replicas on k8s-w1 and k8s-w2, a NodePort, a LoadBalancer with externalTrafficPolicy Local, a UDP NodePort, a
/// ClientIP Service with a 2 s timeout, a client pod on k8s-ctr, a hairpin pod and its Service), then the Services as
/// the store holds them (their node ports were allocated at apply).
/// </summary>
public sealed class NodePortLab : IAsyncLifetime
{
    private LabOptions? _options;
    private LabState? _state;

    public LabState State => _state ?? throw new InvalidOperationException("the lab is not up");

    /// <summary>How long bring-up and apply took (printed by the tests: the class must stay within a few minutes).</summary>
    public TimeSpan BringUp { get; private set; }

    public async Task InitializeAsync()
    {
        var clock = Stopwatch.StartNew();
        _options = TestLab.Options(agents: true) with { ServiceBackend = ServiceProxyMode.Iptables };
        try
        {
            _state = await Lab.UpAsync(_options, TextWriter.Null);
            await Lab.ApplyAsync(_state, NodePortExample("web.yaml"), TextWriter.Null);
            await Lab.ApplyAsync(_state, NodePortExample("hairpin.yaml"), TextWriter.Null);
        }
        catch
        {
            // xunit does not dispose a fixture whose initialization failed: take the lab down here.
            await Lab.DownAsync(_options.LabDir, _options.Prefix);
            _options = null;
            throw;
        }

        BringUp = clock.Elapsed;
    }

    public async Task DisposeAsync()
    {
        if (_options is not null)
        {
            await Lab.DownAsync(_options.LabDir, _options.Prefix);
        }
    }

    public static string NodePortExample(string name) =>
        File.ReadAllText(Path.Combine(Path.GetDirectoryName(ManifestTests.ExamplePath("webpod.yaml"))!, "..", "nodeport", name));

    /// <summary>The Service as the store holds it (node ports included); fails naming it when it is not there.</summary>
    public async Task<Service> ServiceAsync(string name)
    {
        var store = await Lab.OpenStoreAsync(State);
        await using (store)
        {
            var found = (await store.ListAsync(Kinds.Service)).Items.Select(v => v.Value).FirstOrDefault(s => s.Namespace == "default" && s.Name == name);
            return found ?? throw new Xunit.Sdk.XunitException($"Service default/{name} is not in the store");
        }
    }

    /// <summary>The node port of a Service's first port; fails when none was allocated.</summary>
    public async Task<int> NodePortAsync(string name)
    {
        var svc = await ServiceAsync(name);
        var port = svc.Ports[0].NodePort;
        Assert.True(port is >= 30000 and <= 32767, $"Service {name} ({svc.Type}) has node port {port}, not one from 30000-32767");
        return port;
    }

    /// <summary>np-web's replicas as the lab runs them now (a deleted one is replaced: read them again after a delete).</summary>
    public IReadOnlyList<LabPod> WebPods() => [.. State.Pods.Where(p => p.Owner == "np-web").OrderBy(p => p.Node, StringComparer.Ordinal)];

    /// <summary>
    /// Switches every node to <paramref name="backend"/> through its NodeConfig (as <c>loom node config NODE
    /// --service-backend</c> writes it) and waits until each agent reports that backend programming its Services.
    /// </summary>
    public async Task UseBackendAsync(ServiceProxyMode backend)
    {
        var store = await Lab.OpenStoreAsync(State);
        await using (store)
        {
            foreach (var n in State.Nodes)
            {
                await store.PutAsync(Kinds.NodeConfig, new NodeConfig { Node = n.Name, ServiceBackend = backend });
            }
        }

        var want = backend.ToString().ToLowerInvariant();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        foreach (var n in State.Nodes)
        {
            while (true)
            {
                var status = (await AgentClient.SendAsync(Lab.AgentSocket(State, n.Name), new AgentRequest { Op = "status" }, TimeSpan.FromSeconds(5))).Status;
                if (status is not null && status.ServiceBackend.Equals(want, StringComparison.OrdinalIgnoreCase) && status.Services > 0)
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < deadline, $"{n.Name}'s agent reports service backend {status?.ServiceBackend ?? "(no status)"} with {status?.Services} port(s) 30 s after the switch to {want}");
                await Task.Delay(200);
            }
        }
    }
}

/// <summary>A whoami answer: the status code, the pod that answered and the client address it saw.</summary>
public sealed record WhoamiAnswer(int Status, string Hostname, string RemoteIp, string Body)
{
    /// <summary>
    /// One HTTP/1.1 GET over a new connection from a socket made in <paramref name="ns"/> (so it is that namespace's, and
    /// in no node's cgroup: the eBPF backend's socket LB does not translate it, the packets take the tc path).
    /// A connect that does not complete within <paramref name="connectTimeout"/> throws OperationCanceledException.
    /// </summary>
    public static async Task<WhoamiAnswer> GetAsync(NetNsHandle ns, IPEndPoint target, TimeSpan? connectTimeout = null)
    {
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using (var connect = new CancellationTokenSource(connectTimeout ?? TimeSpan.FromSeconds(3)))
        {
            await s.ConnectAsync(target, connect.Token);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await s.SendAsync(Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"), timeout.Token);
        var response = new MemoryStream();
        var buf = new byte[4096];
        int n;
        while (!Complete(response) && (n = await s.ReceiveAsync(buf, timeout.Token)) > 0)
        {
            response.Write(buf, 0, n);
        }

        return Parse(Encoding.UTF8.GetString(response.ToArray()), target);
    }

    // The head and Content-Length bytes of body are in: a server that keeps the connection open is not waited for.
    private static bool Complete(MemoryStream response)
    {
        var text = Encoding.UTF8.GetString(response.GetBuffer(), 0, (int)response.Length);
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return false;
        }

        var length = text[..end].Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        return length is not null && int.TryParse(length[15..].Trim(), System.Globalization.CultureInfo.InvariantCulture, out var body)
            && response.Length - (Encoding.UTF8.GetByteCount(text[..end]) + 4) >= body;
    }

    private static WhoamiAnswer Parse(string text, IPEndPoint target)
    {
        var head = text.Split("\r\n", 2)[0].Split(' ');
        if (head.Length < 2 || !int.TryParse(head[1], System.Globalization.CultureInfo.InvariantCulture, out var status))
        {
            throw new Xunit.Sdk.XunitException($"{target} answered no HTTP response: {text}");
        }

        var body = text.Contains("\r\n\r\n", StringComparison.Ordinal) ? text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..] : "";
        string Field(string name) => body.Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(l => l.StartsWith(name + ": ", StringComparison.Ordinal))?[(name.Length + 2)..] ?? "";
        var remote = Field("RemoteAddr");
        return new WhoamiAnswer(status, Field("Hostname"), remote.Contains(':', StringComparison.Ordinal) ? remote[..remote.LastIndexOf(':')] : remote, body);
    }
}
