using System.Net;
using System.Net.Sockets;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;
using Loom.Core.Model;

namespace Loom.Workloads;

/// <summary>What the cluster DNS knows at the moment of a query: Services (and endpoints, to tell the asking pod's namespace).</summary>
public sealed record DnsView(IReadOnlyList<Service> Services, IReadOnlyList<Endpoint> Endpoints);

/// <summary>An answer: whether the name exists, and its A records (empty for a name that exists without any).</summary>
public sealed record DnsAnswer(bool Exists, IReadOnlyList<IPAddress> Addresses)
{
    public static DnsAnswer NxDomain { get; } = new(false, []);
}

/// <summary>
/// The names CoreDNS's kubernetes plugin answers for ClusterIP Services: <c>svc.ns.svc.cluster.local</c>, plus the
/// short forms <c>svc</c> (in the asking pod's namespace) and <c>svc.ns</c> for clients that query them bare. Every
/// other name is NXDOMAIN: the lab has no upstream to forward to (no packet leaves it), and a name it does not know
/// must never be a SERVFAIL.
/// </summary>
public static class ClusterDnsResolver
{
    public const string Domain = "cluster.local";

    public static DnsAnswer Resolve(string name, DnsView view, string clientNamespace)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(view);
        var labels = name.TrimEnd('.').ToLowerInvariant().Split('.', StringSplitOptions.RemoveEmptyEntries);
        (string Ns, string Svc)? wanted = labels switch
        {
            [var svc, var ns, "svc", "cluster", "local"] => (ns, svc),
            [var svc, var ns, "svc"] => (ns, svc),
            [var svc, var ns] => (ns, svc),
            [var svc] => (clientNamespace, svc),
            _ => null,
        };
        if (wanted is not { } w)
        {
            return DnsAnswer.NxDomain;
        }

        var service = view.Services.FirstOrDefault(s =>
            string.Equals(s.Namespace, w.Ns, StringComparison.OrdinalIgnoreCase) && string.Equals(s.Name, w.Svc, StringComparison.OrdinalIgnoreCase));
        return service is null ? DnsAnswer.NxDomain : new DnsAnswer(true, [service.ClusterIp]);
    }

    /// <summary>The namespace of the pod that owns <paramref name="client"/>, or "default".</summary>
    public static string NamespaceOf(IPAddress? client, DnsView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        if (client is null)
        {
            return "default";
        }

        var ip = client.IsIPv4MappedToIPv6 ? client.MapToIPv4() : client;
        return view.Endpoints.FirstOrDefault(e => e.IPs.Contains(ip))?.Namespace ?? "default";
    }
}

/// <summary>The cluster DNS server (UDP and TCP) on ARSoft.Tools.Net's DnsServer, answering each query from the view <c>view</c> hands it (a <see cref="ClusterDnsCache"/>).</summary>
public sealed class ClusterDnsServer : IDisposable
{
    private readonly DnsServer _server;
    private readonly Func<CancellationToken, Task<DnsView>> _view;
    private readonly TextWriter _log;

    public ClusterDnsServer(IPEndPoint listen, Func<CancellationToken, Task<DnsView>> view, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(listen);
        _view = view ?? throw new ArgumentNullException(nameof(view));
        _log = log ?? TextWriter.Null;
        _server = new DnsServer(new UdpServerTransport(listen), new TcpServerTransport(listen));
        _server.QueryReceived += OnQueryAsync;
        _server.ExceptionThrown += (_, e) =>
        {
            lock (_log)
            {
                _log.WriteLine($"dns: {e.Exception.Message}");
                _log.Flush();
            }

            return Task.CompletedTask;
        };
    }

    /// <summary>Time to live of every answer: CoreDNS's default for the kubernetes plugin.</summary>
    public int Ttl { get; init; } = 5;

    public void Start() => _server.Start();

    public void Dispose() => _server.Stop();

    private async Task OnQueryAsync(object sender, QueryReceivedEventArgs e)
    {
        if (e.Query is not DnsMessage query)
        {
            return;
        }

        var response = query.CreateResponseInstance();
        // CoreDNS sets RA (resolvers such as nslookup warn "recursion not available" otherwise).
        response.IsRecursionAllowed = true;
        if (query.Questions.Count != 1)
        {
            response.ReturnCode = ReturnCode.FormatError;
            e.Response = response;
            return;
        }

        DnsView view;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            view = await _view(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException or System.Data.Common.DbException)
        {
            // The store is unreachable: that is a server failure, not a missing name.
            response.ReturnCode = ReturnCode.ServerFailure;
            e.Response = response;
            Log($"store unreadable: {ex.Message}");
            return;
        }

        var q = query.Questions[0];
        var client = (e.RemoteEndpoint as IPEndPoint)?.Address;
        var answer = ClusterDnsResolver.Resolve(q.Name.ToString(), view, ClusterDnsResolver.NamespaceOf(client, view));
        response.IsAuthoritiveAnswer = true;
        if (!answer.Exists)
        {
            response.ReturnCode = ReturnCode.NxDomain;
        }
        else
        {
            response.ReturnCode = ReturnCode.NoError;
            if (q.RecordType is RecordType.A or RecordType.Any)
            {
                foreach (var a in answer.Addresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork))
                {
                    response.AnswerRecords.Add(new ARecord(q.Name, Ttl, a));
                }
            }
        }

        Log($"{client} {q.RecordType} {q.Name} -> {(answer.Exists ? string.Join(",", answer.Addresses) : "NXDOMAIN")}");
        e.Response = response;
    }

    private void Log(string line)
    {
        lock (_log)
        {
            _log.WriteLine($"{DateTimeOffset.UtcNow:O} {line}");
            _log.Flush();
        }
    }
}
