using System.Net;
using CsCheck;
using Loom.Core.Ipam;

namespace Loom.Core.Tests.Ipam;

/// <summary>
/// Random allocate / request / release / reopen sequences against a dictionary model:
/// no address is ever handed out twice and the files on disk always mirror the model.
/// </summary>
public class IpAllocatorPropertyTests
{
    // fd00::/125 minus network and gateway; 10.0.0.0/28 has 13, so the v6 set runs out first and a
    // v4 address reserved in the same call must be rolled back.
    private const int Capacity = 6;

    private enum Op
    {
        Allocate,
        AllocateRequested,
        Release,
        Reopen,
    }

    [Fact]
    public void Any_operation_sequence_keeps_store_equal_to_model()
    {
        var gen = Gen.Select(Gen.Enum<Op>(), Gen.Int[0, 15], Gen.Int[2, 14]).Array[1, 60];
        gen.Sample(ops =>
        {
            using var dir = new TempDir();
            var config = Configs.Simple(dir.Path, "10.0.0.0/28", "fd00::/125");
            var model = new Dictionary<int, (IPAddress V4, IPAddress V6)>();
            var allocator = IpAllocator.Open(config);
            try
            {
                foreach (var (op, pod, host) in ops)
                {
                    var attachment = new Attachment($"c{pod}", "eth0");
                    switch (op)
                    {
                        case Op.Allocate:
                            Allocate(allocator, attachment, model, pod, requested: null);
                            break;
                        case Op.AllocateRequested:
                            Allocate(allocator, attachment, model, pod, IPAddress.Parse($"10.0.0.{host}"));
                            break;
                        case Op.Release:
                            Assert.Equal(model.Remove(pod) ? 2 : 0, allocator.Release(attachment).Count);
                            break;
                        case Op.Reopen:
                            allocator.Dispose();
                            allocator = IpAllocator.Open(config);
                            break;
                    }

                    AssertDiskMatches(config.NetworkDirectory, model);
                }
            }
            finally
            {
                allocator.Dispose();
            }
        }, iter: 150);
    }

    private static void Allocate(IIpAllocator allocator, Attachment attachment, Dictionary<int, (IPAddress V4, IPAddress V6)> model, int pod, IPAddress? requested)
    {
        var held = model.TryGetValue(pod, out var mine);
        var expectError =
            held ? requested is not null && !requested.Equals(mine.V4) ? IpamErrorKind.RequestedIpUnavailable : (IpamErrorKind?)null
            : requested is not null && model.Values.Any(v => v.V4.Equals(requested)) ? IpamErrorKind.RequestedIpUnavailable
            : model.Count == Capacity ? IpamErrorKind.Exhausted
            : null;

        if (expectError is { } kind)
        {
            Assert.Equal(kind, Assert.Throws<IpamException>(() => allocator.Allocate(attachment, requested is null ? null : [requested])).Kind);
            return;
        }

        var result = allocator.Allocate(attachment, requested is null ? null : [requested]);
        var pair = (result[0].Address, result[1].Address);
        if (held)
        {
            Assert.Equal(mine, pair);
            return;
        }

        Assert.DoesNotContain(model.Values, v => v.V4.Equals(pair.Item1) || v.V6.Equals(pair.Item2));
        if (requested is not null)
        {
            Assert.Equal(requested, pair.Item1);
        }

        model[pod] = pair;
    }

    private static void AssertDiskMatches(string directory, Dictionary<int, (IPAddress V4, IPAddress V6)> model)
    {
        var onDisk = Directory.EnumerateFiles(directory)
            .Select(Path.GetFileName)
            .Where(name => name != "lock" && !name!.StartsWith("last_reserved_ip.", StringComparison.Ordinal))
            .ToDictionary(name => name!, name => File.ReadAllText(Path.Combine(directory, name!)));
        var expected = model.SelectMany(kv => new[] { kv.Value.V4, kv.Value.V6 }.Select(ip => (Name: IpMath.Format(ip), Content: $"c{kv.Key}\r\neth0")))
            .ToDictionary(e => e.Name, e => e.Content);
        Assert.Equal(expected.OrderBy(e => e.Key, StringComparer.Ordinal), onDisk.OrderBy(e => e.Key, StringComparer.Ordinal));
    }
}
