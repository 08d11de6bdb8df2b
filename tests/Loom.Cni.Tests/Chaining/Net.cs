using System.Text.Json;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Cni.Tests.Chaining;

/// <summary>Probes used by the chaining tests; every one runs inside a test namespace (nsenter), none in the root one.</summary>
internal static class Net
{
    public const string Busybox = "/bin/busybox";

    /// <summary>HTTP GET with curl from inside <paramref name="netns"/>; null when it fails.</summary>
    public static string? Get(string netns, string url, int timeoutSeconds = 2) => Fetch(netns, url, timeoutSeconds) is { Ok: true } run ? run.Stdout : null;

    /// <summary>HTTP GET with curl from inside <paramref name="netns"/>, with the whole run for diagnostics.</summary>
    public static ShellRun Fetch(string netns, string url, int timeoutSeconds = 2)
    {
        // curl, not busybox wget: Debian's static busybox wget segfaults (static glibc resolver).
        return Shell.InNetns(netns, [Shell.Require("curl"), "-sS", "--noproxy", "*", "-m", timeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), url],
            timeout: TimeSpan.FromSeconds(timeoutSeconds + 5));
    }

    /// <summary>Polls until GET returns <paramref name="expected"/> (a server takes a moment to listen).</summary>
    public static ShellRun GetWhenUp(string netns, string url, string expected, TimeSpan timeout)
    {
        ShellRun? run = null;
        Shell.WaitFor(() => (run = Fetch(netns, url, 1)).Ok && run.Stdout.Contains(expected, StringComparison.Ordinal), timeout);
        return run!;
    }

    /// <summary>A busybox httpd serving <paramref name="dir"/> on <paramref name="port"/> inside <paramref name="netns"/>.</summary>
    public static BackgroundProcess Httpd(string netns, string dir, int port) =>
        Shell.StartInNetns(netns, Shell.Require(Busybox), "httpd", "-f", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-h", dir);

    public static string NatRules(string netns)
    {
        var run = Shell.InNetns(netns, [Shell.Require("iptables-save"), "-t", "nat"]);
        Assert.True(run.Ok, run.ToString());
        return run.Stdout;
    }

    public static string Sysctl(string netns, string key)
    {
        var run = Shell.InNetns(netns, ["/bin/cat", "/proc/sys/" + key.Replace('.', '/')]);
        Assert.True(run.Ok, run.ToString());
        return run.Stdout.Trim();
    }

    /// <summary>Names of the links in the root namespace (read only): must be the same before and after a test.</summary>
    public static SortedSet<string> RootLinks()
    {
        using var nl = Netlink.Open();
        return new SortedSet<string>(nl.LinkList().Select(l => l.Name), StringComparer.Ordinal);
    }

    public static JsonElement Interface(JsonElement result, string name) =>
        result.GetProperty("interfaces").EnumerateArray().Single(i => i.GetProperty("name").GetString() == name);

    public static string PodAddress(JsonElement result) =>
        result.GetProperty("ips")[0].GetProperty("address").GetString()!.Split('/')[0];
}
