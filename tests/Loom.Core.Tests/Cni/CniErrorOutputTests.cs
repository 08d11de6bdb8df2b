using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

public class CniErrorOutputTests
{
    [Fact]
    public void Error_json_has_the_spec_shape()
    {
        var e = new CniException(CniErrorCodes.InvalidNetworkConfig, "Invalid Configuration", "Network 192.168.0.0/31 too small to allocate from.");
        Assert.Equal(
            """{"cniVersion":"1.1.0","code":7,"msg":"Invalid Configuration","details":"Network 192.168.0.0/31 too small to allocate from."}""",
            CniErrorOutput.ToJson(e, "1.1.0"));
    }

    [Fact]
    public void Empty_details_are_omitted_and_version_defaults_to_latest()
    {
        Assert.Equal("""{"cniVersion":"1.1.0","code":11,"msg":"busy"}""", CniErrorOutput.ToJson(new CniException(CniErrorCodes.TryAgainLater, "busy"), null));
    }

    [Fact]
    public void Error_is_printed_in_the_config_version()
    {
        Assert.StartsWith("""{"cniVersion":"0.3.1",""", CniErrorOutput.ToJson(new CniException(CniErrorCodes.IOFailure, "x"), "0.3.1"), StringComparison.Ordinal);
    }

    [Fact]
    public void Report_prints_on_stdout_and_returns_exit_code_1()
    {
        using var stdout = new StringWriter();
        var exit = CniErrorOutput.Report(new CniException(CniErrorCodes.PluginNotAvailable, "daemon down"), "1.1.0", stdout);
        Assert.Equal(1, exit);
        Assert.Equal("""{"cniVersion":"1.1.0","code":50,"msg":"daemon down"}""" + Environment.NewLine, stdout.ToString());
    }

    [Fact]
    public void Foreign_exceptions_become_code_999()
    {
        using var stdout = new StringWriter();
        CniErrorOutput.Report(new InvalidOperationException("boom"), "1.0.0", stdout);
        Assert.Equal("""{"cniVersion":"1.0.0","code":999,"msg":"boom"}""", stdout.ToString().Trim());
    }

    [Fact]
    public void Codes_match_the_spec_table()
    {
        Assert.Equal(
            [1u, 2u, 3u, 4u, 5u, 6u, 7u, 11u, 50u, 51u],
            [CniErrorCodes.IncompatibleCniVersion, CniErrorCodes.UnsupportedField, CniErrorCodes.UnknownContainer,
             CniErrorCodes.InvalidEnvironmentVariables, CniErrorCodes.IOFailure, CniErrorCodes.DecodingFailure,
             CniErrorCodes.InvalidNetworkConfig, CniErrorCodes.TryAgainLater, CniErrorCodes.PluginNotAvailable,
             CniErrorCodes.LimitedConnectivity]);
    }
}
