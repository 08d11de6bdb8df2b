using System.Net;
using Loom.Agent.Cni;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Core.Validation;
using Loom.Linux;

namespace Loom.Agent;

internal sealed partial class AgentHost
{
    /// <summary>Listens on the root-only unix socket (<see cref="AgentApiServer"/>); returns a handle that stops it.</summary>
    private AgentApiServer StartApi(CancellationToken ct)
    {
        Directory.CreateDirectory(config.StateDir);
        return AgentApiServer.Start(config.SocketPath, HandleAsync, Log, ct);
    }

    private async Task<AgentResponse> HandleAsync(AgentRequest request, CancellationToken ct)
    {
        switch (request.Op)
        {
            case "status":
                return new AgentResponse { Ok = true, Status = await StatusAsync(ct).ConfigureAwait(false) };
            case "services":
                return new AgentResponse { Ok = true, Services = ServiceInfos() };
            case "explain-service" when request.Service is { } key:
                return new AgentResponse { Ok = true, Text = ExplainService(key) };
            case "endpoint-add" when request.Endpoint is { } ep:
                // Checked as the API server checks a pod: what is stored here reaches every node's service rules.
                if (ToEndpoint(ep, out var endpoint) is { } invalid)
                {
                    return new AgentResponse { Error = $"endpoint refused: {invalid}" };
                }

                var put = await store.PutAsync(Kinds.Endpoint, endpoint, cancellationToken: ct).ConfigureAwait(false);
                if (_serviceKind == ServiceProxyMode.Ebpf)
                {
                    // Before the plugin returns, so the pod's very first packet to a ClusterIP is balanced.
                    await SyncServicesAsync(put.Revision, ct).ConfigureAwait(false);
                }

                Log($"endpoint {ep.Namespace}/{ep.Name} {string.Join(",", ep.Ips)} ({ep.ContainerId[..Math.Min(12, ep.ContainerId.Length)]})");
                return new AgentResponse { Ok = true };
            case "endpoint-del" when request.Endpoint is { } ep:
                var (items, _) = await store.ListValidAsync(Kinds.Endpoint, (_, _) => { }, ct).ConfigureAwait(false);
                foreach (var e in items.Where(e => e.Value.Node == _node && e.Value.ContainerId == ep.ContainerId && e.Value.Interface == ep.Interface))
                {
                    await store.DeleteAsync(Kinds.Endpoint, e.Key, cancellationToken: ct).ConfigureAwait(false);
                    Log($"endpoint {e.Key} removed");
                }

                return new AgentResponse { Ok = true };
            default:
                return new AgentResponse { Error = $"unknown op \"{request.Op}\"" };
        }
    }

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
            Node = _node,
            ContainerId = ep.ContainerId,
            Interface = ep.Interface,
            IPs = ips,
            Labels = ep.Labels,
            Ready = true,
        };
        bad.AddRange(ObjectValidation.Validate(endpoint).Select(e => e.ToString()));
        return bad.Count == 0 ? null : string.Join("; ", bad);
    }

    private async Task<AgentStatus> StatusAsync(CancellationToken ct)
    {
        var (items, _) = await store.ListValidAsync(Kinds.Endpoint, (_, _) => { }, ct).ConfigureAwait(false);
        var endpoints = items.Select(v => v.Value).Where(e => e.Node == _node)
            .Select(e => new EndpointRegistration
            {
                Namespace = e.Namespace, Name = e.Name, ContainerId = e.ContainerId, Interface = e.Interface,
                Ips = e.IPs.Select(i => i.ToString()).ToList(), Labels = e.Labels,
            }).ToList();
        var ipamDir = Path.Combine(config.IpamDataDir, NodeCniConfig.NetworkName);
        var used = Directory.Exists(ipamDir) ? Directory.EnumerateFiles(ipamDir).Count(f => IPAddress.TryParse(Path.GetFileName(f), out _)) : 0;
        lock (_stateLock)
        {
            return new AgentStatus
            {
                Node = _node,
                Healthy = _vxlan is not null && _lastSync > DateTimeOffset.UtcNow.AddMinutes(-2),
                Store = config.Store.Type == "etcd" ? $"etcd {string.Join(",", config.Store.Endpoints)}" : $"sqlite {config.Store.Path}",
                UnderlayInterface = config.Iface,
                UnderlayIp = _underlayIp.ToString(),
                PodCidr = _podCidr.ToString(),
                IpamUsed = used,
                IpamCapacity = (1 << (32 - _podCidr.PrefixLength)) - 3, // network, gateway, broadcast
                RoutingMode = _cluster.Routing.ToString().ToLowerInvariant(),
                TunnelDevice = _vxlan?.Name ?? "",
                VtepMac = MacAddress.Format(_vxlan?.HardwareAddr),
                IpMasq = _ipMasq,
                Peers = _peers.Select(p => new TunnelPeer(p.Node, p.PodCidr.ToString(), p.UnderlayIp.ToString(), MacAddress.Format(p.VtepMac))).ToList(),
                Endpoints = endpoints,
                ServiceBackend = _services?.Name ?? "",
                SocketLbCgroup = _serviceKind == ServiceProxyMode.Ebpf ? config.Cgroup ?? "" : "",
                Services = _serviceState.Count,
                ServiceSyncs = _serviceSyncs,
                Syncs = _syncs,
                LastSync = _lastSync,
                Started = _started,
            };
        }
    }
}
