using System.ComponentModel;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Loom.Core.Ipam;

namespace Loom.Core.Io;

/// <summary>
/// State files written so a crash or power cut leaves either the old content or the new, never a torn file: the
/// content goes to a temp file in the same directory, is fsynced, renamed (or linked) over the name, and the
/// directory is fsynced so the rename itself survives. Every state file Loom writes goes through here.
/// With <c>sync: false</c> the write is atomic for readers but not durable across a power cut (no fsync): for state
/// that a reboot makes moot anyway, such as a node's IPAM allocations (every pod dies with the node).
/// </summary>
public static class AtomicFile
{
    private const UnixFileMode Mode0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> (creating its directory).</summary>
    public static void Write(string path, ReadOnlySpan<byte> content, UnixFileMode mode = Mode0600 | UnixFileMode.GroupRead | UnixFileMode.OtherRead, bool sync = true)
    {
        var dir = DirectoryOf(path);
        Directory.CreateDirectory(dir);
        var tmp = WriteTemp(dir, path, content, mode, sync);
        try
        {
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }

        if (sync)
        {
            SyncDirectory(dir);
        }
    }

    public static void WriteText(string path, string content, bool sync = true) =>
        Write(path, Encoding.UTF8.GetBytes(content), sync: sync);

    /// <summary>
    /// Creates <paramref name="path"/> with its whole content only if nothing has that name: link(2) fails with
    /// EEXIST atomically, as O_EXCL would, but no reader ever sees the file empty or half-written.
    /// </summary>
    /// <returns>False when the name is taken.</returns>
    public static bool TryCreate(string path, ReadOnlySpan<byte> content, UnixFileMode mode = Mode0600, bool sync = true)
    {
        var dir = DirectoryOf(path);
        var tmp = WriteTemp(dir, path, content, mode, sync);
        try
        {
            if (LibC.Link(tmp, path) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EExist)
                {
                    return false;
                }

                throw new IOException($"link {path}: {new Win32Exception(errno).Message}", errno);
            }
        }
        finally
        {
            TryDelete(tmp);
        }

        if (sync)
        {
            SyncDirectory(dir);
        }

        return true;
    }

    /// <summary>fsync(2) on a directory: what makes a create, rename or unlink in it durable.</summary>
    public static void SyncDirectory(string dir)
    {
        var fd = LibC.Open(dir, LibC.ORdOnly | LibC.OCloExec, 0);
        if (fd < 0)
        {
            throw new IOException($"open {dir}: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        }

        try
        {
            if (LibC.Fsync(fd) != 0)
            {
                throw new IOException($"fsync {dir}: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
            }
        }
        finally
        {
            _ = LibC.Close(fd);
        }
    }

    private static string WriteTemp(string dir, string path, ReadOnlySpan<byte> content, UnixFileMode mode, bool sync)
    {
        // Unique per writer: two processes replacing one file never share (and tear) a temp file.
        var tmp = Path.Combine(dir, string.Create(CultureInfo.InvariantCulture,
            $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Random.Shared.Next():x8}.tmp"));
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode };
        try
        {
            using var file = new FileStream(tmp, options);
            file.Write(content);
            file.Flush(flushToDisk: sync);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }

        return tmp;
    }

    private static string DirectoryOf(string path) => Path.GetDirectoryName(Path.GetFullPath(path))!;

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // A leftover dot-file is harmless: readers skip names that are not theirs.
        }
    }
}
