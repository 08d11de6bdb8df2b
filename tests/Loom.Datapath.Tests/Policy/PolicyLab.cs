using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Policy;
using Loom.Datapath.Policy;
using Loom.Datapath.Tests.Ebpf;
using Loom.Datapath.Tests.Routing;
using Loom.Linux.Bpf;
using Loom.Testing;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Policy;

/// <summary>
/// <see cref="RoutedNodesLab"/> with the policy programs on node 1's two pod veths, enforcement on, a service range
/// (10.96.0.0/16) and an identity cache: pod (n, i) has identity 1000 + 10n + i, node 1's addresses are Host, node 2's
/// RemoteNode; the external server is World. Endpoint ids: pod (1, i) is endpoint i. Pins in a per-run directory.
/// </summary>
internal sealed class PolicyLab : IDisposable
{
    public const string ServiceRange = "10.96.0.0/16";

    /// <param name="pinDirectory">The policy's pins (default: a per-run directory on bpffs).</param>
    /// <param name="eventsDirectory">The shared flow-event pins (default: none, the events maps are the object's own).</param>
    public PolicyLab(string? pinDirectory = null, string? eventsDirectory = null)
    {
        Lab = new RoutedNodesLab();
        try
        {
            Policy = new BpfPolicy(new PolicyDatapathOptions
            {
                PinDirectory = pinDirectory ?? Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("pol")),
                ObjectDirectory = EbpfLab.ObjectDirectory,
                EventsDirectory = eventsDirectory,
            });
            Node.Run(() =>
            {
                Policy.AttachEndpoint(Lab.Lxc(1, 1));
                Policy.AttachEndpoint(Lab.Lxc(1, 2));
                Policy.SetConfig(enabled: true, allowHost: true, IPNetwork.Parse(ServiceRange));
                Policy.SyncIpcache(new Dictionary<IPNetwork, uint>
                {
                    [Host(PodIp(1, 1))] = Identity(1, 1),
                    [Host(PodIp(1, 2))] = Identity(1, 2),
                    [Host(PodIp(2, 1))] = Identity(2, 1),
                    [Host(PodIp(2, 2))] = Identity(2, 2),
                    [Host(NodeIp(1))] = ReservedIdentity.Host,
                    [Host(RouterIp(1))] = ReservedIdentity.Host,
                    [Host(NodeIp(2))] = ReservedIdentity.RemoteNode,
                    [Host(RouterIp(2))] = ReservedIdentity.RemoteNode,
                });
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public RoutedNodesLab Lab { get; }

    public BpfPolicy Policy { get; } = null!;

    public Loom.Testing.TestNetns Node => Lab.Node(1);

    public static uint Identity(int n, int i) => (uint)(1000 + (10 * n) + i);

    public static IPNetwork Host(IPAddress ip) => new(ip, 32);

    public static PolicyRule Tcp(PolicyDirection d, uint identity, ushort port, byte bits = 16) => new(d, identity, (byte)ProtocolType.Tcp, port, bits);

    public static PolicyRule Udp(PolicyDirection d, uint identity, ushort port) => new(d, identity, (byte)ProtocolType.Udp, port, 16);

    /// <summary>Pod (1, i) as endpoint i with these enforcements and entries.</summary>
    public void Endpoint(int i, bool ingress, bool egress, PolicyRule[]? rules = null, PolicyCidr[]? cidrs = null) => Node.Run(() =>
    {
        Policy.SetEndpoint(Lab.Lxc(1, i), (uint)i, Identity(1, i), ingress, egress);
        Policy.SyncEndpointRules((uint)i, rules ?? [], cidrs ?? []);
    });

    public void Rules(int i, params PolicyRule[] rules) => Node.Run(() => Policy.SyncEndpointRules((uint)i, rules, []));

    public IReadOnlyDictionary<PolicyReason, ulong> Counters() => Node.Run(Policy.Counters);

    /// <summary>Whether a TCP connection from <paramref name="from"/> to ip:port completes (the handshake's both ways pass).</summary>
    public static bool Connects(TestNetns from, IPAddress ip, int port = Port, int timeoutMs = 1500)
    {
        try
        {
            using var s = PodNetwork.Connect(from, ip, port, timeoutMs);
            return true;
        }
        catch (Exception e) when (e is TimeoutException or SocketException)
        {
            return false;
        }
    }

    /// <summary>The lab servers' answer over TCP to ip:port (the address they saw), or null if no connection.</summary>
    public static string? Who(TestNetns from, IPAddress ip, int port = Port, int timeoutMs = 1500)
    {
        try
        {
            using var s = PodNetwork.Connect(from, ip, port, timeoutMs);
            s.ReceiveTimeout = 3000;
            var buf = new byte[64];
            var sb = new StringBuilder();
            int r;
            while ((r = s.Receive(buf)) > 0)
            {
                sb.Append(Encoding.ASCII.GetString(buf, 0, r));
            }

            return sb.ToString().Trim();
        }
        catch (Exception e) when (e is TimeoutException or SocketException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        if (Policy is { } p)
        {
            try
            {
                Node.Run(p.Remove);
            }
            finally
            {
                Lab.Dispose();
            }
        }
        else
        {
            Lab.Dispose();
        }
    }
}
