using Loom.Core.Policy;

namespace Loom.Core.Tests.Policy;

public sealed class PortPrefixesTests
{
    [Fact]
    public void One_port_is_one_full_prefix_and_every_port_one_empty_prefix()
    {
        Assert.Equal([((ushort)80, (byte)16)], PortPrefixes.Cover(80, 80));
        Assert.Equal([((ushort)0, (byte)0)], PortPrefixes.Cover(0, 65535));
    }

    [Fact]
    public void One_to_65535_is_sixteen_prefixes()
    {
        var expected = Enumerable.Range(0, 16).Select(i => ((ushort)(1 << i), (byte)(16 - i))).ToList();
        Assert.Equal(expected, PortPrefixes.Cover(1, 65535));
    }

    [Theory]
    [InlineData(80, 8080)]
    [InlineData(1000, 2000)]
    [InlineData(32767, 32769)]
    [InlineData(65534, 65535)]
    [InlineData(50, 60)]
    [InlineData(1, 1)]
    public void A_range_is_covered_exactly_by_disjoint_aligned_prefixes(int first, int last)
    {
        var prefixes = PortPrefixes.Cover(first, last);
        Assert.All(prefixes, p => Assert.Equal(0, p.Port & ((1 << (16 - p.Bits)) - 1)));
        for (var port = 0; port <= 65535; port++)
        {
            var hits = prefixes.Count(p => PortPrefixes.Contains(p.Port, p.Bits, (ushort)port));
            Assert.Equal(port >= first && port <= last ? 1 : 0, hits);
        }
    }

    [Fact]
    public void A_known_odd_range_takes_the_fewest_prefixes() =>
        Assert.Equal([(1000, 13), (1008, 12), (1024, 7), (1536, 8), (1792, 9), (1920, 10), (1984, 12), (2000, 16)],
            PortPrefixes.Cover(1000, 2000).Select(p => ((int)p.Port, (int)p.Bits)));

    [Fact]
    public void A_reversed_range_is_refused() => Assert.Throws<ArgumentOutOfRangeException>(() => PortPrefixes.Cover(90, 80));
}
