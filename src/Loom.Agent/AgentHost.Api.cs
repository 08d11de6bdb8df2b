using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Loom.Agent.Cni;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Agent;

internal sealed partial class AgentHost
{
    /// <summary>Listens on the root-only unix socket; returns a handle that stops it.</summary>
    private Socket StartApi(CancellationToken ct)
    {
        Directory.CreateDirectory(config.StateDir);
        File.Delete(config.SocketPath); // a socket file left by a killed agent would make bind fail
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(config.SocketPath));
        File.SetUnixFileMode(config.SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(64);
        _ = Task.Run(() => AcceptLoopAsync(listener, ct), ct);
        return listener;
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException or SocketException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client, ct), ct);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken ct)
    {
        using (client)
        {
            await using var stream = new NetworkStream(client, ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            AgentResponse response;
            try
            {
                var line = await reader.ReadLineAsync(ct).ConfigureAwait(false);
                var request = AgentRequest.Decode(line);
                response = request is null
                    ? new AgentResponse { Error = "empty request" }
                    : await HandleAsync(request, ct).ConfigureAwait(false);
            }
            catch (JsonException e)
            {
                response = new AgentResponse { Error = $"bad request: {e.Message}" };
            }
            catch (Exception e) when (e is IOException or InvalidOperationException && !ct.IsCancellationRequested)
            {
                response = new AgentResponse { Error = e.Message };
            }

            var json = JsonSerializer.Serialize(response, AgentApiJsonContext.Default.AgentResponse) + "\n";
            try
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(json), ct).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The client went away; nothing to tell it.
            }
        }
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
                await store.PutAsync(Kinds.Endpoint, ToEndpoint(ep), cancellationToken: ct).ConfigureAwait(false);
                if (_serviceKind == ServiceBackend.Ebpf)
                {
                    // Before the plugin returns, so the pod's very first packet to a ClusterIP is balanced.
                    await SyncServicesAsync(ct).ConfigureAwait(false);
                }

                Log($"endpoint {ep.Namespace}/{ep.Name} {string.Join(",", ep.Ips)} ({ep.ContainerId[..Math.Min(12, ep.ContainerId.Length)]})");
                return new AgentResponse { Ok = true };
            case "endpoint-del" when request.Endpoint is { } ep:
                var (items, _) = await store.ListAsync(Kinds.Endpoint, ct).ConfigureAwait(false);
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

    private Endpoint ToEndpoint(EndpointRegistration ep) => new()
    {
        Namespace = ep.Namespace,
        Name = string.IsNullOrEmpty(ep.Name) ? ep.ContainerId[..Math.Min(12, ep.ContainerId.Length)] : ep.Name,
        Node = _node,
        ContainerId = ep.ContainerId,
        Interface = ep.Interface,
        IPs = ep.Ips.Select(IPAddress.Parse).ToList(),
        Labels = ep.Labels,
        Ready = true,
    };

    private async Task<AgentStatus> StatusAsync(CancellationToken ct)
    {
        var (items, _) = await store.ListAsync(Kinds.Endpoint, ct).ConfigureAwait(false);
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
                SocketLbCgroup = _serviceKind == ServiceBackend.Ebpf ? config.Cgroup ?? "" : "",
                Services = _serviceState.Count,
                ServiceSyncs = _serviceSyncs,
                Syncs = _syncs,
                LastSync = _lastSync,
                Started = _started,
            };
        }
    }
}
