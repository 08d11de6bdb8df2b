using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace Loom.Fuzz;

/// <summary>
/// The fallback when afl-fuzz cannot run: mutates the seeds at random (bit flips, interesting integers, tokens,
/// splices, cuts) and runs the target in process. No coverage feedback, so it reports distinct crash sites rather
/// than paths. An input running over 10 s is saved as a hang and ends the run.
/// </summary>
internal static class MutationLoop
{
    private static readonly byte[][] Tokens =
    [
        .. new[]
        {
            "null", "[", "]", "{", "}", "\"", ":", ",", "-1", "0", "1e999", "99999999999999999999", "-2147483649", "4294967296",
            "\\ud800", "true", "\"\"", "- ", "---\n", ": ", "&a ", "*a", "!!binary ", "'", "\n  ", "=", ";", "::", "/", "256.1.1.1", "fe80::1%",
        }.Select(Encoding.UTF8.GetBytes),
    ];

    private static readonly long[] Interesting = [0, 1, -1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 16, 4, 3];

    public static int Run(FuzzTarget target, TimeSpan duration, string corpusDir, string findingsDir)
    {
        var seeds = Directory.GetFiles(corpusDir).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        if (seeds.Count == 0)
        {
            seeds.Add([]);
        }

        var crashDir = Path.Combine(findingsDir, "crashes");
        Directory.CreateDirectory(crashDir);
        var pool = new List<byte[]>(seeds);
        var sites = new HashSet<string>(StringComparer.Ordinal);
        var rng = new Random(Environment.ProcessId);
        long execs = 0, crashes = 0;
        byte[] current = [];
        var lastExecs = -1L;
        using var watchdog = new Timer(
            _ =>
            {
                var now = Interlocked.Read(ref execs);
                if (now == lastExecs)
                {
                    File.WriteAllBytes(Path.Combine(findingsDir, "hang"), current);
                    Console.WriteLine($"hang: an input ran over 10 s (saved to {findingsDir}/hang)");
                    Environment.Exit(3);
                }

                lastExecs = now;
            },
            null,
            TimeSpan.FromSeconds(10),
            TimeSpan.FromSeconds(10));

        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            current = Mutate(pool[rng.Next(pool.Count)], seeds, rng);
            try
            {
                target(current);
            }
#pragma warning disable CA1031 // every escaping exception is a finding
            catch (Exception e)
#pragma warning restore CA1031
            {
                crashes++;
                var site = e.GetType().Name + " " + new StackTrace(e).GetFrames().FirstOrDefault(f => f.GetMethod()?.DeclaringType?.Namespace?.StartsWith("Loom", StringComparison.Ordinal) == true)?.GetMethod();
                if (sites.Add(site))
                {
                    var file = Path.Combine(crashDir, Convert.ToHexStringLower(SHA256.HashData(current))[..16]);
                    File.WriteAllBytes(file, current);
                    Console.WriteLine($"crash: {site}: {e.Message} (input {file})");
                }
            }

            Interlocked.Increment(ref execs);
            if (pool.Count < 4096 && rng.Next(64) == 0)
            {
                pool.Add(current); // keep some mutants to stack mutations on
            }
        }

        Console.WriteLine($"execs {execs}, paths n/a (no coverage in this mode), crashes {crashes} ({sites.Count} distinct sites)");
        return sites.Count == 0 ? 0 : 1;
    }

    private static byte[] Mutate(byte[] input, List<byte[]> seeds, Random rng)
    {
        var b = new List<byte>(input);
        for (var n = 1 + rng.Next(6); n > 0; n--)
        {
            var at = b.Count == 0 ? 0 : rng.Next(b.Count);
            switch (rng.Next(8))
            {
                case 0 when b.Count > 0:
                    b[at] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1 when b.Count > 0:
                    b[at] = (byte)rng.Next(256);
                    break;
                case 2:
                    b.InsertRange(at, Tokens[rng.Next(Tokens.Length)]);
                    break;
                case 3 when b.Count > 0:
                    b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(16)));
                    break;
                case 4 when b.Count > 4:
                    var v = Interesting[rng.Next(Interesting.Length)];
                    var width = new[] { 1, 2, 4 }[rng.Next(3)];
                    for (var i = 0; i < width && at + i < b.Count; i++)
                    {
                        b[at + i] = (byte)(v >> (8 * i));
                    }

                    break;
                case 5 when b.Count > 0:
                    var len = Math.Min(b.Count - at, 1 + rng.Next(64));
                    b.InsertRange(rng.Next(b.Count), b.GetRange(at, len));
                    break;
                case 6:
                    var other = seeds[rng.Next(seeds.Count)];
                    if (other.Length > 0)
                    {
                        var from = rng.Next(other.Length);
                        b.InsertRange(at, other.AsSpan(from, Math.Min(other.Length - from, 1 + rng.Next(128))).ToArray());
                    }

                    break;
                case 7 when b.Count > 0:
                    b.RemoveRange(at, b.Count - at);
                    break;
                default:
                    break;
            }
        }

        return [.. b];
    }
}
