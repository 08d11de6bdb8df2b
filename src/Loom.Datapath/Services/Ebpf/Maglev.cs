using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>
/// Maglev consistent hashing (Eisenbud et al., NSDI 2016), pure and deterministic. Each backend, named
/// <c>"ip:port"</c>, has a preference list over the M slots of the lookup table: <c>offset = h1(name) % M</c>,
/// <c>skip = h2(name) % (M - 1) + 1</c>, <c>permutation[j] = (offset + j * skip) % M</c> (a full cycle because M is
/// prime). The table is filled round-robin over the backends (in name order), each taking its next preferred free slot,
/// so every backend owns ⌊M/N⌋ or ⌈M/N⌉ slots and removing one backend moves few slots other than its own.
/// h1 and h2 are MurmurHash3 (x86, 32-bit) of the name's UTF-8 bytes with two fixed seeds.
/// The data path picks <c>table[hash(flow) % M]</c>.
/// </summary>
public static class Maglev
{
    /// <summary>Default table size (prime), as Cilium's.</summary>
    public const int DefaultTableSize = 16381;

    /// <summary>Smallest accepted table size (prime). Good balance needs M well above the backend count (≥ 100 N).</summary>
    public const int MinTableSize = 251;

    /// <summary>Largest accepted table size: the service master entry stores M in 16 bits.</summary>
    public const int MaxTableSize = 65521;

    private const uint OffsetSeed = 0x4c6f6f6d; // "Loom"
    private const uint SkipSeed = 0x4d61676c;   // "Magl"

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <paramref name="size"/> is a prime in [<see cref="MinTableSize"/>, <see cref="MaxTableSize"/>].</summary>
    public static void ValidateTableSize(int size)
    {
        if (size < MinTableSize || size > MaxTableSize)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size,
                string.Create(CultureInfo.InvariantCulture, $"Maglev table size must be a prime between {MinTableSize} and {MaxTableSize} (default {DefaultTableSize}); got {size}"));
        }

        if (!IsPrime(size))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size,
                string.Create(CultureInfo.InvariantCulture, $"Maglev table size must be prime (e.g. 251, 1021, 4093, 16381, 65521); {size} is not"));
        }
    }

    public static bool IsPrime(int n)
    {
        if (n < 2)
        {
            return false;
        }

        for (var d = 2; (long)d * d <= n; d++)
        {
            if (n % d == 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The backend name the table is computed over: <c>"ip:port"</c>.</summary>
    public static string Name(System.Net.IPAddress address, int port) => string.Create(CultureInfo.InvariantCulture, $"{address}:{port}");

    /// <summary>
    /// The lookup table: entry i is the index (into <paramref name="backends"/>) of the backend owning slot i.
    /// The result depends only on the set of names (not their order in the list) and <paramref name="size"/>.
    /// Empty when there are no backends.
    /// </summary>
    public static int[] Table(IReadOnlyList<string> backends, int size = DefaultTableSize)
    {
        ArgumentNullException.ThrowIfNull(backends);
        ValidateTableSize(size);
        var n = backends.Count;
        if (n == 0)
        {
            return [];
        }

        if (n > size)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{n} backends do not fit a Maglev table of {size} slots"), nameof(backends));
        }

        // Fill in name order so the table does not depend on the caller's order.
        var order = Enumerable.Range(0, n).OrderBy(i => backends[i], StringComparer.Ordinal).ToArray();
        for (var i = 1; i < n; i++)
        {
            if (string.Equals(backends[order[i]], backends[order[i - 1]], StringComparison.Ordinal))
            {
                throw new ArgumentException($"duplicate backend {backends[order[i]]}", nameof(backends));
            }
        }

        var offset = new long[n];
        var skip = new long[n];
        for (var k = 0; k < n; k++)
        {
            var bytes = Encoding.UTF8.GetBytes(backends[order[k]]);
            offset[k] = Murmur3(bytes, OffsetSeed) % (uint)size;
            skip[k] = (Murmur3(bytes, SkipSeed) % (uint)(size - 1)) + 1;
        }

        var table = new int[size];
        Array.Fill(table, -1);
        var next = new long[n];
        var filled = 0;
        while (true)
        {
            for (var k = 0; k < n; k++)
            {
                int c;
                do
                {
                    c = (int)((offset[k] + (next[k] * skip[k])) % size);
                    next[k]++;
                }
                while (table[c] >= 0);

                table[c] = order[k];
                if (++filled == size)
                {
                    return table;
                }
            }
        }
    }

    /// <summary>
    /// <see cref="Table"/> for the sync path, where one service must not fail every service's sync: a name listed twice
    /// counts once (its first index), and when there are more backends than slots only the first <paramref name="size"/>
    /// in name order get one. The size itself is checked when the backend is configured.
    /// </summary>
    public static int[] TableTruncated(IReadOnlyList<string> backends, int size)
    {
        ArgumentNullException.ThrowIfNull(backends);
        var kept = Enumerable.Range(0, backends.Count)
            .DistinctBy(i => backends[i], StringComparer.Ordinal)
            .OrderBy(i => backends[i], StringComparer.Ordinal)
            .Take(size)
            .ToArray();
        var table = Table(kept.Select(i => backends[i]).ToArray(), size);
        for (var i = 0; i < table.Length; i++)
        {
            table[i] = kept[table[i]];
        }

        return table;
    }

    /// <summary>MurmurHash3 x86 32-bit.</summary>
    public static uint Murmur3(ReadOnlySpan<byte> data, uint seed)
    {
        const uint c1 = 0xcc9e2d51;
        const uint c2 = 0x1b873593;
        var h = seed;
        var blocks = data.Length / 4;
        for (var i = 0; i < blocks; i++)
        {
            var k = BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i * 4, 4));
            k *= c1;
            k = uint.RotateLeft(k, 15);
            k *= c2;
            h ^= k;
            h = uint.RotateLeft(h, 13);
            h = (h * 5) + 0xe6546b64;
        }

        var tail = data[(blocks * 4)..];
        uint t = 0;
        switch (tail.Length)
        {
            case 3:
                t ^= (uint)tail[2] << 16;
                goto case 2;
            case 2:
                t ^= (uint)tail[1] << 8;
                goto case 1;
            case 1:
                t ^= tail[0];
                t *= c1;
                t = uint.RotateLeft(t, 15);
                t *= c2;
                h ^= t;
                break;
        }

        h ^= (uint)data.Length;
        h ^= h >> 16;
        h *= 0x85ebca6b;
        h ^= h >> 13;
        h *= 0xc2b2ae35;
        h ^= h >> 16;
        return h;
    }

    /// <summary>
    /// The flow hash lb4.o computes on a new flow's first packet (tc path), so tests can predict the slot:
    /// jhash_3words(saddr, daddr, sport | dport &lt;&lt; 16, proto) over the raw network-byte-order words as the
    /// program loads them on a little-endian machine.
    /// </summary>
    public static uint FlowHash(uint saddrNet, uint daddrNet, ushort sportNet, ushort dportNet, byte proto) =>
        JHash3Words(saddrNet, daddrNet, sportNet | ((uint)dportNet << 16), proto);

    /// <summary>The kernel's jhash_3words (Bob Jenkins' lookup3 final mix), as in bpf/lb4.c.</summary>
    public static uint JHash3Words(uint a, uint b, uint c, uint initval)
    {
        const uint golden = 0xdeadbeef;
        a += golden + 12 + initval;
        b += golden + 12 + initval;
        c += golden + 12 + initval;
        c ^= b; c -= uint.RotateLeft(b, 14);
        a ^= c; a -= uint.RotateLeft(c, 11);
        b ^= a; b -= uint.RotateLeft(a, 25);
        c ^= b; c -= uint.RotateLeft(b, 16);
        a ^= c; a -= uint.RotateLeft(c, 4);
        b ^= a; b -= uint.RotateLeft(a, 14);
        c ^= b; c -= uint.RotateLeft(b, 24);
        return c;
    }
}
