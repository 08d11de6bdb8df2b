using System.Globalization;
using System.Net;
using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>What clients address: the ClusterIP, protocol and service port.</summary>
public sealed record Frontend(IPAddress Address, Protocol Protocol, int Port)
{
    /// <summary>Lower-case protocol as iptables' <c>-p</c> and nft's <c>inet_proto</c> spell it.</summary>
    public string ProtocolName => Protocol.ToWire();

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Address}:{Port}/{ProtocolName}");
}
