using System.Net;
using System.Text.Json;
using Loom.Linux;
using Loom.Linux.Bpf;
using Loom.Testing;

namespace Loom.Agent.Tests;

/// <summary>
/// A node for a real agent (out/bin/loom agent): a namespace of the test's own with an "eth1" carrying the node's
/// underlay address, a directory for its store (SQLite), CNI dir, state and IPAM, and the agent's log.
/// </summary>
public sealed class AgentNode : IDisposable
{
    public const string UnderlayIp = "192.168.10.100";

    // Pin directories of agent tests whose run died (their namespaces are swept by TestNetns).
    private static readonly Lazy<int> SweptPins = new(() =>
    {
        BpfFs.EnsureMounted();
        var stale = Directory.GetDirectories(BpfFs.DefaultRoot, TestNetns.Base + "*")
            .Where(d => RunPrefix.TryParsePid(Path.GetFileName(d), TestNetns.Base, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
            .ToList();
        stale.ForEach(BpfFs.RemoveTree);
        return stale.Count;
    });

    public AgentNode(string name)
    {
        _ = SweptPins.Value;
        Ns = new TestNetns(name);
        Dir = Directory.CreateTempSubdirectory($"loom-agent-{name}-");

        // A bridge stands in for eth1: it only has to exist, be up and carry the node's underlay address.
        var nl = Ns.Netlink;
        var underlay = nl.LinkAdd(new BridgeSpec("eth1") { Mtu = 1500 });
        nl.AddrAdd(underlay.Index, IPAddress.Parse(UnderlayIp), 24);
        nl.LinkSetUp(underlay.Index);
        nl.LinkSetUp(nl.LinkByName("lo")!.Index); // the metrics endpoint is reached at the node's own address
    }

    public TestNetns Ns { get; }

    public DirectoryInfo Dir { get; }

    public string Db => Path.Combine(Dir.FullName, "state.db");

    public string Log => Path.Combine(Dir.FullName, "agent.log");

    public string LogText => File.Exists(Log) ? File.ReadAllText(Log) : "(no log)";

    public string CniConfDir => Path.Combine(Dir.FullName, "net.d");

    /// <summary>On bpffs, named after the node's namespace (its run prefix): removed with it, and swept when a run died.</summary>
    public string BpfPinDir => Path.Combine(BpfFs.DefaultRoot, Ns.Name);

    public BackgroundProcess StartAgent()
    {
        var config = Path.Combine(Dir.FullName, "agent.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["node"] = "k8s-w1",
            ["iface"] = "eth1",
            ["store"] = new Dictionary<string, string> { ["type"] = "sqlite", ["path"] = Db },
            ["cniConfDir"] = CniConfDir,
            ["stateDir"] = Path.Combine(Dir.FullName, "run"),
            ["ipamDataDir"] = Path.Combine(Dir.FullName, "ipam"),
            ["bpfPinDir"] = BpfPinDir, // the policy maps' pins (the iptables backend pins nothing)
            ["metricsAddress"] = UnderlayIp + ":9962",
        }));
        var loom = Shell.Require(Path.Combine(CniRunner.BinDir, "loom"), "run `dotnet publish src/Loom.Cli/Loom.Cli.csproj -c Release -o out/bin`");
        return Shell.StartInNetns(Ns.Name, "/bin/sh", "-c", "exec \"$0\" agent --config \"$1\" >\"$2\" 2>&1", loom, config, Log);
    }

    public void Dispose()
    {
        Ns.Dispose();
        BpfFs.RemoveTree(BpfPinDir);
        Dir.Delete(recursive: true);
    }
}
