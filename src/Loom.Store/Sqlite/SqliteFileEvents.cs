using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Loom.Store.Sqlite;

/// <summary>
/// Tells SQLite watchers that a database file was written, so they read the change log then instead of polling it.
/// One inotify instance per process (instances are limited per user: 128 by default, and every agent, CLI and test
/// shares root's), one watch per database directory, one thread blocked in read(): no wake-up while nothing writes.
/// Another process's commit writes the -wal (a checkpoint writes the file itself), which inotify reports to every
/// process on the machine whatever its network or mount namespace: events follow the inode, not the path.
/// An event is a reason to read, not a proof of a change (a checkpoint writes too), nor ordered after the commit's
/// visibility: the watcher reads again shortly when an event showed nothing new.
/// </summary>
internal static partial class SqliteFileEvents
{
    private const uint InModify = 0x2;
    private const uint InMovedTo = 0x80;
    private const uint InCreate = 0x100;
    private const uint InQueueOverflow = 0x4000;
    private const uint InIgnored = 0x8000;
    private const uint InOnlyDir = 0x0100_0000;
    private const int InCloexec = 0x80000;
    private const int HeaderSize = 16; // wd, mask, cookie, len

    private static readonly Lock Gate = new();
    private static readonly Dictionary<int, List<Subscription>> ByWatch = [];
    private static int _fd = -2; // -2: not tried yet; -1: unavailable

    /// <summary>
    /// Calls <paramref name="changed"/> (on the event thread: keep it short) whenever a file whose name starts with the
    /// database's is written; null when inotify is unavailable here (the caller then polls).
    /// </summary>
    public static IDisposable? Subscribe(string databasePath, Action changed)
    {
        var full = Path.GetFullPath(databasePath);
        var dir = Path.GetDirectoryName(full)!;
        lock (Gate)
        {
            if (_fd == -2)
            {
                _fd = inotify_init1(InCloexec);
                if (_fd >= 0)
                {
                    new Thread(ReadLoop) { IsBackground = true, Name = "sqlite-inotify" }.Start();
                }
            }

            if (_fd < 0)
            {
                return null;
            }

            // The directory, not the files: the -wal comes and goes with the last connection, and a watch on a path
            // that does not exist yet cannot be made.
            var wd = inotify_add_watch(_fd, dir, InModify | InCreate | InMovedTo | InOnlyDir);
            if (wd < 0)
            {
                return null;
            }

            var subscription = new Subscription(wd, Path.GetFileName(full), changed);
            if (!ByWatch.TryGetValue(wd, out var list))
            {
                ByWatch[wd] = list = [];
            }

            list.Add(subscription);
            return subscription;
        }
    }

    private static void ReadLoop()
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var n = read(_fd, buffer, buffer.Length);
            if (n <= 0)
            {
                if (n < 0 && Marshal.GetLastPInvokeError() == 4) // EINTR
                {
                    continue;
                }

                return; // not expected on an inotify descriptor; the watchers' safety poll carries on
            }

            Dispatch(buffer.AsSpan(0, (int)n));
        }
    }

    private static void Dispatch(ReadOnlySpan<byte> events)
    {
        List<Action> wake = [];
        lock (Gate)
        {
            while (events.Length >= HeaderSize)
            {
                var wd = BinaryPrimitives.ReadInt32LittleEndian(events);
                var mask = BinaryPrimitives.ReadUInt32LittleEndian(events[4..]);
                var len = (int)BinaryPrimitives.ReadUInt32LittleEndian(events[12..]);
                var name = events.Slice(HeaderSize, len);
                var end = name.IndexOf((byte)0);
                var file = System.Text.Encoding.UTF8.GetString(end >= 0 ? name[..end] : name);
                events = events[(HeaderSize + len)..];
                if ((mask & InQueueOverflow) != 0)
                {
                    // Events were dropped: anyone may have missed one.
                    wake.AddRange(ByWatch.Values.SelectMany(l => l).Select(s => s.Changed));
                    continue;
                }

                if (!ByWatch.TryGetValue(wd, out var list))
                {
                    continue;
                }

                if ((mask & InIgnored) != 0)
                {
                    // The directory is gone (the kernel dropped the watch): wake them so their reads fail or resync.
                    ByWatch.Remove(wd);
                    wake.AddRange(list.Select(s => s.Changed));
                    continue;
                }

                wake.AddRange(list.Where(s => file.StartsWith(s.FileName, StringComparison.Ordinal)).Select(s => s.Changed));
            }
        }

        foreach (var changed in wake.Distinct())
        {
            changed();
        }
    }

    private sealed class Subscription(int wd, string fileName, Action changed) : IDisposable
    {
        public string FileName { get; } = fileName;

        public Action Changed { get; } = changed;

        public void Dispose()
        {
            lock (Gate)
            {
                // The kernel watch stays for the process's life (another store may use the directory; inotify drops it
                // itself when the directory goes): one per directory ever used, far below the per-user limit.
                if (ByWatch.TryGetValue(wd, out var list) && list.Remove(this) && list.Count == 0)
                {
                    ByWatch.Remove(wd);
                }
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int inotify_init1(int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int inotify_add_watch(int fd, string path, uint mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte[] buffer, nint count);
}
