using System.Net;
using System.Net.Sockets;
using Loom.Core.Policy;
using Loom.Datapath.Flows;
using Loom.Datapath.Policy;
using Loom.Linux;
using Loom.Linux.Bpf;

namespace Loom.Bench.Flows;

/// <summary>
/// A node namespace and two routed pods (pod i at 10.200.i.2/24 behind veth{i}, the node at 10.200.i.1), policy.o on
/// both host veths with enforcement on and pod 2 isolated on ingress except for pod 1 on the server port, the flow-event
/// maps shared in the run's events directory. Names lbf&lt;pid&gt;-*: namespaces and the bpffs directory, all removed on
/// Dispose (a killed run's by the next start).
/// </summary>
internal sealed class FlowsTopology : IDisposable
{
    public const string Base = "lbf";
    public const int Port = 7000;

    private readonly List<(string Name, NetNsHandle Handle)> _namespaces = [];
    private readonly string _pins;

    public FlowsTopology()
    {
        var prefix = RunPrefix.For(Base);
        _pins = Path.Combine(BpfFs.DefaultRoot, prefix + "pins");
        try
        {
            Node = Namespace(prefix + "node");
            Pod1 = Namespace(prefix + "pod1");
            Pod2 = Namespace(prefix + "pod2");
            using (var nl = Netlink.OpenIn(Node))
            {
                nl.LinkSetUp(nl.LinkByName("lo")!.Index);
                Veth1 = AddPod(nl, 1, Pod1);
                Veth2 = AddPod(nl, 2, Pod2);
            }

            NetNs.Run(Node, () => Sysctl.Set("net.ipv4.ip_forward", "1"));
            EventsDirectory = FlowEventMaps.DirectoryFor(_pins);
            FlowEventMaps.Ensure(EventsDirectory);
            Policy = new BpfPolicy(new PolicyDatapathOptions { PinDirectory = Path.Combine(_pins, "policy"), EventsDirectory = EventsDirectory });
            NetNs.Run(Node, () =>
            {
                Policy.AttachEndpoint(Veth1);
                Policy.AttachEndpoint(Veth2);
                Policy.SetConfig(enabled: true, allowHost: true, serviceCidr: null);
                Policy.SyncIpcache(new Dictionary<IPNetwork, uint> { [new(PodIp(1), 32)] = 1001, [new(PodIp(2), 32)] = 1002 });
                Policy.SyncEndpointRules(2, [new PolicyRule(PolicyDirection.Ingress, 1001, (byte)ProtocolType.Tcp, Port, 16)], []);
                Policy.SetEndpoint(Veth1, 1, 1001, enforceIngress: false, enforceEgress: false, PodIp(1));
                Policy.SetEndpoint(Veth2, 2, 1002, enforceIngress: true, enforceEgress: false, PodIp(2));
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public NetNsHandle Node { get; } = null!;

    public NetNsHandle Pod1 { get; } = null!;

    public NetNsHandle Pod2 { get; } = null!;

    public int Veth1 { get; }

    public int Veth2 { get; }

    public string EventsDirectory { get; } = "";

    public BpfPolicy? Policy { get; }

    public static IPAddress PodIp(int i) => new([10, 200, (byte)i, 2]);

    /// <summary>Removes what killed runs left: their namespaces and bpffs directories.</summary>
    public static int SweepStale()
    {
        var n = NetNs.SweepStale(Base).Count;
        foreach (var dir in Directory.Exists(BpfFs.DefaultRoot) ? Directory.EnumerateDirectories(BpfFs.DefaultRoot, Base + "*") : [])
        {
            if (RunPrefix.TryParsePid(Path.GetFileName(dir), Base, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
            {
                BpfFs.RemoveTree(dir);
                n++;
            }
        }

        return n;
    }

    public void Dispose()
    {
        try
        {
            if (Policy is { } p)
            {
                NetNs.Run(Node, p.Remove);
            }
        }
        finally
        {
            foreach (var (name, handle) in _namespaces)
            {
                handle.Dispose();
                NetNs.Delete(name);
            }

            BpfFs.RemoveTree(_pins);
        }
    }

    private NetNsHandle Namespace(string name)
    {
        NetNs.Create(name);
        try
        {
            var handle = NetNs.Open(name);
            _namespaces.Add((name, handle));
            return handle;
        }
        catch
        {
            NetNs.Delete(name);
            throw;
        }
    }

    private static int AddPod(INetlink nl, int i, NetNsHandle pod)
    {
        var veth = nl.LinkAdd(new VethSpec($"veth{i}", "eth0") { PeerNetNs = pod });
        nl.AddrAdd(veth.Index, new IPAddress([10, 200, (byte)i, 1]), 24);
        nl.LinkSetUp(veth.Index);
        using var pnl = Netlink.OpenIn(pod);
        pnl.LinkSetUp(pnl.LinkByName("lo")!.Index);
        var eth0 = pnl.LinkByName("eth0")!;
        pnl.AddrAdd(eth0.Index, PodIp(i), 24);
        pnl.LinkSetUp(eth0.Index);
        pnl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = new IPAddress([10, 200, (byte)i, 1]) });
        return veth.Index;
    }
}
