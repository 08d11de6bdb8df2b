using Loom.Linux.Interop;

namespace Loom.Linux.Bpf;

/// <summary>
/// A loaded BPF program. From a <see cref="BpfObject"/> it borrows the object's descriptor; from
/// <see cref="OpenPinned"/> it owns it. Attachments (tc filters, cgroup hooks) hold their own reference
/// in the kernel and stay after the program object is closed, until detached.
/// </summary>
public sealed class BpfProgram : IDisposable
{
    private readonly bool _ownsFd;
    private int _fd;

    internal unsafe BpfProgram(string name, int fd, bool ownsFd)
    {
        Name = name;
        _fd = fd;
        _ownsFd = ownsFd;
        LibBpf.ProgInfo info = default;
        var len = (uint)sizeof(LibBpf.ProgInfo);
        var rc = LibBpf.bpf_obj_get_info_by_fd(fd, &info, &len);
        if (rc != 0)
        {
            throw BpfException.FromRc(rc, "bpf_obj_get_info_by_fd(prog)", name);
        }

        Id = info.Id;
        ProgramType = info.Type;
    }

    public string Name { get; }

    /// <summary>Kernel-wide program id (bpftool prog show; what tc and cgroup queries report).</summary>
    public uint Id { get; }

    /// <summary>enum bpf_prog_type (3 = SCHED_CLS, 18 = CGROUP_SOCK_ADDR, ...).</summary>
    public uint ProgramType { get; }

    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(BpfProgram));

    public static BpfProgram OpenPinned(string path)
    {
        var fd = LibBpf.bpf_obj_get(path);
        if (fd < 0)
        {
            throw BpfException.FromRc(fd, "bpf_obj_get", path);
        }

        try
        {
            return new BpfProgram(System.IO.Path.GetFileName(path), fd, ownsFd: true);
        }
        catch
        {
            Libc.close(fd);
            throw;
        }
    }

    public void Pin(string path) => BpfFs.Pin(Fd, path);

    /// <summary>
    /// Attaches this (SEC("tc")) program as a direct-action filter on <paramref name="ifindex"/>'s clsact
    /// qdisc, creating the qdisc if missing. Idempotent: the filter at (<paramref name="handle"/>,
    /// <paramref name="priority"/>) is replaced. libbpf talks rtnetlink from the calling thread's network
    /// namespace, so for an interface in another namespace call this inside <c>NetNs.Run</c>.
    /// </summary>
    public void AttachTc(int ifindex, TcDirection direction, uint priority = 1, uint handle = 1) =>
        BpfTc.Attach(Fd, ifindex, direction, priority, handle);

    /// <summary>Removes the filter this program would occupy (see <see cref="BpfTc.Detach"/>).</summary>
    public static bool DetachTc(int ifindex, TcDirection direction, uint priority = 1, uint handle = 1) =>
        BpfTc.Detach(ifindex, direction, priority, handle);

    /// <summary>
    /// Attaches to a cgroup v2 directory (e.g. a child of /sys/fs/cgroup/unified) at <paramref name="type"/>.
    /// Idempotent: if this program is already attached there, nothing happens (the kernel itself would
    /// answer EINVAL to attaching the same program twice).
    /// </summary>
    public void AttachCgroup(string cgroupPath, BpfCgroupAttachType type, BpfCgroupAttachMode flags = BpfCgroupAttachMode.AllowMulti)
    {
        if (QueryCgroup(cgroupPath, type).Contains(Id))
        {
            return;
        }

        var cg = OpenCgroup(cgroupPath);
        try
        {
            var rc = LibBpf.bpf_prog_attach(Fd, cg, (int)type, (uint)flags);
            if (rc != 0)
            {
                throw BpfException.FromRc(rc, $"bpf_prog_attach({type})", cgroupPath);
            }
        }
        finally
        {
            Libc.close(cg);
        }
    }

    /// <summary>Detaches this program from a cgroup hook; false if it was not attached.</summary>
    public bool DetachCgroup(string cgroupPath, BpfCgroupAttachType type)
    {
        var cg = OpenCgroup(cgroupPath);
        try
        {
            var rc = LibBpf.bpf_prog_detach2(Fd, cg, (int)type);
            if (rc == 0)
            {
                return true;
            }

            var errno = LibBpf.ErrnoOf(rc);
            return errno == Libc.ENOENT ? false : throw new BpfException(errno, $"bpf_prog_detach2({type})", cgroupPath);
        }
        finally
        {
            Libc.close(cg);
        }
    }

    /// <summary>
    /// Detaches every program attached directly to a cgroup at <paramref name="type"/>, whoever attached it (what a
    /// reboot does to a cgroup's programs). Returns how many went.
    /// </summary>
    public static int DetachAllCgroup(string cgroupPath, BpfCgroupAttachType type)
    {
        var gone = 0;
        foreach (var id in QueryCgroup(cgroupPath, type))
        {
            var fd = LibBpf.bpf_prog_get_fd_by_id(id);
            if (fd < 0)
            {
                continue; // unloaded meanwhile
            }

            var cg = OpenCgroup(cgroupPath);
            try
            {
                var rc = LibBpf.bpf_prog_detach2(fd, cg, (int)type);
                gone += rc == 0 ? 1 : 0;
                if (rc != 0 && LibBpf.ErrnoOf(rc) != Libc.ENOENT)
                {
                    throw new BpfException(LibBpf.ErrnoOf(rc), $"bpf_prog_detach2({type})", cgroupPath);
                }
            }
            finally
            {
                Libc.close(cg);
                Libc.close(fd);
            }
        }

        return gone;
    }

    /// <summary>Ids of the programs attached directly to a cgroup at <paramref name="type"/> (not inherited ones).</summary>
    public static unsafe IReadOnlyList<uint> QueryCgroup(string cgroupPath, BpfCgroupAttachType type)
    {
        var cg = OpenCgroup(cgroupPath);
        try
        {
            var ids = new uint[64];
            while (true)
            {
                uint count = (uint)ids.Length;
                uint attachFlags = 0;
                int rc;
                fixed (uint* p = ids)
                {
                    rc = LibBpf.bpf_prog_query(cg, (int)type, 0, &attachFlags, p, &count);
                }

                if (rc == 0)
                {
                    return ids[..(int)count];
                }

                var errno = LibBpf.ErrnoOf(rc);
                if (errno != 28 /* ENOSPC: more programs than room */ || ids.Length >= 1 << 16)
                {
                    throw new BpfException(errno, $"bpf_prog_query({type})", cgroupPath);
                }

                ids = new uint[ids.Length * 4];
            }
        }
        finally
        {
            Libc.close(cg);
        }
    }

    public void Dispose()
    {
        if (_ownsFd && _fd >= 0)
        {
            Libc.close(_fd);
        }

        _fd = -1;
    }

    public override string ToString() => $"program '{Name}' id {Id} type {ProgramType}";

    private static int OpenCgroup(string path)
    {
        const int O_DIRECTORY = 0x10000;
        var fd = Libc.open(path, Libc.O_RDONLY | O_DIRECTORY | Libc.O_CLOEXEC, 0);
        return fd >= 0 ? fd : throw Libc.Error("open cgroup", path);
    }
}
