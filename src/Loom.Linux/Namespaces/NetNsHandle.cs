using System.Runtime.InteropServices;
using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>An open file descriptor on a network namespace (an nsfs inode); keeps the namespace alive while open.</summary>
public sealed class NetNsHandle : SafeHandle
{
    public NetNsHandle() : base(-1, ownsHandle: true) { }

    internal NetNsHandle(int fd) : this() => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    /// <summary>The raw descriptor, e.g. for IFLA_NET_NS_FD. Valid only while this handle is open.</summary>
    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
