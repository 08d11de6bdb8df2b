using Loom.Linux.Interop;

namespace Loom.Linux.Bpf;

/// <summary>
/// tc (clsact) hooks through libbpf's bpf_tc_* API. libbpf opens its rtnetlink socket in the calling
/// thread's network namespace: to act on an interface inside another namespace, call these from
/// <c>NetNs.Run(ns, ...)</c> (ifindexes are per-namespace too).
/// </summary>
public static unsafe class BpfTc
{
    /// <summary>Creates the clsact qdisc on <paramref name="ifindex"/> if it is not there yet.</summary>
    public static void EnsureClsact(int ifindex)
    {
        var hook = LibBpf.TcHook.For(ifindex, LibBpf.BPF_TC_INGRESS | LibBpf.BPF_TC_EGRESS);
        var rc = LibBpf.bpf_tc_hook_create(&hook);
        if (rc != 0 && LibBpf.ErrnoOf(rc) != Libc.EEXIST)
        {
            throw BpfException.FromRc(rc, "bpf_tc_hook_create", $"ifindex {ifindex}");
        }
    }

    /// <summary>Deletes the clsact qdisc (and with it every tc filter on both directions); false if absent.</summary>
    public static bool DestroyClsact(int ifindex)
    {
        var hook = LibBpf.TcHook.For(ifindex, LibBpf.BPF_TC_INGRESS | LibBpf.BPF_TC_EGRESS);
        var rc = LibBpf.bpf_tc_hook_destroy(&hook);
        if (rc == 0)
        {
            return true;
        }

        var errno = LibBpf.ErrnoOf(rc);
        // ENODEV: a deleted pod's veth took its filters with it; a flush must not stop there and leave the rest.
        return errno is Libc.ENOENT or Libc.EINVAL or Libc.ENODEV ? false : throw new BpfException(errno, "bpf_tc_hook_destroy", $"ifindex {ifindex}");
    }

    /// <summary>Attaches a SCHED_CLS program fd in direct-action mode, replacing the filter at (handle, priority).</summary>
    public static void Attach(int programFd, int ifindex, TcDirection direction, uint priority = 1, uint handle = 1)
    {
        EnsureClsact(ifindex);
        var hook = LibBpf.TcHook.For(ifindex, (int)direction);
        var opts = LibBpf.TcOpts.Create();
        opts.ProgFd = programFd;
        opts.Handle = handle;
        opts.Priority = priority;
        opts.Flags = LibBpf.BPF_TC_F_REPLACE;
        var rc = LibBpf.bpf_tc_attach(&hook, &opts);
        if (rc != 0)
        {
            throw BpfException.FromRc(rc, $"bpf_tc_attach({direction})", $"ifindex {ifindex}");
        }
    }

    /// <summary>Removes the filter at (handle, priority); false if there was none (no clsact qdisc, or the device is gone).</summary>
    public static bool Detach(int ifindex, TcDirection direction, uint priority = 1, uint handle = 1)
    {
        var hook = LibBpf.TcHook.For(ifindex, (int)direction);
        // For detach libbpf requires prog_fd, prog_id and flags to be zero.
        var opts = LibBpf.TcOpts.Create();
        opts.Handle = handle;
        opts.Priority = priority;
        var rc = LibBpf.bpf_tc_detach(&hook, &opts);
        if (rc == 0)
        {
            return true;
        }

        var errno = LibBpf.ErrnoOf(rc);
        // ENODEV: a deleted pod's veth took its filters with it; a flush must not stop there and leave the rest.
        return errno is Libc.ENOENT or Libc.EINVAL or Libc.ENODEV ? false : throw new BpfException(errno, $"bpf_tc_detach({direction})", $"ifindex {ifindex}");
    }

    /// <summary>The id of the program attached at (handle, priority), or null if none.</summary>
    public static uint? Query(int ifindex, TcDirection direction, uint priority = 1, uint handle = 1)
    {
        var hook = LibBpf.TcHook.For(ifindex, (int)direction);
        var opts = LibBpf.TcOpts.Create();
        opts.Handle = handle;
        opts.Priority = priority;
        var rc = LibBpf.bpf_tc_query(&hook, &opts);
        if (rc == 0)
        {
            return opts.ProgId;
        }

        var errno = LibBpf.ErrnoOf(rc);
        return errno is Libc.ENOENT or Libc.EINVAL ? null : throw new BpfException(errno, $"bpf_tc_query({direction})", $"ifindex {ifindex}");
    }
}
