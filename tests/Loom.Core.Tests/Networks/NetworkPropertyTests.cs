using System.Net;
using CsCheck;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Networks;

public class NetworkPropertyTests
{
    // A small space of pools, ports and devices, so random sets collide often and are accepted often.
    private static readonly Gen<Network> AnyNetwork =
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, 1], Gen.Int[15, 17], Gen.Int[0, 2], Gen.Int[0, 2], Gen.Bool, Gen.Int[0, 2])
            .Select(Gen.Int[0, 1], Gen.Int[0, 2], (t, plumbing, masq) =>
            {
                var (octet, half, prefix, port, device, native, name) = t;
                var pool = new IPNetwork(IPAddress.Parse($"10.{244 + octet}.{(prefix >= 17 ? half * 128 : 0)}.0"), prefix);
                return new Network
                {
                    Name = "net" + name,
                    PodCidr = pool,
                    NodeMaskSize = 24,
                    Plumbing = (Plumbing)plumbing,
                    RoutingMode = native ? RoutingMode.Native : RoutingMode.Tunnel,
                    AutoDirectNodeRoutes = native,
                    Tunnel = native ? null : new TunnelConfig { Port = 8472 + port, Device = "loom" + device, Vni = 1 + port },
                    Masquerade = (Masquerade)masq,
                };
            });

    [Fact]
    public void Any_accepted_set_has_disjoint_pools_and_distinct_names_ports_and_devices()
    {
        var accepted = 0;
        AnyNetwork.Array[1, 4].Sample(networks =>
        {
            var errors = new List<FieldError>();
            ClusterValidation.Networks(errors, networks);
            if (errors.Count > 0)
            {
                return;
            }

            accepted++;
            for (var i = 0; i < networks.Length; i++)
            {
                for (var j = i + 1; j < networks.Length; j++)
                {
                    Assert.False(NetworkValidation.Overlap(networks[i].PodCidr, networks[j].PodCidr), $"{networks[i].PodCidr} and {networks[j].PodCidr}");
                    Assert.NotEqual(networks[i].Name, networks[j].Name);
                    if (networks[i].Tunnel is { } a && networks[j].Tunnel is { } b)
                    {
                        Assert.NotEqual(a.Port, b.Port);
                        Assert.NotEqual(a.Device, b.Device);
                    }
                }
            }
        }, iter: 2000);
        Assert.True(accepted > 100, $"only {accepted} sets accepted: the generator no longer exercises the property");
    }

    [Fact]
    public void Any_valid_network_reads_back_from_its_yaml() =>
        AnyNetwork.Where(n => NetworkValidation.Validate(n).Count == 0).Sample(n =>
            Assert.Equal(n, Assert.Single(ClusterFileParser.ParseNetworks(NetworkYaml.Write(n)))));

    [Fact]
    public void Any_edit_of_a_cluster_file_parses_or_is_refused_with_a_message()
    {
        var text = ClusterFileTests.Example("cilium-tunnel.yaml");
        Gen.Select(Gen.Int[0, text.Length - 1], Gen.Int[0, 8], Gen.Char["-: []{}\n#a0./\"'"].Array[0, 3]).Sample((at, cut, insert) =>
        {
            var edited = text[..at] + new string(insert) + text[Math.Min(text.Length, at + cut)..];
            try
            {
                var file = ClusterFileParser.Parse(edited);
                Assert.Empty(ClusterValidation.Validate(file.Cluster, file.Networks));
            }
            catch (ClusterFileException e)
            {
                Assert.NotEmpty(e.Errors);
            }
        }, iter: 2000);
    }
}
