using System.Net;
using System.Text;
using Loom.Datapath.Services;

namespace Loom.Datapath.Tests;

/// <summary>Chain names pinned to values kube-proxy itself produced (its proxier_test.go expectations).</summary>
public sealed class KubeProxyNamesTests
{
    private static readonly ServicePortName Svc1P80 = new("ns1", "svc1", "p80");

    [Theory]
    [InlineData("ns1", "svc1", "p80", "tcp", "KUBE-SVC-XPGD46QRK7WJZT7O")]
    [InlineData("ns2", "svc2", "p8080", "tcp", "KUBE-SVC-2VJB64SDSIJUP5T6")]
    [InlineData("ns3", "svc3", "p80", "tcp", "KUBE-SVC-X27LE4BHSL4DOUIK")]
    [InlineData("ns4", "svc4", "p80", "tcp", "KUBE-SVC-4SW47YFZTEDKD3PK")]
    [InlineData("ns1", "svc1", null, "tcp", "KUBE-SVC-AQI2S6QIMU7PVVRP")]
    [InlineData("kube-system", "kube-dns", "dns", "udp", "KUBE-SVC-TCOU7JCQXEZGVUNU")]
    [InlineData("default", "kubernetes", "https", "tcp", "KUBE-SVC-NPX46M4PTMTKRN6Y")]
    public void Service_chain_matches_kube_proxy(string ns, string name, string? port, string proto, string expected) =>
        Assert.Equal(expected, KubeProxyNames.IptablesServiceChain(new ServicePortName(ns, name, port), proto));

    [Theory]
    [InlineData("ns1", "svc1", "p80", "10.180.0.1", 80, "KUBE-SEP-SXIVWICOYRO3J4NJ")]
    [InlineData("ns1", "svc1", "p80", "10.180.2.1", 80, "KUBE-SEP-ZX7GRIZKSNUQ3LAJ")]
    [InlineData("ns1", "svc1", "p80", "10.0.1.1", 80, "KUBE-SEP-SNQ3ZNILQDEJNDQO")]
    [InlineData("ns2", "svc2", "p8080", "10.0.2.1", 8080, "KUBE-SEP-UHEGFW77JX3KXTOV")]
    [InlineData("ns3", "svc3", "p80", "10.0.3.2", 80, "KUBE-SEP-DKCFIS26GWF2WLWC")]
    [InlineData("ns3", "svc3", "p80", "10.0.3.3", 80, "KUBE-SEP-JVVZVJ7BSEPPRNBS")]
    [InlineData("ns1", "svc1", null, "10.0.1.2", 80, "KUBE-SEP-IO5XOSKPAXIFQXAJ")]
    public void Endpoint_chain_matches_kube_proxy(string ns, string name, string? port, string ip, int targetPort, string expected) =>
        Assert.Equal(expected, KubeProxyNames.IptablesEndpointChain(new ServicePortName(ns, name, port), "tcp", new BackendAddress(IPAddress.Parse(ip), targetPort)));

    [Fact]
    public void Nft_names_match_kube_proxy()
    {
        Assert.Equal("service-ULMVA6XW-ns1/svc1/tcp/p80", KubeProxyNames.NftServiceChain(Svc1P80, "tcp"));
        Assert.Equal("endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80", KubeProxyNames.NftEndpointChain(Svc1P80, "tcp", new BackendAddress(IPAddress.Parse("10.180.0.1"), 80)));
        Assert.Equal("affinity-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80", KubeProxyNames.NftAffinitySet(Svc1P80, "tcp", new BackendAddress(IPAddress.Parse("10.180.0.1"), 80)));
        Assert.Equal("service-42NFTM6N-ns2/svc2/tcp/p80", KubeProxyNames.NftServiceChain(new ServicePortName("ns2", "svc2", "p80"), "tcp"));
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("f", "MY======")]
    [InlineData("fo", "MZXQ====")]
    [InlineData("foo", "MZXW6===")]
    [InlineData("foob", "MZXW6YQ=")]
    [InlineData("fooba", "MZXW6YTB")]
    [InlineData("foobar", "MZXW6YTBOI======")]
    public void Base32_is_rfc4648_standard_as_go(string input, string expected) =>
        Assert.Equal(expected, KubeProxyNames.Base32(Encoding.ASCII.GetBytes(input)));

    [Fact]
    public void Port_name_is_part_of_the_name_only_when_set()
    {
        Assert.Equal("default/webpod", new ServicePortName("default", "webpod", null).ToString());
        Assert.Equal("default/webpod", new ServicePortName("default", "webpod", "").ToString());
        Assert.Equal("default/webpod:http", new ServicePortName("default", "webpod", "http").ToString());
    }
}
