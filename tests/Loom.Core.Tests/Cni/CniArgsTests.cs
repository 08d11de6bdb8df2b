using System.Net;
using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

public class CniArgsTests
{
    [Fact]
    public void Empty_is_empty()
    {
        Assert.Empty(CniArgs.Parse(null).Values);
        Assert.Empty(CniArgs.Parse("").Values);
    }

    [Fact]
    public void Well_known_keys()
    {
        var a = CniArgs.Parse("IP=10.1.0.9;MAC=0a:58:0a:01:00:09;K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=prod;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1");
        Assert.Equal(IPAddress.Parse("10.1.0.9"), a.Ip);
        Assert.Equal("0a:58:0a:01:00:09", a.Mac);
        Assert.Equal("web-0", a.K8sPodName);
        Assert.Equal("prod", a.K8sPodNamespace);
        Assert.Equal("abc", a.K8sPodInfraContainerId);
        Assert.Equal("u-1", a.K8sPodUid);
        Assert.False(a.IgnoreUnknown);
    }

    [Fact]
    public void Ip_may_carry_a_prefix()
    {
        Assert.Equal(IPAddress.Parse("fd00::5"), CniArgs.Parse("IP=fd00::5/64").Ip);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("true")]
    [InlineData("True")]
    [InlineData("TRUE")]
    public void IgnoreUnknown_true_allows_unknown_keys(string value)
    {
        var a = CniArgs.Parse($"FOO=1;IgnoreUnknown={value};BAR=2");
        Assert.True(a.IgnoreUnknown);
        Assert.Equal("2", a.Get("BAR"));
    }

    [Theory]
    [InlineData("FOO=1")]
    [InlineData("IgnoreUnknown=0;FOO=1")]
    [InlineData("IgnoreUnknown=false;FOO=1")]
    [InlineData("ignoreunknown=1;FOO=1")]
    public void Unknown_key_without_IgnoreUnknown_names_the_key(string raw)
    {
        var ex = Assert.Throws<CniException>(() => CniArgs.Parse(raw));
        Assert.Equal(CniErrorCodes.InvalidEnvironmentVariables, ex.Code);
        Assert.Contains("FOO", ex.Details, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("FOO")]
    [InlineData("A=1;")]
    [InlineData("A=1=2")]
    [InlineData("IgnoreUnknown=yes")]
    [InlineData("IP=10.1")]
    [InlineData("IP=banana")]
    public void Malformed_args_are_code_4(string raw)
    {
        var ex = Assert.Throws<CniException>(() => CniArgs.Parse(raw));
        Assert.Equal(CniErrorCodes.InvalidEnvironmentVariables, ex.Code);
    }

    [Fact]
    public void Repeated_key_keeps_last_value()
    {
        Assert.Equal("b", CniArgs.Parse("K8S_POD_NAME=a;K8S_POD_NAME=b").K8sPodName);
    }

    [Fact]
    public void Empty_value_is_allowed()
    {
        Assert.Equal("", CniArgs.Parse("K8S_POD_NAME=").K8sPodName);
    }
}
