using System.Globalization;
using Loom.Core.Model;
using Loom.Core.Validation;

namespace Loom.Core.Services;

/// <summary>
/// The node ports taken and which Service holds each, for assigning a Service's node ports as the API server does: one
/// number belongs to one Service, shared by that Service's ports of the same number (53/TCP and 53/UDP get one node
/// port); a port keeps the node port it had; a failed assignment changes nothing.
/// </summary>
public sealed class NodePortPool
{
    private readonly NodePortAllocator _allocator;
    private readonly Random? _random;
    private readonly Dictionary<int, string> _owners;
    private readonly HashSet<int> _used;

    public NodePortPool(NodePortAllocator allocator, Random? random = null)
        : this(allocator, random, [])
    {
    }

    private NodePortPool(NodePortAllocator allocator, Random? random, Dictionary<int, string> owners)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        _allocator = allocator;
        _random = random;
        _owners = owners;
        _used = [.. owners.Keys];
    }

    public NodePortAllocator Allocator => _allocator;

    /// <summary>Port to the key ("namespace/name") of the Service holding it.</summary>
    public IReadOnlyDictionary<int, string> Owners => _owners;

    public int Count => _owners.Count;

    public string? Owner(int port) => _owners.GetValueOrDefault(port);

    /// <summary>A copy to try assignments on without touching this pool.</summary>
    public NodePortPool Clone() => new(_allocator, _random, new Dictionary<int, string>(_owners));

    /// <summary>
    /// Records a stored Service's node ports and health-check port as its own; a port another Service holds already
    /// stays with that one (callers add the oldest write first).
    /// </summary>
    public void Add(Service service)
    {
        ArgumentNullException.ThrowIfNull(service);
        foreach (var port in HeldBy(service))
        {
            if (_owners.TryAdd(port, service.Key))
            {
                _used.Add(port);
            }
        }
    }

    /// <summary>Gives back every port <paramref name="owner"/> holds (the Service was deleted).</summary>
    public void Release(string owner)
    {
        foreach (var port in _owners.Where(kv => kv.Value == owner).Select(kv => kv.Key).ToList())
        {
            _owners.Remove(port);
            _used.Remove(port);
        }
    }

    /// <summary>
    /// <paramref name="desired"/> with its node ports and health-check port assigned: requested ones if free, the ones
    /// <paramref name="previous"/> (the stored version) had for the same port and protocol, else free ones; a ClusterIP
    /// Service holds none. The Service's old ports no longer used are released.
    /// </summary>
    /// <exception cref="NodePortAllocationException">a requested port is taken or out of range, or the range is full; the pool is unchanged.</exception>
    public Service Assign(Service desired, Service? previous = null)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var owner = desired.Key;
        var released = _owners.Where(kv => kv.Value == owner).Select(kv => kv.Key).ToList();
        foreach (var port in released)
        {
            _owners.Remove(port);
            _used.Remove(port);
        }

        var taken = new List<int>();
        try
        {
            return AssignFree(desired, previous, taken);
        }
        catch (NodePortAllocationException)
        {
            foreach (var port in taken)
            {
                _owners.Remove(port);
                _used.Remove(port);
            }

            foreach (var port in released)
            {
                _owners[port] = owner;
                _used.Add(port);
            }

            throw;
        }
    }

    private Service AssignFree(Service desired, Service? previous, List<int> taken)
    {
        if (desired.Type == ServiceType.ClusterIP)
        {
            return desired with { Ports = [.. desired.Ports.Select(p => p with { NodePort = 0 })], HealthCheckNodePort = 0 };
        }

        // Service port number to its node port: ports of one number share one, as upstream's initNodePorts.
        var byPort = new Dictionary<int, int>();
        var ports = new ServicePort[desired.Ports.Count];
        for (var i = 0; i < ports.Length; i++)
        {
            var p = desired.Ports[i];
            var requested = p.NodePort != 0 ? p.NodePort : Kept(previous, p);
            if (byPort.TryGetValue(p.Port, out var shared) && (requested == 0 || requested == shared))
            {
                ports[i] = p with { NodePort = shared };
                continue;
            }

            if (requested == 0)
            {
                // A later port of the same number may ask for one: that is the one both get.
                requested = desired.Ports.Skip(i + 1).FirstOrDefault(q => q.Port == p.Port && q.NodePort != 0)?.NodePort ?? 0;
            }

            var nodePort = Take(desired.Key, requested, string.Create(CultureInfo.InvariantCulture, $"spec.ports[{i}].nodePort"), taken);
            byPort.TryAdd(p.Port, nodePort);
            ports[i] = p with { NodePort = nodePort };
        }

        var healthCheck = 0;
        if (ServiceValidation.NeedsHealthCheck(desired.Type, desired.ExternalTrafficPolicy))
        {
            var requested = desired.HealthCheckNodePort != 0 ? desired.HealthCheckNodePort
                : previous is not null && ServiceValidation.NeedsHealthCheck(previous.Type, previous.ExternalTrafficPolicy) ? previous.HealthCheckNodePort : 0;
            healthCheck = Take(desired.Key, requested, "spec.healthCheckNodePort", taken);
        }

        return desired with { Ports = ports, HealthCheckNodePort = healthCheck };
    }

    private int Take(string owner, int requested, string field, List<int> taken)
    {
        var port = _allocator.Allocate(_used, requested, field, _random);
        _owners[port] = owner;
        _used.Add(port);
        taken.Add(port);
        return port;
    }

    // The node port the stored version had for this port number and protocol (kubectl apply keeps it: it is not in the file).
    private static int Kept(Service? previous, ServicePort p) =>
        previous is null || previous.Type == ServiceType.ClusterIP ? 0
            : previous.Ports.FirstOrDefault(q => q.Port == p.Port && q.Protocol == p.Protocol)?.NodePort ?? 0;

    private static IEnumerable<int> HeldBy(Service s) =>
        s.Type == ServiceType.ClusterIP ? []
            : s.Ports.Select(p => p.NodePort).Append(s.HealthCheckNodePort).Where(p => p != 0).Distinct();
}
