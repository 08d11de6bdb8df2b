using Loom.Linux.Interop;

namespace Loom.Linux.Bpf;

/// <summary>The BPF filesystem (bpffs), where maps and programs are pinned to outlive their process.</summary>
public static class BpfFs
{
    public const string DefaultRoot = "/sys/fs/bpf";

    private const long BpfFsMagic = 0xcafe4a11;

    private static readonly Lazy<int> Cpus = new(() =>
    {
        var n = LibBpf.libbpf_num_possible_cpus();
        return n > 0 ? n : throw new BpfException(-n, "libbpf_num_possible_cpus", null);
    });

    /// <summary>Number of possible CPUs: the length of every per-CPU map value array.</summary>
    public static int PossibleCpus => Cpus.Value;

    /// <summary>True if <paramref name="path"/> is on a bpf filesystem.</summary>
    public static unsafe bool IsBpfFs(string path)
    {
        // struct statfs is 120 bytes on LP64 and starts with f_type (long).
        var buf = stackalloc long[32];
        return LibBpf.statfs(path, buf) == 0 && buf[0] == BpfFsMagic;
    }

    /// <summary>Mounts bpffs at <paramref name="root"/> unless it already is (like <c>mount -t bpf bpf /sys/fs/bpf</c>).</summary>
    public static unsafe void EnsureMounted(string root = DefaultRoot)
    {
        if (IsBpfFs(root))
        {
            return;
        }

        Directory.CreateDirectory(root);
        if (Libc.mount("bpf", root, "bpf", 0, null) != 0)
        {
            throw Libc.Error("mount -t bpf", root);
        }
    }

    /// <summary>Pins a map or program fd at <paramref name="path"/> (its directory is created on bpffs).</summary>
    public static void Pin(int fd, string path)
    {
        var dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        var rc = LibBpf.bpf_obj_pin(fd, path);
        if (rc != 0)
        {
            throw BpfException.FromRc(rc, "bpf_obj_pin", path);
        }
    }

    /// <summary>Removes a pin; true if it existed. The object lives on while something else holds it.</summary>
    public static bool Unpin(string path)
    {
        if (Libc.unlink(path) == 0)
        {
            return true;
        }

        return Libc.Errno == Libc.ENOENT ? false : throw Libc.Error("unlink", path);
    }

    /// <summary>Removes a directory of pins recursively (bpffs allows unlink/rmdir like any fs); no-op if absent.</summary>
    public static void RemoveTree(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
        else
        {
            Unpin(path);
        }
    }
}
