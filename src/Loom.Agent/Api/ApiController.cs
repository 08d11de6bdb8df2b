using System.Net;
using System.Text.Json;
using Loom.Agent.Flows;
using Loom.Agent.Policy;
using Loom.Agent.Services;
using Loom.Core.AgentApi;
using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Core.Validation;

namespace Loom.Agent.Api;

/// <summary>
/// The root-only unix socket loom-cni and the CLI talk to (<see cref="AgentApiServer"/>): status, the Services this
/// node programs, explain, its recent flows, and pods' endpoints registered and removed by the CNI plugin.
/// </summary>
internal sealed class ApiController(NodeContext node, GuardedStore store, AgentLoops loops, ServiceController services, Func<CancellationToken, Task<AgentStatus>> status,
    Action? podAdded = null, PolicyController? policy = null, FlowController? flows = null)
    : IController, IDisposable
{
    /// <summary>
    /// The deadline of an ADD's endpoint write: the plugin must hear "try again later" well inside the runtime's
    /// timeout, not hang on a frozen store until its own.
    /// </summary>
    internal static readonly TimeSpan EndpointWriteDeadline = TimeSpan.FromSeconds(1);

    private AgentApiServer? _server;
    private long _requests;

    public string Name => "api";

    public Task StartAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(node.Config.StateDir);
        _server ??= AgentApiServer.Start(node.Config.SocketPath, HandleAsync, loops.Log, ct);
        return Task.CompletedTask;
    }

    public Task RunAsync(CancellationToken ct) => Task.Delay(Timeout.Infinite, ct);

    public ControllerStatus Describe() => new(Name, _server is not null, node.Config.SocketPath, Interlocked.Read(ref _requests));

    public void Dispose() => _server?.Dispose();

    private async Task<AgentResponse> HandleAsync(AgentRequest request, CancellationToken ct)
    {
        Interlocked.Increment(ref _requests);
        switch (request.Op)
        {
            case "status":
                return new AgentResponse { Ok = true, Status = await status(ct).ConfigureAwait(false) };
            case "services":
                return new AgentResponse { Ok = true, Services = services.ServiceInfos() };
            case "explain-service" when request.Service is { } key:
                return new AgentResponse { Ok = true, Text = services.Explain(key) };
            case "explain-policy" when request.Pod is { } pod:
                return policy is null
                    ? new AgentResponse { Error = "this agent runs no policy controller" }
                    : new AgentResponse { Ok = true, Text = policy.Explain(pod) };
            case "flows":
                return flows?.Query(request.Flows ?? new Core.Flows.FlowQuery()) is { } found
                    ? new AgentResponse { Ok = true, Flows = found.Flows, LostEvents = found.Lost, FlowsInstance = found.Instance, FlowsCapped = found.Capped }
                    : new AgentResponse { Error = $"flow events are off on node {node.Name} (the agent's flowEvents)" };
            case "endpoint-add" when request.Endpoint is { } ep:
                // Checked as the API server checks a pod: what is stored here reaches every node's service rules.
                if (ToEndpoint(ep, out var endpoint) is { } invalid)
                {
                    return new AgentResponse { Error = $"endpoint refused: {invalid}" };
                }

                // No ADD without the store (Cilium serves ADD without its kvstore): IPAM is the node's own, but Services,
                // policy and the other nodes learn of a pod only from its stored endpoint, so a pod plumbed now would be
                // unknown to policy (its identity) and to every Service until the store returns. The runtime retries
                // on code 11; the plugin rolls its veth and address back.
                if (store.Health.Outage is { } outage)
                {
                    return new AgentResponse { Error = StoreDown(outage.Since, outage.Reason) };
                }

                PutResult put;
                try
                {
                    put = await store.WithDeadline(EndpointWriteDeadline).PutOrUndoAsync(Kinds.Endpoint.Name, Kinds.Endpoint.KeyOf(endpoint),
                        JsonSerializer.Serialize(endpoint, Kinds.Endpoint.TypeInfo), ct).ConfigureAwait(false);
                }
                catch (Exception e) when (!ct.IsCancellationRequested && StoreHealth.IsOutage(e))
                {
                    return new AgentResponse { Error = StoreDown(store.Health.Outage?.Since ?? DateTimeOffset.UtcNow, $"{e.GetType().Name}: {e.Message}") };
                }

                if (services.Kind == ServiceProxyMode.Ebpf)
                {
                    // Before the plugin returns, so the pod's very first packet to a ClusterIP is balanced.
                    await services.WaitForEndpointAsync(put.Revision, ct).ConfigureAwait(false);
                }

                podAdded?.Invoke();
                if (policy is not null
                    && await policy.EndpointAddedAsync(endpoint.Key, put.Revision, ct).ConfigureAwait(false) is { } notInPlace)
                {
                    // Before the plugin returns: the pod's first packet already meets its policy (and its identity).
                    return new AgentResponse { Error = $"endpoint {endpoint.Key}: network policy not in place: {notInPlace}" };
                }

                loops.Log($"endpoint {ep.Namespace}/{ep.Name} {string.Join(",", ep.Ips)} ({ep.ContainerId[..Math.Min(12, ep.ContainerId.Length)]})");
                return new AgentResponse { Ok = true };
            case "endpoint-del" when request.Endpoint is { } ep:
                var (items, _) = await store.ListValidAsync(Kinds.Endpoint, (_, _) => { }, ct).ConfigureAwait(false);
                foreach (var e in items.Where(e => e.Value.Node == node.Name && e.Value.ContainerId == ep.ContainerId && e.Value.Interface == ep.Interface))
                {
                    await store.DeleteAsync(Kinds.Endpoint, e.Key, cancellationToken: ct).ConfigureAwait(false);
                    loops.Log($"endpoint {e.Key} removed");
                }

                return new AgentResponse { Ok = true };
            default:
                return new AgentResponse { Error = $"unknown op \"{request.Op}\"" };
        }
    }

    private static string StoreDown(DateTimeOffset since, string reason) =>
        $"the store is unreachable (since {since:yyyy-MM-ddTHH:mm:ssZ}: {reason}); endpoint not stored, try again later";

    /// <summary>The endpoint a registration describes, or why it cannot be stored (one line).</summary>
    private string? ToEndpoint(EndpointRegistration ep, out Endpoint endpoint)
    {
        var ips = new List<IPAddress>();
        var bad = new List<string>();
        var texts = ep.Ips ?? [];
        for (var i = 0; i < texts.Count; i++)
        {
            if (IPAddress.TryParse(texts[i], out var ip))
            {
                ips.Add(ip);
            }
            else
            {
                bad.Add($"ips[{i}]: is not an IP address"); // not echoed: the text may hold anything
            }
        }

        endpoint = new Endpoint
        {
            Namespace = ep.Namespace,
            Name = string.IsNullOrEmpty(ep.Name) ? ep.ContainerId[..Math.Min(12, ep.ContainerId.Length)] : ep.Name,
            Node = node.Name,
            ContainerId = ep.ContainerId,
            Interface = ep.Interface,
            IPs = ips,
            Labels = ep.Labels,
            Ports = Ports(ep.Ports ?? [], bad),
            Ready = true,
        };
        bad.AddRange(ObjectValidation.Validate(endpoint).Select(e => e.ToString()));
        return bad.Count == 0 ? null : string.Join("; ", bad);
    }

    // As the API server checks a pod's container ports: a name is an IANA_SVC_NAME (unique in the pod), the port
    // 1-65535, the protocol TCP or UDP (the ones Loom's datapath carries).
    private static List<ContainerPort> Ports(IReadOnlyList<EndpointPortRegistration> given, List<string> bad)
    {
        var ports = new List<ContainerPort>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < given.Count; i++)
        {
            var p = given[i];
            var where = $"ports[{i}]";
            var before = bad.Count;
            if (p.Name is { } name)
            {
                bad.AddRange(NameValidation.IsValidPortName(name).Select(m => FieldError.Invalid(where + ".name", name, m).ToString()));
                if (bad.Count == before && !names.Add(name))
                {
                    bad.Add(FieldError.Duplicate(where + ".name", name).ToString());
                }
            }

            bad.AddRange(NameValidation.IsValidPortNum(p.ContainerPort).Select(m => FieldError.Invalid(where + ".containerPort", p.ContainerPort, m).ToString()));
            var errors = new List<FieldError>();
            var protocol = ServiceValidation.Protocol(errors, p.Protocol, where + ".protocol");
            bad.AddRange(errors.Select(e => e.ToString()));

            if (bad.Count == before)
            {
                ports.Add(new ContainerPort(p.Name, p.ContainerPort, protocol!.Value));
            }
        }

        return ports;
    }
}
