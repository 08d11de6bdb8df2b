using Loom.Testing;
using Loom.Testing.Fakes;

namespace Loom.Linux.Tests.Fakes;

/// <summary>The fake is only worth its golden tests if it answers like the kernel: run one script on both and compare.</summary>
public class FakeNetlinkConformanceTests
{
    [Fact]
    public void The_fake_gives_the_kernels_errors_and_ends_in_the_kernels_state()
    {
        using var fake = new FakeNetlink();
        var fakeLog = FakeNetlinkScript.Run(fake);
        var fakeDump = fake.Dump();

        using var ns = new TestNetns("fake");
        var realLog = FakeNetlinkScript.Run(ns.Netlink);

        // New namespaces may hold the kernel's fallback tunnel devices (tunl0, sit0...): compare the script's links only.
        // The kernel also resolves neighbours on its own (IGMP groups, vxlan remotes): compare the permanent ones we made.
        var realDump = string.Concat(NetlinkDump.Of(ns.Netlink).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith("link ", StringComparison.Ordinal) || FakeNetlinkScript.Links.Contains(l.Split(' ')[1]))
            .Where(l => !l.StartsWith("neigh ", StringComparison.Ordinal) || l.EndsWith(" permanent", StringComparison.Ordinal))
            .Select(l => l + "\n"));

        Assert.Equal(string.Join("\n", realLog), string.Join("\n", fakeLog));
        Assert.True(realDump == fakeDump, $"kernel:\n{realDump}\nfake:\n{fakeDump}");
        Assert.Equal(FakeNetlinkScript.TearDown(ns.Netlink), FakeNetlinkScript.TearDown(fake));
    }
}
