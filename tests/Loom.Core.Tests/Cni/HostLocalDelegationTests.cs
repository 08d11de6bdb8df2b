using System.Text;
using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

/// <summary>
/// Delegates to Debian's reference host-local for real. host-local only checks that CNI_NETNS
/// exists and never enters it, so no namespace is created and the network is untouched.
/// </summary>
public sealed class HostLocalDelegationTests : IDisposable
{
    private const string PluginDir = "/usr/lib/cni";
    private readonly string _dataDir = Directory.CreateTempSubdirectory("loom-hostlocal-").FullName;

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    private static CniEnvironment Env(string command, string containerId) =>
        CniEnvironment.Parse(new System.Collections.Hashtable
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_NETNS"] = "/proc/self/ns/net",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = $"/nonexistent:{PluginDir}",
        });

    private NetConf Conf(string rangeStart = "10.250.0.10") => NetConf.Parse(Encoding.UTF8.GetBytes($$"""
        {
          "cniVersion": "1.0.0", "name": "loomtest", "type": "loom-cni", "bridge": "loomtest0",
          "ipam": {
            "type": "host-local",
            "ranges": [[{ "subnet": "10.250.0.0/24", "rangeStart": "{{rangeStart}}", "rangeEnd": "10.250.0.20", "gateway": "10.250.0.1" }]],
            "routes": [{ "dst": "0.0.0.0/0" }],
            "dataDir": "{{_dataDir}}"
          }
        }
        """));

    [Fact]
    public async Task Add_allocates_from_the_range_and_del_frees_it()
    {
        Assert.True(File.Exists(Path.Combine(PluginDir, "host-local")), "containernetworking-plugins must be installed");
        var conf = Conf();
        var reservation = Path.Combine(_dataDir, "loomtest", "10.250.0.10");

        var result = await new IpamInvoker(Env("ADD", "loomtest-c1"), stderr: Stream.Null).AddAsync(conf);

        Assert.Equal("1.0.0", result.CniVersion);
        var ip = Assert.Single(result.Ips);
        Assert.Equal("10.250.0.10/24", ip.Address.ToString());
        Assert.Equal("10.250.0.1", ip.Gateway?.ToString());
        Assert.Null(ip.Interface);
        Assert.Equal("0.0.0.0/0", Assert.Single(result.Routes).Destination.ToString());
        Assert.True(File.Exists(reservation));

        var second = await new IpamInvoker(Env("ADD", "loomtest-c2"), stderr: Stream.Null).AddAsync(conf);
        Assert.Equal("10.250.0.11/24", second.Ips[0].Address.ToString());

        await new IpamInvoker(Env("DEL", "loomtest-c1"), stderr: Stream.Null).DelAsync(conf);
        Assert.False(File.Exists(reservation));

        // DEL is idempotent per spec.
        await new IpamInvoker(Env("DEL", "loomtest-c1"), stderr: Stream.Null).DelAsync(conf);
    }

    [Fact]
    public async Task Host_local_errors_come_back_with_its_code_and_message()
    {
        var ex = await Assert.ThrowsAsync<CniException>(
            () => new IpamInvoker(Env("ADD", "loomtest-c3"), stderr: Stream.Null).AddAsync(Conf(rangeStart: "10.251.0.10")));
        Assert.Equal(CniErrorCodes.Internal, ex.Code);
        Assert.Contains("not in network 10.250.0.0/24", ex.Msg, StringComparison.Ordinal);
    }
}
