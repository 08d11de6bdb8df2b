using System.Text;
using Loom.Core.AgentApi;
using Loom.Core.Controllers;
using Loom.Datapath.Services;

namespace Loom.Agent.Services;

/// <summary>What the controller tells <c>loom status</c>, <c>loom services</c> and <c>loom explain service</c>.</summary>
internal sealed partial class ServiceController
{
    public string BackendName => _ops?.BackendName ?? "";

    public int PortCount
    {
        get
        {
            lock (_tableLock)
            {
                return _rows.Count;
            }
        }
    }

    public long Applies => _ops?.Applies ?? 0;

    /// <summary>eBPF only: the lb4 maps' fill levels (recounted at most every 15 s); empty otherwise.</summary>
    public IReadOnlyList<Loom.Datapath.Services.Ebpf.LbMapFill> MapFill() => _ops?.MapFill() ?? [];

    public ControllerStatus Describe()
    {
        var stats = _reconciler?.Stats;
        var error = _reconciler?.Status().FirstOrDefault(r => r.Error is not null)?.Error ?? stats?.LastFullPassError;
        return new ControllerStatus(Name, stats is { Errors: 0 } && error is null,
            $"{PortCount} port(s) by {BackendName}; {stats?.Pending ?? 0} pending, {stats?.Errors ?? 0} failing{ConntrackGcSummary()}",
            Applies, error);
    }

    public List<ServiceInfo> ServiceInfos()
    {
        lock (_tableLock)
        {
            return [.. _rows.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => r.Value).Select(s => new ServiceInfo
            {
                Namespace = s.Name.Namespace,
                Name = s.Name.Name,
                PortName = s.Name.Port,
                ClusterIp = s.Frontend.Address.ToString(),
                Port = s.Frontend.Port,
                Protocol = s.Frontend.Protocol.ToString().ToUpperInvariant(),
                SessionAffinity = s.SessionAffinity.ToString(),
                Endpoints = s.Backends.Select(b => b.ToString()).ToList(),
                LocalEndpoints = s.LocalBackends.Select(b => b.ToString()).ToList(),
                Type = s.Type.ToString(),
                NodePort = s.NodePort,
                ExternalIps = s.ExternalIps.Select(ip => ip.ToString()).ToList(),
                ExternalTrafficPolicy = s.ExternalTrafficPolicy.ToString(),
                InternalTrafficPolicy = s.InternalTrafficPolicy.ToString(),
                HealthCheckNodePort = s.HealthCheckNodePort,
            })];
        }
    }

    /// <summary><c>loom explain service</c>: the frontend, its backends, and what this node's kernel holds for it.</summary>
    public string Explain(string key)
    {
        List<ServicePortState> ports;
        lock (_tableLock)
        {
            ports = [.. _rows.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => r.Value).Where(s => $"{s.Name.Namespace}/{s.Name.Name}" == key)];
        }

        if (ports.Count == 0)
        {
            return $"service {key} is not programmed on {node.Name} (no such service, or no ports)\n";
        }

        var sb = new StringBuilder();
        foreach (var p in ports)
        {
            sb.AppendLine($"Service:   {p.Name}");
            sb.AppendLine($"Frontend:  {p.Frontend.Address}:{p.Frontend.Port}/{p.Frontend.Protocol.ToString().ToUpperInvariant()}  (affinity {p.SessionAffinity})");
            sb.AppendLine($"Backends:  {(p.Backends.Count == 0 ? "none: connections are refused" : string.Join(", ", p.Backends.Select(b => $"{b.Address}:{b.Port}")))}");
            sb.AppendLine($"Node {node.Name}, backend {BackendName}, programmed:");
            sb.AppendLine(_ops!.Explain(p).TrimEnd());
            sb.AppendLine();
        }

        return sb.ToString().TrimEnd() + "\n";
    }
}
