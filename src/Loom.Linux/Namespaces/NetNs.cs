using System.Runtime.ExceptionServices;
using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>
/// Named network namespaces, compatible with <c>ip netns</c> (bind mounts under /var/run/netns).
/// The network namespace is a per-thread property, so everything that enters a namespace does so
/// on a fresh dedicated thread that dies afterwards; thread-pool threads are never switched.
/// </summary>
public static class NetNs
{
    public const string RunDir = "/var/run/netns";

    private static readonly Lock CreateLock = new();

    /// <summary>Creates a named namespace exactly like <c>ip netns add NAME</c>.</summary>
    public static void Create(string name)
    {
        var path = PathOf(ValidateName(name));
        lock (CreateLock)
        {
            EnsureSharedRunDir();

            var fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0);
            if (fd < 0)
            {
                throw Libc.Error("create", path);
            }

            Libc.close(fd);
            try
            {
                // unshare() affects only the calling thread; that thread is discarded afterwards,
                // the bind mount is what keeps the new namespace alive.
                OnDedicatedThread(() =>
                {
                    if (Libc.unshare(Libc.CLONE_NEWNET) != 0)
                    {
                        throw Libc.Error("unshare(CLONE_NEWNET)", name);
                    }

                    unsafe
                    {
                        if (Libc.mount("/proc/thread-self/ns/net", path, "none", Libc.MS_BIND, null) != 0)
                        {
                            throw Libc.Error("mount --bind", path);
                        }
                    }

                    return 0;
                });
            }
            catch
            {
                Libc.unlink(path);
                throw;
            }
        }
    }

    /// <summary>Deletes a named namespace like <c>ip netns del</c>; succeeds if it does not exist.</summary>
    public static void Delete(string name)
    {
        var path = PathOf(ValidateName(name));
        if (Libc.umount2(path, Libc.MNT_DETACH) != 0)
        {
            var errno = Libc.Errno;
            // EINVAL: not a mount point (half-created), ENOENT: already gone.
            if (errno is not (Libc.EINVAL or Libc.ENOENT))
            {
                throw new LinuxException(errno, "umount2", path);
            }
        }

        if (Libc.unlink(path) != 0 && Libc.Errno != Libc.ENOENT)
        {
            throw Libc.Error("unlink", path);
        }
    }

    public static bool Exists(string name) => File.Exists(PathOf(ValidateName(name)));

    public static IReadOnlyList<string> List() =>
        Directory.Exists(RunDir)
            ? Directory.GetFiles(RunDir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>Opens a namespace by name (under /var/run/netns) or by path (anything containing '/').</summary>
    public static NetNsHandle Open(string nameOrPath)
    {
        var path = nameOrPath.Contains('/', StringComparison.Ordinal) ? nameOrPath : PathOf(ValidateName(nameOrPath));
        var fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        return fd < 0 ? throw Libc.Error("open netns", path) : new NetNsHandle(fd);
    }

    /// <summary>Opens the network namespace of the calling thread.</summary>
    public static NetNsHandle OpenCurrent() => Open("/proc/thread-self/ns/net");

    /// <summary>
    /// Runs <paramref name="func"/> on a new thread that has entered <paramref name="ns"/> and waits for it.
    /// Sockets (including netlink sockets) created inside stay bound to that namespace and may be used
    /// from any thread afterwards. Exceptions propagate with their original stack.
    /// Do not await inside: continuations would run on pool threads in the original namespace.
    /// </summary>
    public static T Run<T>(NetNsHandle ns, Func<T> func)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(func);
        var added = false;
        ns.DangerousAddRef(ref added);
        try
        {
            var fd = ns.Fd;
            return OnDedicatedThread(() =>
            {
                if (Libc.setns(fd, Libc.CLONE_NEWNET) != 0)
                {
                    throw Libc.Error("setns(CLONE_NEWNET)");
                }

                return func();
            });
        }
        finally
        {
            if (added)
            {
                ns.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="func"/> on the calling thread switched into <paramref name="ns"/>, then switches it back:
    /// no helper thread to create, schedule and join. For short, synchronous work such as creating a socket (which stays
    /// bound to <paramref name="ns"/>). Should the thread fail to return to its namespace, the process is ended: a
    /// thread left in another network namespace would act on the wrong network from then on.
    /// </summary>
    public static T RunOnCurrentThread<T>(NetNsHandle ns, Func<T> func)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(func);
        using var home = OpenCurrent();
        var added = false;
        ns.DangerousAddRef(ref added);
        try
        {
            if (Libc.setns(ns.Fd, Libc.CLONE_NEWNET) != 0)
            {
                throw Libc.Error("setns(CLONE_NEWNET)");
            }

            try
            {
                return func();
            }
            finally
            {
                if (Libc.setns(home.Fd, Libc.CLONE_NEWNET) != 0)
                {
                    Environment.FailFast($"cannot return thread {Environment.CurrentManagedThreadId} to its network namespace: errno {Libc.Errno}");
                }
            }
        }
        finally
        {
            if (added)
            {
                ns.DangerousRelease();
            }
        }
    }

    public static void Run(NetNsHandle ns, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        Run(ns, () =>
        {
            action();
            return 0;
        });
    }

    /// <summary>
    /// Deletes namespaces named <c>&lt;prefix&gt;&lt;pid&gt;-...</c> whose pid is no longer alive
    /// (left behind by killed runs). Returns the names deleted.
    /// </summary>
    public static IReadOnlyList<string> SweepStale(string prefix)
    {
        var deleted = new List<string>();
        foreach (var name in List())
        {
            if (RunPrefix.TryParsePid(name, prefix, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
            {
                Delete(name);
                deleted.Add(name);
            }
        }

        return deleted;
    }

    private static string PathOf(string name) => Path.Combine(RunDir, name);

    private static string ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name is "." or ".." || name.Contains('/', StringComparison.Ordinal) || name.Length > 255)
        {
            throw new ArgumentException($"invalid netns name '{name}'", nameof(name));
        }

        return name;
    }

    // iproute2: make /var/run/netns a shared mount point so bind mounts propagate to other mount
    // namespaces; if it is not a mount point yet (EINVAL), bind-mount it onto itself and retry.
    private static unsafe void EnsureSharedRunDir()
    {
        if (Libc.mkdir(RunDir, 0x1ED /* 0755 */) != 0 && Libc.Errno != Libc.EEXIST)
        {
            throw Libc.Error("mkdir", RunDir);
        }

        var madeMount = false;
        while (Libc.mount("", RunDir, "none", Libc.MS_SHARED | Libc.MS_REC, null) != 0)
        {
            if (Libc.Errno != Libc.EINVAL || madeMount)
            {
                throw Libc.Error("mount --make-shared", RunDir);
            }

            if (Libc.mount(RunDir, RunDir, "none", Libc.MS_BIND | Libc.MS_REC, null) != 0)
            {
                throw Libc.Error("mount --bind", RunDir);
            }

            madeMount = true;
        }
    }

    private static T OnDedicatedThread<T>(Func<T> func)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = func();
            }
            catch (Exception ex)
            {
                error = ExceptionDispatchInfo.Capture(ex);
            }
        })
        {
            IsBackground = true,
            Name = "loom-netns",
        };
        thread.Start();
        thread.Join();
        error?.Throw();
        return result;
    }
}
