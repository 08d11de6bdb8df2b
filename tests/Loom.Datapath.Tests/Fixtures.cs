using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;

namespace Loom.Datapath.Tests;

internal static class Fixtures
{
    /// <summary>kube-proxy's unit-test proxier: cluster CIDR 10.0.0.0/8, mark 0x4000, no --random-fully.</summary>
    public static readonly ServiceProxyOptions KubeProxyTest = new() { ClusterCidr = IPNetwork.Parse("10.0.0.0/8"), RandomFully = false };

    public static ServicePortState Port(
        string ns, string name, string? port, string clusterIp, int svcPort, IEnumerable<string> backends, int targetPort = 0,
        Protocol protocol = Protocol.Tcp, SessionAffinity affinity = SessionAffinity.None, int timeout = 10800) =>
        new(
            new ServicePortName(ns, name, port),
            new Frontend(IPAddress.Parse(clusterIp), protocol, svcPort),
            affinity,
            timeout,
            backends.Select(b => new BackendAddress(IPAddress.Parse(b), targetPort == 0 ? svcPort : targetPort)).ToArray());

    /// <summary>The scenario's webpod: default/webpod, port 80 (unnamed) on 10.96.0.100, two pods.</summary>
    public static ServicePortState Webpod(params string[] backends) =>
        Port("default", "webpod", null, "10.96.0.100", 80, backends.Length == 0 ? ["10.244.1.2", "10.244.2.2"] : backends);

    public static List<string> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();

    /// <summary>The part of a restore input for one table, from "*table" to its COMMIT.</summary>
    public static List<string> Table(string restore, string table)
    {
        var lines = Lines(restore);
        var start = lines.IndexOf("*" + table);
        var end = lines.IndexOf("COMMIT", start);
        return lines.GetRange(start + 1, end - start - 1);
    }
}
