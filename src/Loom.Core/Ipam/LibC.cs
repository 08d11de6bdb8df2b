using System.Runtime.InteropServices;

namespace Loom.Core.Ipam;

/// <summary>The few libc calls the lock file and atomic writes need; source-generated, so NativeAOT-safe.</summary>
internal static partial class LibC
{
    // Linux values (identical on x86-64 and arm64).
    public const int ORdOnly = 0x0;
    public const int ORdWr = 0x2;
    public const int OCreat = 0x40;
    public const int OCloExec = 0x80000;
    public const int EExist = 17;
    public const int LockEx = 2;
    public const int LockNb = 4;
    public const int LockUn = 8;
    public const int EIntr = 4;
    public const int EWouldBlock = 11;

    // open(2) is variadic; passing the mode as a fixed third int argument is sound on the
    // Linux x86-64 and arm64 calling conventions, which is all Loom targets.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Link(string oldPath, string newPath);
}
