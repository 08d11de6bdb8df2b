using System.Net;
using System.Net.NetworkInformation;
using Loom.Core.Cni;
using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

/// <summary>
/// What both plumbings share: the command dispatch, the pod's veth, IPAM, masquerade, DEL, GC, the pod side of
/// CHECK and the agent registration. The plugin runs in the node's network namespace (where the runtime executed
/// it) and reaches into the pod's through a netlink socket opened inside it. The plumbing is the network config's
/// <c>"plumbing"</c>: <see cref="BridgePlugin"/> or <see cref="RoutedPlugin"/>.
/// </summary>
internal abstract partial class CniPlugin(CniEnvironment env, NetConf conf)
{
    protected const int EEXIST = 17;
    protected const int ENODEV = 19;

    // Set by a rollback whose endpoint-del the agent did not confirm: the address is then held, not freed.
    private bool _agentMayHoldEndpoint;

    protected CniEnvironment Env { get; } = env;

    protected NetConf Conf { get; } = conf;

    protected IPodIpam Ipam { get; } = PodIpam.For(env, conf);

    protected string ContainerId => Env.ContainerId!;

    protected string IfName => Env.IfName!;

    protected string HostVethName => HostVeth.Name(ContainerId, IfName);

    public static CniPlugin For(CniEnvironment env, NetConf conf) =>
        conf.Plumbing == PodPlumbing.Routed ? new RoutedPlugin(env, conf) : new BridgePlugin(env, conf);

    /// <summary>Runs the command; returns what to print on stdout (null for nothing).</summary>
    public async Task<string?> RunAsync()
    {
        switch (Env.Command)
        {
            case CniCommand.Add:
                return (await AddAsync().ConfigureAwait(false)).Serialize(Conf.CniVersion);
            case CniCommand.Del:
                await DelAsync().ConfigureAwait(false);
                return null;
            case CniCommand.Check:
                await CheckAsync().ConfigureAwait(false);
                return null;
            case CniCommand.Status:
                await Ipam.StatusAsync().ConfigureAwait(false);
                return null;
            case CniCommand.Gc:
                await GcAsync().ConfigureAwait(false);
                return null;
            default:
                throw new CniException(CniErrorCodes.InvalidEnvironmentVariables, $"unsupported CNI_COMMAND {Env.Command}");
        }
    }

    /// <summary>ADD: each step that changes something pushes its undo onto <paramref name="undo"/>.</summary>
    protected abstract Task<CniResult> AddAsync(Stack<Action> undo);

    /// <summary>ADD that fails leaves nothing behind (no address held, no veth, no route, no rule): the undos run in reverse.</summary>
    private async Task<CniResult> AddAsync()
    {
        var undo = new Stack<Action>();
        try
        {
            return await AddAsync(undo).ConfigureAwait(false);
        }
        catch
        {
            while (undo.Count > 0)
            {
                try
                {
                    undo.Pop()();
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    await Console.Error.WriteLineAsync($"loom-cni: rollback step failed: {ex.Message}").ConfigureAwait(false);
                }
            }

            throw;
        }
    }

    /// <summary>Allocates the pod's addresses; the release is pushed first so it runs last.</summary>
    protected async Task<CniResult> AllocateAsync(Stack<Action> undo)
    {
        var result = await Ipam.AddAsync().ConfigureAwait(false);
        undo.Push(() => ReleaseAddressesAsync(!_agentMayHoldEndpoint).GetAwaiter().GetResult());
        if (result.Ips.Count == 0)
        {
            throw new CniException(CniErrorCodes.Internal, $"IPAM plugin {Conf.Ipam!.Type} returned no address");
        }

        return result;
    }

    /// <summary>The veth pair: its host side (named from the attachment) here, <c>IfName</c> in the pod, both down.</summary>
    protected (Link Host, Link Pod) CreateVeth(INetlink host, INetlink pod, NetNsHandle containerNs, int? mtu, Stack<Action> undo)
    {
        var spec = new VethSpec(HostVethName, IfName)
        {
            Mtu = mtu,
            PeerMtu = mtu,
            PeerNetNs = containerNs,
            PeerHardwareAddr = RequestedMac(),
        };
        Link hostLink;
        try
        {
            hostLink = host.LinkAdd(spec);
        }
        catch (NetlinkException e) when (e.Errno == EEXIST)
        {
            // A killed earlier ADD of this very attachment may have left its host side behind: the name says so.
            // Looked for only then, not before every creation: one round trip less on the common path.
            DeleteLink(host, HostVethName);
            hostLink = host.LinkAdd(spec);
        }

        undo.Push(() =>
        {
            // A socket of its own: the rollback runs after AddAsync has disposed the plumbing's netlink sockets.
            using var nl = Netlink.Open();
            DeleteLink(nl, HostVethName);
        });
        var podLink = pod.LinkByName(IfName) ?? throw new CniException(CniErrorCodes.Internal, $"{IfName} did not appear in {Env.NetNs}");
        return (hostLink, podLink);
    }

    /// <summary>
    /// The steps after the wiring that both plumbings share: masquerade (not towards each address's
    /// <paramref name="subnets"/>, by default the subnet its prefix says), DNS, telling the agent.
    /// </summary>
    protected async Task FinishAddAsync(CniResult result, Stack<Action> undo, IReadOnlyList<IPNetwork>? subnets = null)
    {
        if (Conf.IpMasq)
        {
            undo.Push(() => IpMasq.Teardown(Conf.Name, ContainerId));
            for (var i = 0; i < result.Ips.Count; i++)
            {
                var ip = result.Ips[i];
                IpMasq.Setup(Conf.Name, ContainerId, ip.Address.Address, subnets?[i] ?? NetworkOf(ip.Address));
            }
        }

        if (result.Dns.IsEmpty)
        {
            CopyDns(Conf.Dns, result.Dns);
        }

        if (AgentRegistration.SocketOf(Conf) is { } socket)
        {
            // Pushed before asking: the agent may store the Endpoint and still fail us (a late reply, a policy not in
            // place), and a rolled-back pod must not leave it behind. Unconfirmed, the address is held, not freed.
            undo.Push(() => _agentMayHoldEndpoint = !AgentRegistration.DelAsync(socket, Env).GetAwaiter().GetResult());
            await AgentRegistration.AddAsync(socket, Env, result, Conf).ConfigureAwait(false);
        }
    }

    protected NetNsHandle OpenContainerNs()
    {
        try
        {
            return NetNs.Open(Env.NetNs!);
        }
        catch (LinuxException e)
        {
            throw new CniException(CniErrorCodes.UnknownContainer, $"cannot open the container's network namespace {Env.NetNs}", e.Message, e);
        }
    }

    protected void EnsureNoInterface(INetlink pod)
    {
        if (pod.LinkByName(IfName) is not null)
        {
            throw new CniException(CniErrorCodes.Internal, $"interface {IfName} already exists in {Env.NetNs}");
        }
    }

    protected static CniInterface InterfaceOf(Link link, string? sandbox = null) =>
        new() { Name = link.Name, Mac = MacAddress.Format(link.HardwareAddr), Mtu = link.Mtu, Sandbox = sandbox };

    /// <summary>The network a CIDR with host bits (10.244.0.5/24) lies in (10.244.0.0/24).</summary>
    internal static IPNetwork NetworkOf(CniCidr cidr)
    {
        var bytes = cidr.Address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(cidr.PrefixLength - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }

        return new IPNetwork(new IPAddress(bytes), cidr.PrefixLength);
    }

    protected static CniException Fail(string msg) => new(PluginErrors.CheckFailed, msg);

    protected static void DeleteLink(INetlink nl, string name)
    {
        if (nl.LinkByName(name) is { } link)
        {
            try
            {
                nl.LinkDel(link.Index);
            }
            catch (NetlinkException e) when (e.Errno == ENODEV)
            {
                // Gone between lookup and delete (its peer's namespace was being destroyed): that is the goal.
            }
        }
    }

    private PhysicalAddress? RequestedMac()
    {
        var text = Env.Args.Mac ?? Conf.RuntimeConfig.Mac;
        if (text is null)
        {
            return null;
        }

        try
        {
            return PhysicalAddress.Parse(text.Replace(':', '-'));
        }
        catch (FormatException e)
        {
            throw new CniException(CniErrorCodes.InvalidEnvironmentVariables, $"invalid MAC address {text}", "from CNI_ARGS MAC= or runtimeConfig.mac", e);
        }
    }

    private static void CopyDns(CniDns from, CniDns to)
    {
        foreach (var s in from.Nameservers)
        {
            to.Nameservers.Add(s);
        }

        foreach (var s in from.Search)
        {
            to.Search.Add(s);
        }

        foreach (var s in from.Options)
        {
            to.Options.Add(s);
        }

        to.Domain = from.Domain;
    }
}
