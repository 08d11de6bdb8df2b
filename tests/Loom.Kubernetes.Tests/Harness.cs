using Loom.Core.Store;

namespace Loom.Kubernetes.Tests;

/// <summary>A source against a replay server through a kubeconfig, mirroring into a fresh in-memory store.</summary>
public sealed class Harness : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(60));
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-k8s-").FullName;
    private Task? _run;

    public Harness(ReplayServer server, string node = "n1")
    {
        Server = server;
        Kubeconfig = WriteKubeconfig(_dir, server.Url);
        Source = KubernetesSource.Create(Options, Store, node, TextWriter.Null);
    }

    public ReplayServer Server { get; }

    public IStore Store { get; } = MemoryStore.Create();

    public string Kubeconfig { get; }

    public KubernetesOptions Options => new()
    {
        Kubeconfig = Kubeconfig, BackoffFirst = TimeSpan.FromMilliseconds(50), BackoffCap = TimeSpan.FromMilliseconds(400), RequestTimeout = TimeSpan.FromSeconds(5),
    };

    public IKubernetesSource Source { get; }

    public CancellationToken Token => _cts.Token;

    public static string WriteKubeconfig(string dir, Uri server, string token = "replay-token")
    {
        var path = Path.Combine(dir, "kubeconfig");
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: replay
              cluster:
                server: {server.GetLeftPart(UriPartial.Authority)}
            contexts:
            - name: replay
              context:
                cluster: replay
                user: loom-agent
            current-context: replay
            users:
            - name: loom-agent
              user:
                token: {token}
            """);
        return path;
    }

    /// <summary>Scripts every list from the fixtures (watches stay open unless scripted).</summary>
    public Harness WithFixtures()
    {
        Server.Default("GET /api/v1/nodes", Reply.Fixture("nodes.json"))
            .Default("GET /api/v1/pods", Reply.Fixture("pods.json"))
            .Default("GET /api/v1/services", Reply.Fixture("services.json"))
            .Default("GET /api/v1/namespaces", Reply.Fixture("namespaces.json"))
            .Default("GET /apis/discovery.k8s.io/v1/endpointslices", Reply.Fixture("endpointslices.json"))
            .Default("GET /apis/networking.k8s.io/v1/networkpolicies", Reply.Fixture("networkpolicies.json"))
            .Default("GET /apis/loom.io/v1alpha1/loomnodes", Reply.Fixture("loomnodes.json"));
        return this;
    }

    public async Task StartAsync(bool waitSynced = true)
    {
        _run = Source.RunAsync(_cts.Token);
        if (waitSynced)
        {
            await Source.WaitSyncedAsync(TimeSpan.FromSeconds(20), _cts.Token);
        }
    }

    /// <summary>Polls until <paramref name="condition"/> holds (10 s at most).</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, $"timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        if (_run is not null)
        {
            try
            {
                await _run;
            }
            catch (OperationCanceledException)
            {
            }
        }

        Source.Dispose();
        await Store.DisposeAsync();
        _cts.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
