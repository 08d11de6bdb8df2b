using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Loom.Core.Ipam;

/// <summary>
/// An exclusive flock(2) on a lock file: IPAM's per-network "lock" file (the same lock host-local takes, so Loom
/// and host-local processes serialize against each other) and the lab's state lock.
/// </summary>
/// <remarks>
/// The file is opened with open(2) directly: .NET's FileStream/File.OpenHandle silently takes a
/// non-blocking LOCK_SH on open, which would fail while another process holds the lock and
/// would block other processes' LOCK_EX for as long as the handle lives. flock locks belong to
/// the open file description, so two instances in one process (two opens) also exclude each other.
/// </remarks>
public sealed class FileLock : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly string _path;

    private FileLock(SafeFileHandle handle, string path)
    {
        _handle = handle;
        _path = path;
    }

    /// <summary>Opens (creating, 0600) the lock file; the lock is not taken yet.</summary>
    public static FileLock Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var fd = LibC.Open(path, LibC.ORdWr | LibC.OCreat | LibC.OCloExec, Convert.ToInt32("600", 8));
        if (fd < 0)
        {
            throw Failure("open", path, Marshal.GetLastPInvokeError());
        }

        return new FileLock(new SafeFileHandle(fd, ownsHandle: true), path);
    }

    /// <summary>Blocks until this process holds the lock exclusively.</summary>
    public void Acquire() => Flock(LibC.LockEx);

    /// <summary>Takes the lock only if nobody holds it.</summary>
    public bool TryAcquire() => Flock(LibC.LockEx | LibC.LockNb);

    public void Release() => Flock(LibC.LockUn);

    public void Dispose() => _handle.Dispose();

    private bool Flock(int operation)
    {
        var added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            var fd = (int)_handle.DangerousGetHandle();
            while (true)
            {
                if (LibC.Flock(fd, operation) == 0)
                {
                    return true;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EIntr)
                {
                    continue;
                }

                if (errno == LibC.EWouldBlock && (operation & LibC.LockNb) != 0)
                {
                    return false;
                }

                throw Failure("flock", _path, errno);
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    private static IOException Failure(string call, string path, int errno)
        => new($"{call} {path}: {new Win32Exception(errno).Message}", errno);
}
