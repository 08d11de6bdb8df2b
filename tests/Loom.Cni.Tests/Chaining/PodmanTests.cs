using System.Globalization;
using Loom.Testing;
using Xunit.Abstractions;

namespace Loom.Cni.Tests.Chaining;

/// <summary>
/// podman 4 (CNI backend) as the runtime, run inside a node namespace: a busybox httpd
/// container on a Loom network [loom-cni, portmap] with <c>-p HOSTPORT:80</c>, reached through the mapped port from a
/// second pod on the node's bridge; <c>podman rm -f</c> must make loom-cni's DEL run. podman keeps its storage, run
/// state, config and network configs in a temp dir; nothing of it may show up in the root network namespace.
/// runc runs through the repository's tests/tools/runc-norlimit (root here lacks CAP_SYS_RESOURCE, so runc cannot
/// apply podman's rlimits), and podman through nsenter rather than <c>ip netns exec</c>, whose remount of /sys would
/// hide the cgroup mounts podman needs.
/// </summary>
public sealed class PodmanTests : IDisposable
{
    private const string Network = "loomnet";
    private const string Image = "localhost/loom-busybox:test";
    private const int HostPort = 18081;
    private const string LibcniCache = "/var/lib/cni";
    private const string PodmanShmLock = "/dev/shm/libpod_lock";

    private readonly ITestOutputHelper _output;
    private readonly TestNetns _node = new("node");
    private readonly TestNetns _client = new("cli");
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-podman").FullName;
    private readonly bool _cacheExisted = Directory.Exists(LibcniCache);
    private readonly bool _lockExisted = File.Exists(PodmanShmLock);
    private readonly SortedSet<string> _rootLinks = Net.RootLinks();
    private readonly string[] _podmanNetnsBefore = PodmanNetns();
    private readonly string _podman;
    // The containers' cgroups go under a parent named for this test, not libpod_parent.
    private readonly string _cgroupParent = $"loom-podman-{Environment.ProcessId}";
    private readonly Dictionary<string, string> _env;
    private ConflistRunner? _clientChain;
    private bool _imported;

    public PodmanTests(ITestOutputHelper output)
    {
        _output = output;
        try
        {
            // Missing tools fail the test with the reason; nothing is skipped.
            _podman = Shell.Require("podman");
            var realRunc = Shell.Require("runc");
            Shell.Require("jq");
            Shell.Require("curl");
            Shell.Require(Net.Busybox);
            var norlimit = Shell.Require(Path.Combine(RepoPaths.Root, "tests", "tools", "runc-norlimit"),
                "podman needs the repository's runc wrapper tests/tools/runc-norlimit");
            if (!File.GetUnixFileMode(norlimit).HasFlag(UnixFileMode.UserExecute))
            {
                throw new InvalidOperationException($"{norlimit} is not executable (chmod +x it; git keeps it 0755)");
            }

            foreach (var d in new[] { "net.d", "root", "runroot", "tmp", "ipam", "www", "img/bin" })
            {
                Directory.CreateDirectory(Path.Combine(_dir, d));
            }

            File.WriteAllText(Path.Combine(_dir, "net.d", Network + ".conflist"), Conflist());
            // runc keeps its state in /run/runc unless told otherwise, and podman's cleanup process does not pass
            // --runtime-flag on: a wrapper gives every runc call this test's state dir.
            var runc = Path.Combine(_dir, "runc-wrap");
            File.WriteAllText(runc, $"#!/bin/sh\nexport RUNC={realRunc}\nexec {norlimit} --root={_dir}/runc \"$@\"\n");
            Assert.True(Shell.Run(Shell.Require("chmod"), ["0700", runc]).Ok);
            File.WriteAllText(Path.Combine(_dir, "containers.conf"), $$"""
                [containers]
                default_ulimits = []
                [engine]
                runtime = "runc"
                cgroup_manager = "cgroupfs"
                events_logger = "none"
                tmp_dir = "{{_dir}}/tmp"
                [engine.runtimes]
                runc = ["{{runc}}"]
                [network]
                network_backend = "cni"
                network_config_dir = "{{_dir}}/net.d"
                cni_plugin_dirs = ["{{CniRunner.BinDir}}", "{{CniRunner.ReferenceDir}}"]
                default_network = "{{Network}}"
                """);
            File.WriteAllText(Path.Combine(_dir, "storage.conf"), $$"""
                [storage]
                driver = "vfs"
                graphroot = "{{_dir}}/root"
                runroot = "{{_dir}}/runroot"
                """);
            _env = new()
            {
                ["CONTAINERS_CONF"] = Path.Combine(_dir, "containers.conf"),
                ["CONTAINERS_STORAGE_CONF"] = Path.Combine(_dir, "storage.conf"),
            };
        }
        catch
        {
            Dispose(); // xunit does not dispose a test class whose constructor threw
            throw;
        }
    }

    private string Conflist() => $$$"""
        {"cniVersion": "1.0.0", "name": "{{{Network}}}", "plugins": [
          {"type": "loom-cni", "bridge": "cni0", "isGateway": true,
           "ipam": {"type": "loom", "ranges": [[{"subnet": "10.244.23.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "{{{_dir}}}/ipam"}},
          {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
        ]}
        """;

    private string ClientConflist() => $$$"""
        {"cniVersion": "1.0.0", "name": "{{{Network}}}", "plugins": [
          {"type": "loom-cni", "bridge": "cni0", "isGateway": true,
           "ipam": {"type": "loom", "ranges": [[{"subnet": "10.244.23.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "{{{_dir}}}/ipam"}}
        ]}
        """;

    /// <summary>podman with this test's storage and config, run inside the node namespace.</summary>
    private ShellRun Podman(params string[] args) =>
        Shell.InNetns(_node.Name,
            new[]
            {
                _podman, "--root", Path.Combine(_dir, "root"), "--runroot", Path.Combine(_dir, "runroot"), "--tmpdir", Path.Combine(_dir, "tmp"),
            }.Concat(args),
            _env, TimeSpan.FromSeconds(60));

    private ShellRun PodmanOk(params string[] args)
    {
        var run = Podman(args);
        Assert.True(run.Ok, run.ToString());
        return run;
    }

    private static string[] PodmanNetns() =>
        Directory.Exists("/var/run/netns") ? Directory.GetFiles("/var/run/netns", "netns-*").Order(StringComparer.Ordinal).ToArray() : [];

    [Fact]
    public void Podman_runs_a_container_on_a_loom_network_reachable_through_its_mapped_port_and_rm_runs_loom_del()
    {
        // A busybox image without a registry: static busybox and applet links, tarred, imported.
        var img = Path.Combine(_dir, "img");
        File.Copy(Net.Busybox, Path.Combine(img, "bin", "busybox"));
        foreach (var applet in new[] { "sh", "httpd", "nc", "sleep", "cat" })
        {
            File.CreateSymbolicLink(Path.Combine(img, "bin", applet), "busybox");
        }

        var tar = Path.Combine(_dir, "img.tar");
        var tarRun = Shell.Run(Shell.Require("tar"), ["-C", img, "-cf", tar, "."]);
        Assert.True(tarRun.Ok, tarRun.ToString());
        PodmanOk("import", tar, Image);
        _imported = true;

        var token = "loom-podman-" + Guid.NewGuid().ToString("N");
        File.WriteAllText(Path.Combine(_dir, "www", "index.html"), token);
        var run = Podman("run", "-d", "--name", "web", "--cgroup-parent", "/" + _cgroupParent, "--network", Network, "-p", $"{HostPort}:80",
            "-v", $"{Path.Combine(_dir, "www")}:/www:ro", Image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www");
        Assert.True(run.Ok, "podman run failed:\n" + run);
        var id = run.Stdout.Trim().Split('\n')[^1];
        Assert.Matches("^[0-9a-f]{64}$", id);

        var ip = PodmanOk("inspect", "--format", $"{{{{.NetworkSettings.Networks.{Network}.IPAddress}}}}", "web").Stdout.Trim();
        Assert.StartsWith("10.244.23.", ip, StringComparison.Ordinal);
        _output.WriteLine($"container {id[..12]} has {ip}");

        // loom-cni's ADD ran: its veth on cni0 in the node namespace, its address recorded, podman's cache of the result.
        var hostVeth = HostVeth.Name(id, "eth0");
        var bridge = _node.Netlink.LinkByName("cni0");
        Assert.NotNull(bridge);
        Assert.Equal(bridge.Index, _node.Netlink.LinkByName(hostVeth)?.MasterIndex);
        Assert.True(File.Exists(Path.Combine(_dir, "ipam", Network, ip)), "loom's IPAM recorded the container's address");
        var cached = Path.Combine(LibcniCache, "results", $"{Network}-{id}-eth0");
        Assert.True(File.Exists(cached), "libcni cached the ADD result");
        Assert.Contains(hostVeth, File.ReadAllText(cached), StringComparison.Ordinal);
        Assert.Contains($"--dport {HostPort} -j DNAT --to-destination {ip}:80", Net.NatRules(_node.Name), StringComparison.Ordinal);

        // The container answers: directly from the node, and through the mapped port from a second pod on the bridge.
        var direct = Net.GetWhenUp(_node.Name, $"http://{ip}:80/", token, TimeSpan.FromSeconds(10));
        Assert.True(direct.Ok && direct.Stdout == token, direct.ToString());
        _clientChain = new ConflistRunner(_node.Handle, ClientConflist());
        var clientAdd = _clientChain.Add("cli1", $"/var/run/netns/{_client.Name}");
        Assert.True(clientAdd.Ok, clientAdd.ToString());
        var mapped = Net.Fetch(_client.Name, $"http://10.244.23.1:{HostPort}/");
        Assert.True(mapped.Ok && mapped.Stdout == token, mapped.ToString());

        // rm -f: podman runs the list's DEL (portmap, then loom-cni).
        PodmanOk("rm", "-f", "-t", "0", "web");
        Assert.Null(_node.Netlink.LinkByName(hostVeth));
        Assert.False(File.Exists(Path.Combine(_dir, "ipam", Network, ip)), "loom-cni's DEL freed the address");
        Assert.False(File.Exists(cached), "libcni dropped the cached result");
        var nat = Net.NatRules(_node.Name);
        Assert.DoesNotContain($"--to-destination {ip}:80", nat, StringComparison.Ordinal);
        Assert.DoesNotContain(id, nat, StringComparison.Ordinal);
        Assert.Null(Net.Get(_client.Name, $"http://10.244.23.1:{HostPort}/", 1));

        // Nothing podman made is left in the root namespace or in /var/run/netns.
        Assert.Equal(_rootLinks, Net.RootLinks());
        Assert.Equal(_podmanNetnsBefore, PodmanNetns());
    }

    public void Dispose()
    {
        if (_env is not null) // null when the constructor failed before podman was set up
        {
            Try(() => Podman("rm", "-a", "-f", "-t", "0"));
        }

        if (_imported)
        {
            Try(() => Podman("rmi", "-a", "-f"));
        }

        Try(() => _clientChain?.Del("cli1", $"/var/run/netns/{_client.Name}"));
        Try(UnmountUnderDir);
        Try(RemoveCgroups);
        Try(() => Directory.Delete(_dir, recursive: true));
        // podman's CNI backend always caches results under /var/lib/cni, and its SHM lock lives in /dev/shm:
        // if this test brought them into being, it takes them away again.
        if (!_cacheExisted && Directory.Exists(LibcniCache) && Directory.GetFiles(LibcniCache, "*", SearchOption.AllDirectories).Length == 0)
        {
            Try(() => Directory.Delete(LibcniCache, recursive: true));
        }

        if (!_lockExisted)
        {
            Try(() => File.Delete(PodmanShmLock));
        }

        _client.Dispose();
        _node.Dispose();
    }

    private void UnmountUnderDir()
    {
        var mounts = File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => l.Split(' ')[4])
            .Where(m => m.StartsWith(_dir + "/", StringComparison.Ordinal))
            .OrderByDescending(m => m.Length);
        foreach (var m in mounts)
        {
            _output.WriteLine("unmounting leftover " + m);
            Shell.Run(Shell.Require("umount"), ["-l", m]);
        }
    }

    /// <summary>The (empty, once the container is gone) cgroups podman made under the test's parent, deepest first.</summary>
    private void RemoveCgroups()
    {
        foreach (var parent in Directory.GetDirectories("/sys/fs/cgroup").Select(c => Path.Combine(c, _cgroupParent)).Where(Directory.Exists))
        {
            foreach (var d in Directory.GetDirectories(parent, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(parent))
            {
                try
                {
                    Directory.Delete(d); // rmdir: cgroupfs refuses anything else, and refuses while processes remain
                }
                catch (IOException e)
                {
                    _output.WriteLine($"cgroup {d}: {e.Message}");
                }
            }
        }
    }

    private void Try(Action a)
    {
        try
        {
            a();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _output.WriteLine("cleanup: " + e.Message);
        }
    }

    private void Try(Func<object?> f) => Try(() => { _ = f(); });
}
