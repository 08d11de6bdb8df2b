using Loom.Core.Flows;

namespace Loom.Core.Tests.Flows;

internal static class FlowTestData
{
    public static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 46, 29, 123, TimeSpan.Zero);

    public static FlowPeer Pod(string ns, string name, string ip, int port, uint identity) =>
        new() { Namespace = ns, Pod = name, Ip = ip, Port = port, Identity = identity, Labels = [$"k8s:app={name}"] };

    public static FlowPeer Addr(string ip, int port, uint identity) => new() { Ip = ip, Port = port, Identity = identity };

    /// <summary>x/client to y/server:80 on n1, forwarded at to-endpoint, SYN.</summary>
    public static Flow Syn(long seq = 0) => new()
    {
        Seq = seq,
        Time = T0,
        Node = "n1",
        Type = "trace",
        Verdict = FlowNames.Forwarded,
        ObservationPoint = "to-endpoint",
        Protocol = "TCP",
        TcpFlags = "SYN",
        Source = Pod("x", "client-7d9f", "10.244.1.5", 43210, 12345),
        Destination = Pod("y", "server", "10.244.2.7", 80, 23456),
    };
}
