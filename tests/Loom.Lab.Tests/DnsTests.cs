using System.Net;
using System.Net.Sockets;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;
using Loom.Core.Model;
using Loom.Workloads;

namespace Loom.Lab.Tests;

/// <summary>The cluster DNS: which names it answers, and the real server over UDP and TCP on loopback.</summary>
public sealed class DnsTests
{
    private static readonly DnsView View = new(
        [
            new Service { Namespace = "default", Name = "webpod", ClusterIp = IPAddress.Parse("10.96.0.2") },
            new Service { Namespace = "kube-system", Name = "kube-dns", ClusterIp = IPAddress.Parse("10.96.0.10") },
            new Service { Namespace = "other", Name = "webpod", ClusterIp = IPAddress.Parse("10.96.0.3") },
        ],
        [new Endpoint { Namespace = "other", Name = "client", Node = "k8s-w1", ContainerId = "c", IPs = [IPAddress.Parse("10.244.1.9")] }]);

    [Theory]
    [InlineData("webpod.default.svc.cluster.local.", "default", "10.96.0.2")]
    [InlineData("WEBPOD.default.svc.cluster.local", "default", "10.96.0.2")]
    [InlineData("webpod.other.svc.cluster.local.", "default", "10.96.0.3")]
    [InlineData("kube-dns.kube-system.svc.cluster.local.", "default", "10.96.0.10")]
    [InlineData("webpod.default.", "other", "10.96.0.2")]
    [InlineData("webpod.default.svc.", "other", "10.96.0.2")]
    [InlineData("webpod.", "default", "10.96.0.2")]
    [InlineData("webpod.", "other", "10.96.0.3")]
    public void Service_names_resolve_to_the_cluster_ip(string name, string clientNamespace, string ip) =>
        Assert.Equal([IPAddress.Parse(ip)], ClusterDnsResolver.Resolve(name, View, clientNamespace).Addresses);

    [Theory]
    [InlineData("bogus.default.svc.cluster.local.")]
    [InlineData("webpod.nowhere.svc.cluster.local.")]
    [InlineData("svc.cluster.local.")]
    [InlineData("bogus.")]
    [InlineData("example.com.")]
    [InlineData("a.b.c.d.e.f.")]
    public void Unknown_names_are_nxdomain(string name) => Assert.False(ClusterDnsResolver.Resolve(name, View, "default").Exists);

    [Fact]
    public void The_asking_pods_namespace_comes_from_its_endpoint()
    {
        Assert.Equal("other", ClusterDnsResolver.NamespaceOf(IPAddress.Parse("10.244.1.9"), View));
        Assert.Equal("other", ClusterDnsResolver.NamespaceOf(IPAddress.Parse("10.244.1.9").MapToIPv6(), View));
        Assert.Equal("default", ClusterDnsResolver.NamespaceOf(IPAddress.Parse("10.244.1.10"), View));
    }

    [Fact]
    public async Task The_server_answers_a_records_nodata_and_nxdomain_over_udp_and_tcp()
    {
        var port = FreePort();
        var log = new StringWriter();
        using var server = new ClusterDnsServer(new IPEndPoint(IPAddress.Loopback, port), _ => Task.FromResult(View), log);
        server.Start();
        foreach (IClientTransport transport in new IClientTransport[] { new UdpClientTransport(port), new TcpClientTransport(port) })
        {
            var client = new DnsClient([IPAddress.Loopback], [transport], false, 3000);
            var a = await client.ResolveAsync(DomainName.Parse("webpod.default.svc.cluster.local"), RecordType.A);
            Assert.NotNull(a);
            Assert.Equal(ReturnCode.NoError, a.ReturnCode);
            Assert.True(a.IsAuthoritiveAnswer);
            Assert.Equal(IPAddress.Parse("10.96.0.2"), Assert.IsType<ARecord>(Assert.Single(a.AnswerRecords)).Address);

            var aaaa = await client.ResolveAsync(DomainName.Parse("webpod.default.svc.cluster.local"), RecordType.Aaaa);
            Assert.Equal(ReturnCode.NoError, aaaa!.ReturnCode);
            Assert.Empty(aaaa.AnswerRecords);

            var bogus = await client.ResolveAsync(DomainName.Parse("bogus.default.svc.cluster.local"), RecordType.A);
            Assert.Equal(ReturnCode.NxDomain, bogus!.ReturnCode);
            var outside = await client.ResolveAsync(DomainName.Parse("example.com"), RecordType.A);
            Assert.Equal(ReturnCode.NxDomain, outside!.ReturnCode);
        }

        Assert.Matches(@"127\.0\.0\.1 A webpod\.default\.svc\.cluster\.local\.? -> 10\.96\.0\.2", log.ToString());
    }

    [Fact]
    public async Task An_unreadable_store_is_servfail_not_nxdomain()
    {
        var port = FreePort();
        using var server = new ClusterDnsServer(new IPEndPoint(IPAddress.Loopback, port), _ => throw new IOException("store down"), TextWriter.Null);
        server.Start();
        var client = new DnsClient([IPAddress.Loopback], [new UdpClientTransport(port)], false, 3000);
        var r = await client.ResolveAsync(DomainName.Parse("webpod.default.svc.cluster.local"), RecordType.A);
        Assert.Equal(ReturnCode.ServerFailure, r!.ReturnCode);
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }
}
