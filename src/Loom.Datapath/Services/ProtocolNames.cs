using Loom.Core.Model;

namespace Loom.Datapath.Services;

public static class ProtocolNames
{
    /// <summary>kube-proxy lower-cases the protocol before hashing and in every rule.</summary>
    public static string ToWire(this Protocol protocol) => protocol switch
    {
        Protocol.Tcp => "tcp",
        Protocol.Udp => "udp",
        _ => throw new ArgumentOutOfRangeException(nameof(protocol), protocol, null),
    };
}
