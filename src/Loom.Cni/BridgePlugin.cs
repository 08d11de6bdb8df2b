using System.Net;
using Loom.Core.Cni;
using Loom.Linux;

namespace Loom.Cni;

/// <summary>
/// Bridge mode, as Flannel's delegate wires pods: a bridge on the node (default <c>cni0</c>), one veth per
/// attachment with its host side on the bridge, the range's gateway on the bridge. The plugin runs in the
/// node's network namespace (where the runtime executed it) and reaches into the pod's through a netlink
/// socket opened inside it. The commands live in partial files by concern.
/// </summary>
internal sealed partial class BridgePlugin(CniEnvironment env, NetConf conf)
{
    private readonly IPodIpam _ipam = PodIpam.For(env, conf);

    private string ContainerId => env.ContainerId!;

    private string IfName => env.IfName!;

    private string HostVethName => HostVeth.Name(ContainerId, IfName);

    /// <summary>Runs the command; returns what to print on stdout (null for nothing).</summary>
    public async Task<string?> RunAsync()
    {
        switch (env.Command)
        {
            case CniCommand.Add:
                return (await AddAsync().ConfigureAwait(false)).Serialize(conf.CniVersion);
            case CniCommand.Del:
                await DelAsync().ConfigureAwait(false);
                return null;
            case CniCommand.Check:
                await CheckAsync().ConfigureAwait(false);
                return null;
            case CniCommand.Status:
                await _ipam.StatusAsync().ConfigureAwait(false);
                return null;
            case CniCommand.Gc:
                await GcAsync().ConfigureAwait(false);
                return null;
            default:
                throw new CniException(CniErrorCodes.InvalidEnvironmentVariables, $"unsupported CNI_COMMAND {env.Command}");
        }
    }

    private NetNsHandle OpenContainerNs()
    {
        try
        {
            return NetNs.Open(env.NetNs!);
        }
        catch (LinuxException e)
        {
            throw new CniException(CniErrorCodes.UnknownContainer, $"cannot open the container's network namespace {env.NetNs}", e.Message, e);
        }
    }

    private static Link BridgeOf(INetlink host, string name) =>
        host.LinkByName(name) ?? throw new CniException(PluginErrors.CheckFailed, $"bridge {name} does not exist");

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
}
