using Loom.Workloads;

namespace Loom.Lab.Tests;

/// <summary>agnhost's flags as the e2e passes them (Go's pflag syntax), and connect's refusals of bad arguments.</summary>
public sealed class AgnhostTests
{
    [Fact]
    public void Serve_hostname_reads_the_flags_the_e2e_gives()
    {
        Assert.Equal(new ServeHostnameOptions(true, false, false, 80), Agnhost.ParseServeHostname(["--tcp", "--http=false", "--port", "80"]));
        Assert.Equal(new ServeHostnameOptions(false, true, false, 81), Agnhost.ParseServeHostname(["--udp", "--http=false", "--port=81"]));
        Assert.Equal(new ServeHostnameOptions(false, false, true, Agnhost.DefaultServePort), Agnhost.ParseServeHostname([]));
        Assert.Equal(new ServeHostnameOptions(false, true, true, 8080), Agnhost.ParseServeHostname(["--udp=true", "--port", "8080"]));
    }

    [Theory]
    [InlineData(new[] { "--tcp", "--port", "80" }, "--tcp and --http both listen on TCP port 80")]
    [InlineData(new[] { "--http=false" }, "nothing to serve")]
    [InlineData(new[] { "--tcp", "--http=false", "--port", "0" }, "invalid argument \"0\" for \"--port\" flag")]
    [InlineData(new[] { "--tcp", "--http=false", "--port" }, "flag needs an argument: --port")]
    [InlineData(new[] { "--tcp", "--http=maybe" }, "invalid argument \"maybe\" for \"--http\" flag")]
    [InlineData(new[] { "--sctp" }, "unknown flag: --sctp")]
    [InlineData(new[] { "80" }, "unexpected argument: 80")]
    public void Serve_hostname_refuses_bad_flags_naming_them(string[] args, string expected) =>
        Assert.Contains(expected, Assert.Throws<ArgumentException>(() => Agnhost.ParseServeHostname(args)).Message, StringComparison.Ordinal);

    [Theory]
    [InlineData("1s", 1000)]
    [InlineData("500ms", 500)]
    [InlineData("1.5s", 1500)]
    [InlineData("2m", 120_000)]
    public void Timeouts_are_go_durations(string text, int ms) => Assert.Equal(TimeSpan.FromMilliseconds(ms), Agnhost.GoDuration(text));

    [Theory]
    [InlineData(new[] { "10.244.1.5:80", "--protocol=sctp" }, "Unsupported protocol\n")]
    [InlineData(new[] { "10.244.1.5:80", "--timeout=soon" }, "invalid argument \"soon\" for \"--timeout\" flag")]
    [InlineData(new[] { "--timeout=1s" }, "usage: agnhost connect HOST:PORT")]
    [InlineData(new[] { "10.244.1.5:80", "10.244.1.6:80" }, "one destination expected")]
    [InlineData(new[] { "10.244.1.5", "--timeout=1s" }, "OTHER: address 10.244.1.5: missing or invalid port")]
    public async Task Connect_exits_1_with_the_reason_for_bad_arguments(string[] args, string expected)
    {
        var stderr = new StringWriter();
        Assert.Equal(1, await Agnhost.ConnectAsync(args, stderr));
        Assert.Contains(expected, stderr.ToString(), StringComparison.Ordinal);
    }
}
