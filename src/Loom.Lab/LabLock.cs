using System.Runtime.InteropServices;

namespace Loom.Lab;

/// <summary>
/// An exclusive flock(2) on the lab directory's lock file: `loom lab pod add` run from several shells at once
/// serialize their read-modify-write of state.json. Opened with open(2) directly (FileStream takes a LOCK_SH itself).
/// </summary>
internal sealed partial class LabLock : IDisposable
{
    private const int O_RDWR = 0x2;
    private const int O_CREAT = 0x40;
    private const int O_CLOEXEC = 0x80000;
    private const int LOCK_EX = 2;
    private const int EINTR = 4;
    private readonly int _fd;

    private LabLock(int fd) => _fd = fd;

    public static LabLock Take(string labDir)
    {
        var path = Path.Combine(labDir, "state.lock");
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0x180 /* 0600 */);
        if (fd < 0)
        {
            throw new LabException($"open {path}: errno {Marshal.GetLastPInvokeError()}");
        }

        while (flock(fd, LOCK_EX) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
            {
                _ = close(fd);
                throw new LabException($"flock {path}: errno {errno}");
            }
        }

        return new LabLock(fd);
    }

    public void Dispose() => _ = close(_fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
