using System.Security.Cryptography;
using System.Text;
using Loom.Core.Cni;

namespace Loom.Cni.Tests;

/// <summary>
/// Host veth names and routed aliases come from a managed SHA-256 (no OpenSSL load per call): they must stay exactly
/// the BCL's digest, or a DEL by a new plugin would miss the veth an older one made. Lengths cross the 55/56/64-byte
/// padding boundaries and several blocks.
/// </summary>
public sealed class VethNameTests
{
    [Fact]
    public void Host_veth_names_are_the_sha256_of_id_and_ifname()
    {
        for (var length = 1; length <= 200; length++)
        {
            var id = string.Concat(Enumerable.Range(0, length).Select(i => (char)('a' + (i * 7 % 26))));
            var expected = "veth" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id + "/eth0")))[..11];
            Assert.Equal(expected, CniNames.HostVethName(id, "eth0"));
        }
    }

    [Fact]
    public void Long_network_aliases_are_the_full_sha256()
    {
        for (var length = 201; length <= 400; length += 13)
        {
            var name = new string('n', length - 1) + "é";
            var expected = "loom-cni:#" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)));
            Assert.Equal(expected, CniNames.RoutedVethAlias(name));
        }
    }
}
