using Loom.Core.Cni;
using Loom.Core.Ipam;
using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

/// <summary>Maps failures from the layers below onto CNI error codes, keeping their messages.</summary>
internal static class PluginErrors
{
    /// <summary>Plugin-specific code (spec: 100 and up) for a CHECK that found the attachment not as ADD left it.</summary>
    public const uint CheckFailed = 100;

    public static Exception Map(Exception ex) => ex switch
    {
        CniException => ex,
        IpamConfigException c => new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid ipam config", c.Message, c),
        IpamException { Kind: IpamErrorKind.InvalidConfig } i => new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid ipam config", i.Message, i),
        IpamException { Kind: IpamErrorKind.Exhausted or IpamErrorKind.RequestedIpUnavailable } i =>
            new CniException(CniErrorCodes.TryAgainLater, i.Message, null, i),
        IpamException i => new CniException(CniErrorCodes.IOFailure, i.Message, null, i),
        NetlinkException n => new CniException(CniErrorCodes.Internal, n.Message, null, n),
        FirewallException f => new CniException(CniErrorCodes.Internal, "masquerade setup failed", f.Message, f),
        IOException io => new CniException(CniErrorCodes.IOFailure, io.Message, null, io),
        _ => ex,
    };
}
