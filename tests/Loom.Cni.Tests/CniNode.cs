using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Cni.Tests;

/// <summary>
/// One test's world: a node namespace (where the plugin always runs), pod namespaces made on demand, and a
/// temporary IPAM dataDir. Everything is removed on Dispose, also when the test failed.
/// </summary>
internal sealed class CniNode : IDisposable
{
    public const string Network = "t";

    private readonly List<TestNetns> _pods = [];

    public CniNode(string subnet = "10.244.7.0/24")
    {
        Subnet = subnet;
        DataDir = Directory.CreateTempSubdirectory("loom-cni-test").FullName;
        try
        {
            Ns = new TestNetns("node");
        }
        catch
        {
            Directory.Delete(DataDir, recursive: true);
            throw;
        }
    }

    public TestNetns Ns { get; }

    public string DataDir { get; }

    public string Subnet { get; }

    /// <summary>Where the built-in IPAM keeps this network's files.</summary>
    public string NetworkDir => Path.Combine(DataDir, Network);

    public INetlink Netlink => Ns.Netlink;

    public TestNetns NewPod(string tag = "pod")
    {
        var pod = new TestNetns(tag);
        lock (_pods)
        {
            _pods.Add(pod);
        }

        return pod;
    }

    public static string PathOf(TestNetns ns) => $"/var/run/netns/{ns.Name}";

    /// <summary>A bridge + built-in IPAM config; <paramref name="edit"/> changes anything before it is serialized.</summary>
    public JsonObject Conf(string version = "1.1.0", Action<JsonObject>? edit = null)
    {
        var conf = new JsonObject
        {
            ["cniVersion"] = version,
            ["name"] = Network,
            ["type"] = "loom-cni",
            ["bridge"] = "cni0",
            ["isGateway"] = true,
            ["ipam"] = new JsonObject
            {
                ["type"] = "loom",
                ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = Subnet })),
                ["dataDir"] = DataDir,
            },
        };
        edit?.Invoke(conf);
        return conf;
    }

    /// <summary>A routed-plumbing + built-in IPAM config (no bridge keys: routed refuses them).</summary>
    public JsonObject RoutedConf(string version = "1.1.0", Action<JsonObject>? edit = null) => Conf(version, c =>
    {
        c.Remove("bridge");
        c.Remove("isGateway");
        c["plumbing"] = "routed";
        edit?.Invoke(c);
    });

    /// <summary>What the agent does before routed pods can be added: the router IP (the block's first address) on loom_host.</summary>
    public Link EnsureRouter() => RouterDevice.Ensure(Netlink, Router);

    /// <summary>The first address of <see cref="Subnet"/>: the bridge's gateway, or the routed pods' router.</summary>
    public IPAddress Router => Loom.Core.Ipam.IpRange.DefaultGateway(IPNetwork.Parse(Subnet));

    public CniRun Exec(string command, JsonObject conf, string? containerId = null, TestNetns? pod = null, string? ifName = "eth0", string? cniArgs = null, string? netns = null, string? cniPath = null) =>
        Exec(command, conf.ToJsonString(), containerId, pod, ifName, cniArgs, netns, cniPath);

    public CniRun Exec(string command, string conf, string? containerId = null, TestNetns? pod = null, string? ifName = "eth0", string? cniArgs = null, string? netns = null, string? cniPath = null) =>
        CniRunner.Exec(Ns.Handle, CniRunner.LoomCni, command, conf, containerId, netns ?? (pod is null ? null : PathOf(pod)), ifName, cniArgs, cniPath);

    /// <summary>ADD that must succeed; returns the parsed result.</summary>
    public JsonElement Add(JsonObject conf, string containerId, TestNetns pod, string? cniArgs = null, string ifName = "eth0")
    {
        var run = Exec("ADD", conf, containerId, pod, ifName, cniArgs);
        Assert.True(run.Ok, run.ToString());
        Assert.Equal("", run.Stderr);
        using var doc = JsonDocument.Parse(run.Stdout);
        return doc.RootElement.Clone();
    }

    public void Del(JsonObject conf, string containerId, TestNetns? pod, string ifName = "eth0")
    {
        var run = Exec("DEL", conf, containerId, pod, ifName);
        Assert.True(run.Ok, run.ToString());
        Assert.Equal("", run.Stdout);
    }

    /// <summary>The allocation files of the built-in IPAM (address-named files only).</summary>
    public IReadOnlyList<string> IpamFiles(string? dir = null)
    {
        dir ??= NetworkDir;
        return Directory.Exists(dir)
            ? Directory.GetFiles(dir).Select(Path.GetFileName).OfType<string>().Where(n => IPAddress.TryParse(n, out _)).Order(StringComparer.Ordinal).ToList()
            : [];
    }

    public Link Bridge(string name = "cni0") => Netlink.LinkByName(name) ?? throw new InvalidOperationException($"no bridge {name} in {Ns.Name}");

    /// <summary>Links enslaved to the bridge in the node namespace.</summary>
    public IReadOnlyList<Link> BridgePorts(string name = "cni0")
    {
        var bridge = Netlink.LinkByName(name);
        return bridge is null ? [] : Netlink.LinkList().Where(l => l.MasterIndex == bridge.Index).ToList();
    }

    /// <summary>`iptables-save -t nat` inside the node namespace.</summary>
    public string NatRules() => Tool.Run("nsenter", $"--net={PathOf(Ns)}", "iptables-save", "-t", "nat");

    /// <summary>Link names, IPAM files and CNI-* chains: what a failed ADD must leave exactly as it was.</summary>
    public string State(params TestNetns[] pods)
    {
        var sb = new StringBuilder();
        sb.Append("node links: ").AppendJoin(',', Netlink.LinkList().Select(l => l.Name).Order(StringComparer.Ordinal)).Append('\n');
        foreach (var p in pods)
        {
            sb.Append(p.Name).Append(" links: ").AppendJoin(',', p.Netlink.LinkList().Select(l => l.Name).Order(StringComparer.Ordinal)).Append('\n');
        }

        sb.Append("ipam: ").AppendJoin(',', IpamFiles()).Append('\n');
        var chains = NatRules().Split('\n').Where(l => l.StartsWith(":CNI-", StringComparison.Ordinal) || l.Contains("-j CNI-", StringComparison.Ordinal));
        sb.Append("nat: ").AppendJoin(',', chains).Append('\n');
        return sb.ToString();
    }

    /// <summary>The host veth name the plugin derives from (container id, ifname): veth + 11 hex of SHA-256.</summary>
    public static string HostVethName(string containerId, string ifName = "eth0") =>
        "veth" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(containerId + "/" + ifName)))[..11];

    public static string IpOf(JsonElement result, int index = 0)
    {
        var cidr = result.GetProperty("ips")[index].GetProperty("address").GetString()!;
        return cidr[..cidr.IndexOf('/', StringComparison.Ordinal)];
    }

    public void Dispose()
    {
        List<Exception> errors = [];
        lock (_pods)
        {
            foreach (var p in _pods)
            {
                Try(p.Dispose);
            }
        }

        Try(Ns.Dispose);
        Try(() => Directory.Delete(DataDir, recursive: true));
        if (errors.Count > 0)
        {
            throw new AggregateException(errors);
        }

        void Try(Action a)
        {
            try
            {
                a();
            }
            catch (Exception e) when (e is IOException or LinuxException or UnauthorizedAccessException)
            {
                errors.Add(e);
            }
        }
    }
}

/// <summary>Runs a command-line tool (ip, bridge, nsenter) and returns stdout; a non-zero exit fails the test.</summary>
internal static class Tool
{
    public static string Run(string file, params string[] args)
    {
        var (code, stdout, stderr) = RunWithCode(file, args);
        return code == 0 ? stdout : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed (exit {code}): {stderr}");
    }

    public static (int Code, string Stdout, string Stderr) RunWithCode(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr.GetAwaiter().GetResult());
    }

    /// <summary>`ip -n NS -d -j link show dev NAME`, parsed.</summary>
    public static JsonElement LinkDetails(TestNetns ns, string name)
    {
        using var doc = JsonDocument.Parse(Run("ip", "-n", ns.Name, "-d", "-j", "link", "show", "dev", name));
        return doc.RootElement[0].Clone();
    }
}

/// <summary>Assertions on the CNI error JSON a failing plugin prints.</summary>
internal static class CniAssert
{
    public static JsonElement Error(CniRun run, uint code, params string[] mentions)
    {
        Assert.False(run.Ok, "expected a failure, got " + run);
        Assert.Equal(1, run.ExitCode);
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(run.Stdout);
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"stdout is not an error JSON ({e.Message}): {run}");
        }

        Assert.True(root.TryGetProperty("code", out var c), run.ToString());
        Assert.True(code == c.GetUInt32(), $"expected code {code.ToString(CultureInfo.InvariantCulture)}: {run}");
        Assert.False(string.IsNullOrWhiteSpace(root.GetProperty("msg").GetString()), run.ToString());
        var text = root.GetProperty("msg").GetString() + " " + (root.TryGetProperty("details", out var d) ? d.GetString() : "");
        foreach (var m in mentions)
        {
            Assert.True(text.Contains(m, StringComparison.Ordinal), $"error should mention \"{m}\": {run}");
        }

        return root;
    }
}
