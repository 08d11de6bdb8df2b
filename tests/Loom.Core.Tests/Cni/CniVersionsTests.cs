using System.Text;
using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

public class CniVersionsTests
{
    [Fact]
    public void Version_output_echoes_the_asked_version()
    {
        Assert.Equal(
            """{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}""",
            CniVersions.VersionJson("0.4.0"));
    }

    [Fact]
    public void Version_output_defaults_to_latest()
    {
        Assert.StartsWith("""{"cniVersion":"1.1.0",""", CniVersions.VersionJson(null), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"cniVersion":"0.4.0"}""", "0.4.0")]
    [InlineData("""{"name":"x","cniVersion":"1.0.0","bad":""", "1.0.0")]
    [InlineData("""{"name":{"cniVersion":"9"},"cniVersion":"0.3.1"}""", "0.3.1")]
    [InlineData("", null)]
    [InlineData("not json", null)]
    [InlineData("""{"cniVersion":1}""", null)]
    [InlineData("[]", null)]
    public void Peeks_the_config_version_even_from_broken_input(string stdin, string? expected)
    {
        Assert.Equal(expected, CniVersions.TryPeekConfigVersion(Encoding.UTF8.GetBytes(stdin)));
    }

    [Theory]
    [InlineData("0.3.0", "0.3.1", -1)]
    [InlineData("0.4.0", "0.3.1", 1)]
    [InlineData("1.0.0", "0.4.0", 1)]
    [InlineData("1.1.0", "1.1.0", 0)]
    [InlineData("0.10.0", "0.9.0", 1)]
    public void Compares_numerically(string a, string b, int sign)
    {
        Assert.Equal(sign, Math.Sign(CniVersions.Compare(a, b)));
    }

    [Fact]
    public void Comparing_junk_is_code_6()
    {
        Assert.Equal(CniErrorCodes.DecodingFailure, Assert.Throws<CniException>(() => CniVersions.Compare("1.x", "1.0.0")).Code);
    }
}
