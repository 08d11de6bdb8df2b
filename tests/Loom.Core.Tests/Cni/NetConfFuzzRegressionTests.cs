using System.Text;
using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

/// <summary>Inputs the netconf fuzz target found crashing the parser (InvalidOperationException); now a clear CniException.</summary>
public class NetConfFuzzRegressionTests
{
    [Fact]
    public void Invalid_utf8_in_a_string_is_a_decoding_failure()
    {
        byte[] stdin = [.. "{\"cniVersion\":\"1.1.0\",\"name\":\""u8, 0xff, .. "\",\"type\":\"x\"}"u8];
        var e = Assert.Throws<CniException>(() => NetConf.Parse(stdin));
        Assert.Equal(CniErrorCodes.DecodingFailure, e.Code);
        Assert.Contains("UTF-8", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.1.0","name":"\ud800","type":"x"}""", "name")]
    [InlineData("""{"cniVersion":"1.1.0","name":"a","type":"x","dns":{"nameservers":["\udc00"]}}""", "dns.nameservers")]
    [InlineData("""{"cniVersion":"1.1.0","\ud800":1,"name":"a","type":"x"}""", "document")]
    public void A_lone_surrogate_escape_is_an_invalid_network_config(string json, string path)
    {
        var e = Assert.Throws<CniException>(() => NetConf.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(CniErrorCodes.InvalidNetworkConfig, e.Code);
        Assert.Contains($"key \"{path}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Peeking_the_version_of_undecodable_text_falls_back() =>
        Assert.Null(CniVersions.TryPeekConfigVersion("""{"cniVersion":"\ud800"}"""u8));
}
