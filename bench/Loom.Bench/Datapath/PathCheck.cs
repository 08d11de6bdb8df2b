using System.Text.Json;
using Loom.Lab;
using Loom.Testing;

namespace Loom.Bench.Datapath;

/// <summary>
/// What the running lab built for its pods, read before measuring: the pods' prefix (/32 = routed), each node's
/// route to the other pod (tunnel device, or the peer's eth1 address for native routing) and the tc programs of eBPF
/// host routing (bpf/host_routing.c: hr_from_pod, hr_from_underlay; bpftool shows names cut to 15 characters). A
/// lab whose path differs from the configuration's is reported, not measured under that configuration's name.
/// </summary>
internal static class PathCheck
{
    public sealed record Observed(string Description, List<string> Mismatches);

    public static Observed Read(NetConfig config, LabNode nodeA, LabNode nodeB, LabPod podA, LabPod podB)
    {
        var seen = new List<string>();
        var wrong = new List<string>();
        foreach (var pod in new[] { podA, podB })
        {
            var routed = pod.Ip?.EndsWith("/32", StringComparison.Ordinal) == true;
            if (routed != (config.Plumbing == Plumbing.Routed))
            {
                wrong.Add($"{pod.Name} has {pod.Ip} (expected {(config.Plumbing == Plumbing.Routed ? "a /32, routed" : "the node's block, bridge")})");
            }
        }

        seen.Add($"pod {Prefix(podA.Ip)}");
        foreach (var (from, to, pod) in new[] { (nodeA, nodeB, podB), (nodeB, nodeA, podA) })
        {
            var (dev, via) = RouteTo(from, Address(pod));
            seen.Add($"{from.Name}->{pod.Name}: dev {dev}{(via is null ? "" : " via " + via)}");
            var ok = config.TunnelDevice is { } tunnel ? dev == tunnel : dev == "eth1" && via == to.Ip;
            if (!ok)
            {
                wrong.Add($"{from.Name} routes {Address(pod)} through dev {dev}{(via is null ? "" : " via " + via)} " +
                    $"(expected {(config.TunnelDevice is { } t ? "dev " + t : $"dev eth1 via {to.Ip}")})");
            }
        }

        foreach (var node in new[] { nodeA, nodeB })
        {
            var progs = TcPrograms(node);
            var fromPod = progs.Any(p => p.Name.StartsWith("hr_from_pod", StringComparison.Ordinal));
            var fromUnderlay = progs.Any(p => p.Dev == "eth1" && p.Name.StartsWith("hr_from_under", StringComparison.Ordinal));
            seen.Add($"{node.Name} tc: {(progs.Count == 0 ? "none" : string.Join(',', progs.Select(p => $"{p.Name}@{p.Dev}").Distinct()))}");
            if (config.BpfHostRouting ? !(fromPod && fromUnderlay) : fromPod || fromUnderlay)
            {
                wrong.Add(config.BpfHostRouting
                    ? $"{node.Name} lacks eBPF host routing (hr_from_pod on a pod veth: {fromPod}, hr_from_underlay on eth1: {fromUnderlay})"
                    : $"{node.Name} has eBPF host routing programs in a legacy configuration");
            }
        }

        return new Observed(string.Join("; ", seen), wrong);
    }

    public static string Address(LabPod pod) =>
        pod.Ip is { } ip ? ip.Split('/')[0] : throw new BenchException($"pod {pod.Name} has no address in the lab state");

    private static string Prefix(string? cidr) => cidr is null ? "?" : cidr.Contains('/', StringComparison.Ordinal) ? "/" + cidr.Split('/')[1] : cidr;

    /// <summary><c>ip -j route get ADDR</c> inside the node: the device and the gateway.</summary>
    private static (string Dev, string? Via) RouteTo(LabNode node, string address)
    {
        var run = Shell.InNetns(node.Netns, ["ip", "-j", "route", "get", address], timeout: TimeSpan.FromSeconds(10));
        if (!run.Ok)
        {
            return ("(no route: " + run.Stderr.Trim() + ")", null);
        }

        using var doc = JsonDocument.Parse(run.Stdout);
        var r = doc.RootElement[0];
        return (r.TryGetProperty("dev", out var d) ? d.GetString() ?? "?" : "?", r.TryGetProperty("gateway", out var g) ? g.GetString() : null);
    }

    private sealed record TcProgram(string Dev, string Name);

    /// <summary>tc / tcx programs on the node's devices (<c>bpftool -j net show</c> inside the node).</summary>
    private static List<TcProgram> TcPrograms(LabNode node)
    {
        var run = Shell.InNetns(node.Netns, [Shell.Require("bpftool", "apt-get install bpftool"), "-j", "net", "show"], timeout: TimeSpan.FromSeconds(10));
        if (!run.Ok)
        {
            throw new BenchException($"bpftool net show in {node.Netns}: {run.Stderr.Trim()}");
        }

        var list = new List<TcProgram>();
        using var doc = JsonDocument.Parse(run.Stdout);
        foreach (var entry in doc.RootElement.EnumerateArray())
        {
            if (entry.TryGetProperty("tc", out var tc))
            {
                list.AddRange(tc.EnumerateArray().Select(p => new TcProgram(
                    p.TryGetProperty("devname", out var d) ? d.GetString() ?? "?" : "?",
                    p.TryGetProperty("name", out var n) ? n.GetString() ?? "?" : "?")));
            }
        }

        return list;
    }
}
