using System.Net;
using CsCheck;
using Loom.Core.Model;
using Loom.Core.Services;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Services;

/// <summary>
/// Random assign / release sequences over a small range (so it fills up): no port is ever held by two Services or
/// handed out of range, one node port serves one port number (TCP and UDP of it may share it), and a
/// refused assignment leaves the pool as it was.
/// </summary>
public sealed class NodePortPoolPropertyTests
{
    private const int Min = 30000;
    private const int Max = 30023;

    private static readonly Gen<ServicePort> GenPort =
        Gen.Select(Gen.Int[1, 4], Gen.Bool, Gen.OneOf(Gen.Const(0), Gen.Const(0), Gen.Int[Min - 2, Max + 2]))
            .Select((port, udp, nodePort) => new ServicePort(null, udp ? Protocol.Udp : Protocol.Tcp, port, port, nodePort));

    private static readonly Gen<(int Name, bool Release, ServiceType Type, bool Local, int HealthCheck, ServicePort[] Ports)> GenOp =
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 6].Select(i => i == 0), Gen.Enum<ServiceType>(), Gen.Bool, Gen.OneOf(Gen.Const(0), Gen.Int[Min, Max]), GenPort.Array[1, 4]);

    [Fact]
    public void Any_sequence_of_assign_and_release_never_hands_out_a_duplicate_or_out_of_range_port()
    {
        GenOp.Array[1, 40].Sample(ops =>
        {
            var pool = new NodePortPool(new NodePortAllocator(Min, Max), new Random(7));
            var stored = new Dictionary<string, Service>(StringComparer.Ordinal);
            foreach (var (name, release, type, local, healthCheck, ports) in ops)
            {
                var key = "default/s" + name;
                if (release)
                {
                    pool.Release(key);
                    stored.Remove(key);
                    Check(pool, stored);
                    continue;
                }

                // Only Services the validator passes reach the allocator, as in the lab's apply.
                var desired = new Service
                {
                    Namespace = "default",
                    Name = "s" + name,
                    ClusterIp = IPAddress.Parse("10.96.0.50"),
                    Type = type,
                    Ports = [.. ports.DistinctBy(p => (p.Port, p.Protocol)).Select(p => type == ServiceType.ClusterIP ? p with { NodePort = 0 } : p)],
                    ExternalTrafficPolicy = local && type != ServiceType.ClusterIP ? TrafficPolicy.Local : TrafficPolicy.Cluster,
                };
                desired = desired with { Ports = [.. desired.Ports.Select((p, i) => p with { Name = "p" + i })] };
                if (ServiceValidation.NeedsHealthCheck(desired.Type, desired.ExternalTrafficPolicy))
                {
                    desired = desired with { HealthCheckNodePort = healthCheck };
                }

                if (ServiceValidation.Validate(desired with { HealthCheckNodePort = 1 }).Any(e => e.Field != "spec.healthCheckNodePort"))
                {
                    continue;
                }

                var before = pool.Owners.ToDictionary();
                try
                {
                    stored[key] = pool.Assign(desired, stored.GetValueOrDefault(key));
                }
                catch (NodePortAllocationException)
                {
                    Assert.Equal(before, pool.Owners);
                }

                Check(pool, stored);
            }
        }, iter: 300);
    }

    // The pool holds exactly the stored Services' ports, each in range, each Service's numbers its own.
    private static void Check(NodePortPool pool, Dictionary<string, Service> stored)
    {
        var expected = new Dictionary<int, string>();
        foreach (var (key, s) in stored)
        {
            // node port to the port number it serves
            var numberOf = new Dictionary<int, int>();
            foreach (var p in s.Ports)
            {
                if (s.Type == ServiceType.ClusterIP)
                {
                    Assert.Equal(0, p.NodePort);
                    continue;
                }

                Assert.InRange(p.NodePort, Min, Max);
                Assert.Equal(numberOf.GetValueOrDefault(p.NodePort, p.Port), p.Port);
                numberOf[p.NodePort] = p.Port;
            }

            var held = numberOf.Keys.ToList();
            if (ServiceValidation.NeedsHealthCheck(s.Type, s.ExternalTrafficPolicy))
            {
                Assert.InRange(s.HealthCheckNodePort, Min, Max);
                held.Add(s.HealthCheckNodePort);
            }
            else
            {
                Assert.Equal(0, s.HealthCheckNodePort);
            }

            foreach (var port in held)
            {
                Assert.True(expected.TryAdd(port, key), $"port {port} handed to {key} and {expected.GetValueOrDefault(port)}");
            }
        }

        Assert.Equal(expected.OrderBy(kv => kv.Key), pool.Owners.OrderBy(kv => kv.Key));
    }
}
