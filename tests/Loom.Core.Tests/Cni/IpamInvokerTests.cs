using System.Text;
using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

public sealed class IpamInvokerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("loom-ipam-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private sealed class FakeRunner(PluginRunResult result) : IPluginRunner
    {
        public string? Path { get; private set; }

        public byte[]? Stdin { get; private set; }

        public IReadOnlyDictionary<string, string>? Environment { get; private set; }

        public Task<PluginRunResult> RunAsync(string path, ReadOnlyMemory<byte> stdin, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
        {
            Path = path;
            Stdin = stdin.ToArray();
            Environment = environment;
            return Task.FromResult(result);
        }
    }

    private const string Config = """{"cniVersion":"1.0.0","name":"n","type":"loom-cni","ipam":{"type":"fake-ipam","subnet":"10.1.0.0/16"}}""";

    private string MakeDir(string name, params string[] plugins)
    {
        var dir = Path.Combine(_root, name);
        Directory.CreateDirectory(dir);
        foreach (var p in plugins)
        {
            File.WriteAllText(Path.Combine(dir, p), "");
        }

        return dir;
    }

    private static CniEnvironment Env(string command, string path) =>
        CniEnvironment.Parse(new System.Collections.Hashtable
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = "c1",
            ["CNI_NETNS"] = "/proc/self/ns/net",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME=web",
            ["CNI_PATH"] = path,
        });

    private static PluginRunResult Ok(string stdout, string stderr = "") => new(0, Encoding.UTF8.GetBytes(stdout), Encoding.UTF8.GetBytes(stderr));

    [Fact]
    public async Task Add_runs_the_first_hit_on_CNI_PATH_with_the_raw_config_and_environment()
    {
        var empty = MakeDir("empty");
        var first = MakeDir("first", "fake-ipam");
        var second = MakeDir("second", "fake-ipam");
        var runner = new FakeRunner(Ok("""{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1"}]}""", "log line\n"));
        var stderr = new MemoryStream();
        var inherited = new Dictionary<string, string> { ["PATH"] = "/usr/bin", ["CNI_COMMAND"] = "stale" };
        var invoker = new IpamInvoker(Env("ADD", $"{empty}::{first}:{second}"), runner, stderr, inherited);
        var conf = NetConf.Parse(Encoding.UTF8.GetBytes(Config));

        var result = await invoker.AddAsync(conf);

        Assert.Equal(Path.Combine(first, "fake-ipam"), runner.Path);
        Assert.Equal(Encoding.UTF8.GetBytes(Config), runner.Stdin);
        Assert.Equal("ADD", runner.Environment!["CNI_COMMAND"]);
        Assert.Equal("c1", runner.Environment["CNI_CONTAINERID"]);
        Assert.Equal("/proc/self/ns/net", runner.Environment["CNI_NETNS"]);
        Assert.Equal("eth0", runner.Environment["CNI_IFNAME"]);
        Assert.Equal("IgnoreUnknown=1;K8S_POD_NAME=web", runner.Environment["CNI_ARGS"]);
        Assert.Equal("/usr/bin", runner.Environment["PATH"]);
        Assert.Equal("10.1.0.5/16", result.Ips[0].Address.ToString());
        Assert.Equal("log line\n", Encoding.UTF8.GetString(stderr.ToArray()));
    }

    [Theory]
    [InlineData(CniCommand.Del, "DEL")]
    [InlineData(CniCommand.Check, "CHECK")]
    [InlineData(CniCommand.Status, "STATUS")]
    [InlineData(CniCommand.Gc, "GC")]
    public async Task Other_commands_override_CNI_COMMAND(CniCommand command, string wire)
    {
        var runner = new FakeRunner(Ok(""));
        var invoker = new IpamInvoker(Env("ADD", MakeDir("bin", "fake-ipam")), runner, Stream.Null, new Dictionary<string, string>());
        var conf = NetConf.Parse(Encoding.UTF8.GetBytes(Config));
        Task call = command switch
        {
            CniCommand.Del => invoker.DelAsync(conf),
            CniCommand.Check => invoker.CheckAsync(conf),
            CniCommand.Status => invoker.StatusAsync(conf),
            _ => invoker.GcAsync(conf),
        };
        await call;
        Assert.Equal(wire, runner.Environment!["CNI_COMMAND"]);
    }

    [Fact]
    public async Task Plugin_error_result_is_rethrown_with_the_same_code_and_message()
    {
        var runner = new FakeRunner(new PluginRunResult(1, Encoding.UTF8.GetBytes("""{"cniVersion":"1.0.0","code":11,"msg":"try later","details":"lock held"}"""), []));
        var invoker = new IpamInvoker(Env("ADD", MakeDir("bin", "fake-ipam")), runner, Stream.Null, new Dictionary<string, string>());
        var ex = await Assert.ThrowsAsync<CniException>(() => invoker.AddAsync(NetConf.Parse(Encoding.UTF8.GetBytes(Config))));
        Assert.Equal(CniErrorCodes.TryAgainLater, ex.Code);
        Assert.Equal("try later", ex.Msg);
        Assert.Equal("lock held", ex.Details);
    }

    [Theory]
    [InlineData("", "boom on stderr", "boom on stderr")]
    [InlineData("", "", "no error message")]
    [InlineData("not json", "", "could not be parsed")]
    public async Task Unparsable_failures_still_fail_with_999(string stdout, string stderr, string expected)
    {
        var runner = new FakeRunner(new PluginRunResult(2, Encoding.UTF8.GetBytes(stdout), Encoding.UTF8.GetBytes(stderr)));
        var invoker = new IpamInvoker(Env("ADD", MakeDir("bin", "fake-ipam")), runner, Stream.Null, new Dictionary<string, string>());
        var ex = await Assert.ThrowsAsync<CniException>(() => invoker.AddAsync(NetConf.Parse(Encoding.UTF8.GetBytes(Config))));
        Assert.Equal(CniErrorCodes.Internal, ex.Code);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_add_result_is_code_6()
    {
        var invoker = new IpamInvoker(Env("ADD", MakeDir("bin", "fake-ipam")), new FakeRunner(Ok("{\"ips\":")), Stream.Null, new Dictionary<string, string>());
        var ex = await Assert.ThrowsAsync<CniException>(() => invoker.AddAsync(NetConf.Parse(Encoding.UTF8.GetBytes(Config))));
        Assert.Equal(CniErrorCodes.DecodingFailure, ex.Code);
    }

    [Fact]
    public void Missing_plugin_and_missing_path_fail_clearly()
    {
        var invoker = new IpamInvoker(Env("ADD", MakeDir("bin")), new FakeRunner(Ok("")), Stream.Null, new Dictionary<string, string>());
        Assert.Contains("failed to find plugin \"fake-ipam\"", Assert.Throws<CniException>(() => invoker.FindPlugin("fake-ipam")).Msg, StringComparison.Ordinal);
        Assert.Equal(CniErrorCodes.InvalidNetworkConfig, Assert.Throws<CniException>(() => invoker.FindPlugin("../x")).Code);

        var noPath = new IpamInvoker(CniEnvironment.Parse(new System.Collections.Hashtable { ["CNI_COMMAND"] = "STATUS" }), new FakeRunner(Ok("")), Stream.Null);
        var ex = Assert.Throws<CniException>(() => noPath.FindPlugin("fake-ipam"));
        Assert.Equal(CniErrorCodes.InvalidEnvironmentVariables, ex.Code);
        Assert.Contains("CNI_PATH", ex.Msg, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Config_without_ipam_is_code_7()
    {
        var invoker = new IpamInvoker(Env("ADD", MakeDir("bin", "fake-ipam")), new FakeRunner(Ok("")), Stream.Null, new Dictionary<string, string>());
        var conf = NetConf.Parse("""{"cniVersion":"1.0.0","name":"n","type":"t"}"""u8);
        Assert.Equal(CniErrorCodes.InvalidNetworkConfig, (await Assert.ThrowsAsync<CniException>(() => invoker.AddAsync(conf))).Code);
    }
}
