using System.Net;
using Loom.Agent;
using Loom.Linux;
using Loom.Linux.Bpf;
using Loom.Testing;

namespace Loom.Package.Tests;

/// <summary>
/// The loom .deb: what it declares, where its files land in a throwaway root, that the installed binary runs from
/// there and finds what lies beside it, and that remove and purge take back what they should (nothing is installed
/// on this machine: dpkg --root, scripts run with DPKG_ROOT).
/// </summary>
public sealed class PackageTests(PackageFixture pkg) : IClassFixture<PackageFixture>
{
    private const string Unit = "/lib/systemd/system/loom-agent.service";

    // What the agent loads from bpf/ beside its executable (EbpfServiceBackend.ResolveObject).
    private static readonly string[] BpfObjects =
    [
        Loom.Linux.Bpf.LbMaps.ObjectFile, Loom.Linux.Bpf.PolicyMaps.ObjectFile, Loom.Datapath.Flows.FlowEventMaps.ObjectFile,
        Loom.Datapath.Routing.HostRoutingMaps.ObjectFile, Loom.Datapath.Masquerade.MasqueradeMaps.ObjectFile,
    ];

    private static readonly string[] Conffiles = ["/etc/loom/agent.json", "/etc/loom/cluster.yaml"];

    private static readonly string[] AgentCommand = ["/usr/bin/loom", "agent", "--config"];

    [PackageFact]
    public void The_package_declares_its_version_dependencies_and_conffiles()
    {
        var deb = pkg.RequireDeb();
        var fields = Ok(Shell.Run("dpkg-deb", ["-f", deb, "Package", "Version", "Architecture", "Depends"])).Stdout;
        Assert.Contains("Package: loom\n", fields, StringComparison.Ordinal);
        var upstream = Ok(Shell.Run(Path.Combine(pkg.BinDir, "loom"), ["--version"])).Stdout.Trim().Split('+')[0];
        Assert.Contains($"Version: {upstream}", fields, StringComparison.Ordinal);
        foreach (var dep in new[] { "libc6", "libbpf1", "iptables", "nftables" })
        {
            Assert.Matches($@"Depends:.*\b{dep}\b", fields);
        }

        var conffiles = Ok(Shell.Run("dpkg-deb", ["-I", deb, "conffiles"])).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Conffiles, conffiles.Order(StringComparer.Ordinal));
    }

    [PackageFact]
    public void Installed_files_are_where_the_unit_and_the_agent_look_for_them()
    {
        using var root = new DebRoot();
        Ok(root.Dpkg("-i", pkg.RequireDeb()));
        Assert.Equal("install ok installed", root.Status("loom"));

        // /usr/bin/loom and /opt/cni/bin/loom-cni are relative symlinks to the real files, so they resolve inside the root.
        Assert.Equal(root["/usr/lib/loom/loom"], Resolve(root["/usr/bin/loom"]));
        Assert.Equal(root["/usr/lib/cni/loom-cni"], Resolve(root["/opt/cni/bin/loom-cni"]));
        Assert.True(File.Exists(root["/usr/lib/loom/libe_sqlite3.so"]));
        Assert.Equal(BpfObjects.Order(StringComparer.Ordinal),
            Directory.GetFiles(root["/usr/lib/loom/bpf"]).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal));
        foreach (var exe in new[] { "/usr/lib/loom/loom", "/usr/lib/cni/loom-cni" })
        {
            Assert.True((File.GetUnixFileMode(root[exe]) & UnixFileMode.UserExecute) != 0, exe + " is not executable");
        }

        // The unit's ExecStart names the installed binary and config; the config's paths are the unit's directories.
        var unit = File.ReadAllLines(root[Unit]);
        var exec = Value(unit, "ExecStart").Split(' ');
        Assert.Equal(AgentCommand, exec[..3]);
        Assert.True(File.Exists(root[exec[0]]));
        var config = AgentConfig.Load(root[exec[3]]);
        Assert.Equal("/etc/loom/agent.json", exec[3]);
        Assert.Equal("sqlite", config.Store.Type);
        Assert.StartsWith($"/var/lib/{Value(unit, "StateDirectory")}/", config.Store.Path, StringComparison.Ordinal);
        Assert.Equal($"/run/{Value(unit, "RuntimeDirectory")}", config.StateDir);
        Assert.Equal("infinity", Value(unit, "LimitMEMLOCK"));
        Assert.Equal("simple", Value(unit, "Type"));
        Assert.Equal("on-failure", Value(unit, "Restart"));
        Assert.Equal("/etc/cni/net.d", config.CniConfDir); // postrm takes the agent's CNI configs back from there

        // systemd-analyze verify --root looks up the unit's binaries in the throwaway root; the targets it is ordered
        // against come from this machine's systemd (copied in, never overwriting the package's files).
        if (DebRoot.Which("systemd-analyze") is { } analyze && File.Exists("/lib/systemd/system/sysinit.target"))
        {
            Ok(Shell.Run("cp", ["-a", "-n", "/lib/systemd/system/.", root["/lib/systemd/system"]]));
            var verify = Ok(Shell.Run(analyze, ["verify", $"--root={root.Root}", Unit]));
            Assert.True(verify.Stdout.Trim().Length == 0 && verify.Stderr.Trim().Length == 0, verify.ToString()); // warnings too
        }
    }

    [PackageFact]
    public void The_installed_executables_run_from_their_symlinks_and_loom_loads_its_library_beside_the_real_file()
    {
        using var root = new DebRoot();
        Ok(root.Dpkg("-i", pkg.RequireDeb()));
        var built = Ok(Shell.Run(Path.Combine(pkg.BinDir, "loom"), ["--version"])).Stdout;
        Assert.Equal(built, Ok(Shell.Run(root["/usr/bin/loom"], ["--version"])).Stdout);
        var cni = Ok(Shell.Run(root["/opt/cni/bin/loom-cni"], [], new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" }));
        Assert.Contains("\"supportedVersions\"", cni.Stdout, StringComparison.Ordinal);

        // The shipped agent.json with its store moved into the test's root: `loom network list` parses it and opens
        // SQLite, which loads libe_sqlite3.so from AppContext.BaseDirectory; that directory is bpf/'s parent too.
        var json = File.ReadAllText(root["/etc/loom/agent.json"]).Replace("/var/lib/loom/state.db", root["/var/lib/loom/state.db"], StringComparison.Ordinal);
        Assert.Contains(root.Root, json, StringComparison.Ordinal);
        var config = root["/tmp-agent.json"];
        File.WriteAllText(config, json);
        var list = Ok(Shell.Run(root["/usr/bin/loom"], ["network", "list", "--config", config],
            new Dictionary<string, string> { ["LD_DEBUG"] = "files" }));
        Assert.Contains("No networks found.", list.Stdout, StringComparison.Ordinal);
        Assert.Contains($"file={root["/usr/lib/loom/libe_sqlite3.so"]} ", list.Stderr, StringComparison.Ordinal);
        Assert.True(File.Exists(root["/var/lib/loom/state.db"]));
    }

    [PackageFact]
    public void Remove_keeps_the_changed_conffiles_and_purge_leaves_nothing_of_the_package()
    {
        using var root = new DebRoot();
        var before = root.Files();
        var deb = pkg.RequireDeb();
        Ok(root.Dpkg("-i", deb));
        var packaged = Ok(Shell.Run("dpkg-deb", ["-c", deb])).Stdout;

        // What an operator and a running agent add: a changed conffile, the store, the node's CNI config, another
        // network's config set aside (cniExclusive).
        File.AppendAllText(root["/etc/loom/agent.json"], "// changed by the operator\n");
        Directory.CreateDirectory(root["/var/lib/loom"]);
        File.WriteAllText(root["/var/lib/loom/state.db"], "store");
        Directory.CreateDirectory(root["/etc/cni/net.d"]);
        File.WriteAllText(root["/etc/cni/net.d/10-loom.conflist"], "{}");
        File.WriteAllText(root["/etc/cni/net.d/20-other.conflist.loom_bak"], "{\"name\": \"other\"}");

        // Reinstalling (an upgrade's path through the scripts) keeps the operator's change.
        Ok(root.Dpkg("-i", deb));
        Assert.EndsWith("// changed by the operator\n", File.ReadAllText(root["/etc/loom/agent.json"]), StringComparison.Ordinal);

        Ok(root.Dpkg("-r", "loom"));
        Assert.Equal("deinstall ok config-files", root.Status("loom"));
        Assert.False(File.Exists(root["/usr/lib/loom/loom"]));
        Assert.False(File.Exists(root["/usr/bin/loom"]) || Directory.Exists(root["/usr/lib/loom"]));
        Assert.False(File.Exists(root["/opt/cni/bin/loom-cni"]) || File.Exists(root[Unit]));
        Assert.EndsWith("// changed by the operator\n", File.ReadAllText(root["/etc/loom/agent.json"]), StringComparison.Ordinal);
        Assert.True(File.Exists(root["/var/lib/loom/state.db"]), "remove is not purge: the store stays");
        Assert.False(File.Exists(root["/etc/cni/net.d/10-loom.conflist"]), "the agent's CNI config outlived its plugin");
        Assert.Equal("{\"name\": \"other\"}", File.ReadAllText(root["/etc/cni/net.d/20-other.conflist"]));

        Ok(root.Dpkg("-P", "loom"));
        Assert.Null(root.Status("loom"));
        var left = root.Files();
        left.ExceptWith(before);
        left.ExceptWith(["/etc", "/etc/cni", "/etc/cni/net.d", "/etc/cni/net.d/20-other.conflist"]); // the other network's, restored
        Assert.True(left.Count == 0, $"left after purge: {string.Join(", ", left)}\npackage:\n{packaged}");
    }

    [PackageFact]
    public void The_installed_agent_runs_the_units_command_and_loads_its_BPF_objects_from_beside_its_real_file()
    {
        using var root = new DebRoot();
        Ok(root.Dpkg("-i", pkg.RequireDeb()));

        // A node of the test's own: a namespace whose "eth0" (a bridge: it only has to exist, be up and have the
        // address) is the underlay; the store, CNI dir, state, IPAM and pins in the root or named after the namespace.
        using var ns = new TestNetns("pkg");
        var eth0 = ns.Netlink.LinkAdd(new BridgeSpec("eth0") { Mtu = 1500 });
        ns.Netlink.AddrAdd(eth0.Index, IPAddress.Parse("192.168.10.100"), 24);
        ns.Netlink.LinkSetUp(eth0.Index);
        var pins = Path.Combine(BpfFs.DefaultRoot, ns.Name);
        var config = root["/etc/loom/test-agent.json"];
        File.WriteAllText(config, $$"""
            {"iface": "eth0", "store": {"type": "sqlite", "path": "{{root["/var/lib/loom/state.db"]}}"}, "cniConfDir": "{{root["/etc/cni/net.d"]}}",
             "stateDir": "{{root["/run/loom"]}}", "ipamDataDir": "{{root["/var/lib/cni/networks"]}}", "bpfPinDir": "{{pins}}"}
            """);

        // The unit's ExecStart with the test's config and node name; run from inside the root with LOOM_BPF_DIR unset,
        // so the objects can only come from bpf/ beside the executable (no out/bpf above the working directory).
        var exec = Value(File.ReadAllLines(root[Unit]), "ExecStart").Split(' ')
            .Select(a => a switch { "/etc/loom/agent.json" => config, "%H" => "pkg-node", _ => a }).ToList();
        exec[0] = root[exec[0]];
        for (var dir = new DirectoryInfo(root.Root); dir is not null; dir = dir.Parent)
        {
            Assert.False(Directory.Exists(Path.Combine(dir.FullName, "out", "bpf")), "an out/bpf above the root would hide a miss");
        }

        var log = root["/agent.log"];
        try
        {
            using (Shell.StartInNetns(ns.Name, ["/bin/sh", "-c", "cd \"$0\" && exec env -u LOOM_BPF_DIR \"$@\" >agent.log 2>&1", root.Root, .. exec]))
            {
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (!File.Exists(root["/etc/cni/net.d/10-loom.conflist"]) && DateTime.UtcNow < deadline)
                {
                    Thread.Sleep(200);
                }

                var text = File.Exists(log) ? File.ReadAllText(log) : "(no log)";
                Assert.True(File.Exists(root["/etc/cni/net.d/10-loom.conflist"]), "the agent never became ready:\n" + text);

                // policy.o and flow_events.o, loaded at start, pinned their maps.
                Assert.True(File.Exists(Path.Combine(pins, "policy", "pol_endpoints")), "no policy pins:\n" + text);
                Assert.NotEmpty(Directory.GetFileSystemEntries(Path.Combine(pins, "events")));
            }
        }
        finally
        {
            BpfFs.RemoveTree(pins);
        }
    }

    private static string Resolve(string link) =>
        File.ResolveLinkTarget(link, returnFinalTarget: true)?.FullName ?? throw new InvalidOperationException(link + " is not a symlink");

    private static string Value(IEnumerable<string> unit, string key) =>
        unit.Where(l => l.StartsWith(key + "=", StringComparison.Ordinal)).Select(l => l[(key.Length + 1)..]).Single();

    private static ShellRun Ok(ShellRun run)
    {
        Assert.True(run.Ok, run.ToString());
        return run;
    }
}
