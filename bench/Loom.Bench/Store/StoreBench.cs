using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Bench.Store;

/// <summary>
/// The SQLite store's size under churn (bench/store.sh): N Service changes (create, update, update, delete, cycling
/// over a set of Services) on a fresh file with auto-compaction off, at its default retention and at a short one;
/// the file and WAL sizes at checkpoints, and the time. Bounded means: as large after 10,000 changes as after 1,000.
/// </summary>
internal static class StoreBench
{
    private sealed record Options(int Changes = 10_000, int Services = 100, int Keep = 1_000, string Dir = "");

    public static int Run(string[] args)
    {
        Options o;
        try
        {
            o = BenchArgs.Parse(args, new Options(), (o, name, value) => name switch
            {
                "--changes" => o with { Changes = BenchArgs.Count(value, 1, 10_000_000) },
                "--services" => o with { Services = BenchArgs.Count(value, 1, 100_000) },
                "--keep" => o with { Keep = BenchArgs.Count(value, 1, 10_000_000) },
                "--dir" => o with { Dir = value },
                _ => throw new ArgumentException($"unknown option {name}"),
            });
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"store bench: {e.Message}");
            return 2;
        }

        var root = Directory.CreateTempSubdirectory(o.Dir.Length > 0 ? Path.Combine(o.Dir, "store-") : "loom-store-bench-");
        try
        {
            Console.WriteLine($"{o.Changes} Service changes over {o.Services} Services (create, update, update, delete), SQLite store");
            Console.WriteLine($"{"compaction",-22} {"changes",8} {"revision",9} {"db",10} {"wal",10} {"total",10} {"seconds",8} {"changes/s",10}");
            foreach (var (label, keep) in new[] { ("off", 0L), ($"keep {SqliteStoreOptions.DefaultKeepRevisions} (default)", SqliteStoreOptions.DefaultKeepRevisions), ($"keep {o.Keep}", o.Keep) })
            {
                RunOne(label, keep, o, Path.Combine(root.FullName, $"keep{keep}.db")).GetAwaiter().GetResult();
            }
        }
        finally
        {
            root.Delete(recursive: true);
        }

        return 0;
    }

    private static async Task RunOne(string label, long keep, Options o, string path)
    {
        var checkpoints = new SortedSet<int> { Math.Min(1_000, o.Changes), o.Changes };
        for (var c = 10_000; c < o.Changes; c += 10_000)
        {
            checkpoints.Add(c);
        }

        await using var store = await SqliteStore.OpenAsync(path, new SqliteStoreOptions { KeepRevisions = keep });
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < o.Changes; i++)
        {
            var index = i % o.Services;
            var key = $"bench/svc-{index}";
            switch (i / o.Services % 4)
            {
                case 3:
                    await store.DeleteAsync(Kinds.Service.Name, key);
                    break;
                default:
                    await store.PutAsync(Kinds.Service, Service(index, i));
                    break;
            }

            if (checkpoints.Contains(i + 1))
            {
                var db = Size(path);
                var wal = Size(path + "-wal");
                var seconds = clock.Elapsed.TotalSeconds;
                var revision = await store.GetRevisionAsync();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{label,-22} {i + 1,8} {revision,9} {Kb(db),10} {Kb(wal),10} {Kb(db + wal),10} {seconds,8:F1} {(i + 1) / seconds,10:F0}"));
            }
        }
    }

    /// <summary>A Service as `loom lab apply` stores one: two ports, a selector; each change moves its target port.</summary>
    private static Service Service(int index, int change) => new()
    {
        Namespace = "bench",
        Name = $"svc-{index}",
        ClusterIp = new IPAddress([10, 96, (byte)(index >> 8), (byte)index]),
        Ports = [new ServicePort("http", Protocol.Tcp, 80, 8080 + (change % 1000)), new ServicePort("metrics", Protocol.Tcp, 9090, 9090)],
        Selector = new Dictionary<string, string> { ["app"] = $"svc-{index}", ["tier"] = "backend" },
    };

    private static long Size(string file) => File.Exists(file) ? new FileInfo(file).Length : 0;

    private static string Kb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F0} KiB");
}
