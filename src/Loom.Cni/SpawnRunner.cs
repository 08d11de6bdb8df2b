using System.Runtime.InteropServices;
using Loom.Core.Cni;

namespace Loom.Cni;

/// <summary>
/// Runs a delegated plugin (host-local) by posix_spawn and blocking pipe I/O under poll(2). Not
/// System.Diagnostics.Process: it starts the thread pool, a SIGCHLD handling thread and the runtime's async pipe
/// engine, which measured as a few milliseconds of a loom-cni + host-local ADD, longer than host-local itself.
/// Same contract as Loom.Core's ProcessPluginRunner: exactly the given environment, stdin fed, both outputs kept.
/// </summary>
internal sealed partial class SpawnRunner : IPluginRunner
{
    public static SpawnRunner Instance { get; } = new();

    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int ETXTBSY = 26;
    private const int SIGPIPE = 13;
    private const int SIGKILL = 9;
    private const int MaxBusyRetries = 5;
    private const short POLLIN = 0x1, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10;
    private const short POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSIGMASK = 0x08;
    private const int O_CLOEXEC = 0x80000;
    private const int O_NONBLOCK = 0x800;

    public async Task<PluginRunResult> RunAsync(string path, ReadOnlyMemory<byte> stdin, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        // Like libcni: a plugin binary that is being replaced fails with "text file busy"; wait and retry.
        for (var attempt = 0; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var err = TryRun(path, stdin.Span, environment, cancellationToken, out var result);
            if (err == 0)
            {
                return result!;
            }

            if (err != ETXTBSY || attempt >= MaxBusyRetries)
            {
                throw new CniException(CniErrorCodes.Internal, $"failed to exec plugin {path}", Marshal.GetPInvokeErrorMessage(err));
            }

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }
    }

    // Returns 0 and the result, or the errno of a spawn that did not happen.
    private static unsafe int TryRun(string path, ReadOnlySpan<byte> stdin, IReadOnlyDictionary<string, string> environment, CancellationToken ct, out PluginRunResult? result)
    {
        result = null;
        int* i = stackalloc int[2], o = stackalloc int[2], e = stackalloc int[2];
        var fds = new List<int>(6);
        try
        {
            foreach (var p in new[] { (nint)i, (nint)o, (nint)e })
            {
                if (Pipe2((int*)p, O_CLOEXEC) != 0)
                {
                    throw new IOException($"pipe2: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
                }

                fds.Add(((int*)p)[0]);
                fds.Add(((int*)p)[1]);
            }

            var err = Spawn(path, environment, i[0], o[1], e[1], out var pid);
            // The child's ends: closed here so EOF on stdout/stderr means the child (and what it spawned) is done.
            foreach (var fd in new[] { i[0], o[1], e[1] })
            {
                _ = Close(fd);
                _ = fds.Remove(fd);
            }

            if (err != 0)
            {
                return err;
            }

            _ = Fcntl(i[1], 4 /* F_SETFL */, O_NONBLOCK);
            var (stdout, stderr) = Pump(stdin, i[1], o[0], e[0], pid, fds, ct);
            result = new PluginRunResult(Wait(pid), stdout, stderr);
            return 0;
        }
        finally
        {
            foreach (var fd in fds)
            {
                _ = Close(fd);
            }
        }
    }

    private static unsafe int Spawn(string path, IReadOnlyDictionary<string, string> environment, int stdinFd, int stdoutFd, int stderrFd, out int pid)
    {
        var strings = new List<nint>();
        var fileActions = stackalloc byte[256]; // posix_spawn_file_actions_t: 80 bytes on glibc x86-64
        var attr = stackalloc byte[512]; // posix_spawnattr_t: 336
        var sigs = stackalloc byte[128]; // sigset_t
        try
        {
            nint Str(string s)
            {
                var p = Marshal.StringToCoTaskMemUTF8(s);
                strings.Add(p);
                return p;
            }

            var argv = stackalloc nint[2] { Str(path), 0 };
            var envp = new nint[environment.Count + 1];
            var n = 0;
            foreach (var (k, v) in environment)
            {
                envp[n++] = Str($"{k}={v}");
            }

            _ = FileActionsInit(fileActions);
            _ = FileActionsAddDup2(fileActions, stdinFd, 0);
            _ = FileActionsAddDup2(fileActions, stdoutFd, 1);
            _ = FileActionsAddDup2(fileActions, stderrFd, 2);
            // The runtime ignores SIGPIPE, and an ignored signal stays ignored across exec: the child gets the default.
            _ = AttrInit(attr);
            _ = SigEmptySet(sigs);
            _ = AttrSetSigMask(attr, sigs);
            _ = SigAddSet(sigs, SIGPIPE);
            _ = AttrSetSigDefault(attr, sigs);
            _ = AttrSetFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
            fixed (nint* env = envp)
            {
                int child;
                var err = PosixSpawn(&child, argv[0], fileActions, attr, argv, env);
                pid = child;
                return err;
            }
        }
        finally
        {
            _ = FileActionsDestroy(fileActions);
            _ = AttrDestroy(attr);
            foreach (var p in strings)
            {
                Marshal.FreeCoTaskMem(p);
            }
        }
    }

    // Feeds stdin and drains stdout/stderr together, so a plugin that writes a lot before reading never deadlocks.
    private static unsafe (byte[] Stdout, byte[] Stderr) Pump(ReadOnlySpan<byte> stdin, int inFd, int outFd, int errFd, int pid, List<int> fds, CancellationToken ct)
    {
        var outBuf = new MemoryStream();
        var errBuf = new MemoryStream();
        var buf = stackalloc byte[16 * 1024];
        var pfd = stackalloc PollFd[3];
        int written = 0, open = 2;
        var feeding = true;
        if (stdin.IsEmpty)
        {
            CloseOwned(inFd, fds);
            feeding = false;
        }

        while (open > 0 || feeding)
        {
            pfd[0] = new PollFd { Fd = feeding ? inFd : -1, Events = POLLOUT };
            pfd[1] = new PollFd { Fd = outFd, Events = POLLIN };
            pfd[2] = new PollFd { Fd = errFd, Events = POLLIN };
            if (Poll(pfd, 3, ct.CanBeCanceled ? 100 : -1) < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR)
                {
                    continue;
                }

                throw new IOException($"poll: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }

            if (ct.IsCancellationRequested)
            {
                _ = Kill(pid, SIGKILL);
                _ = Wait(pid);
                ct.ThrowIfCancellationRequested();
            }

            if (feeding && (pfd[0].Revents & (POLLOUT | POLLERR | POLLHUP)) != 0)
            {
                fixed (byte* s = stdin)
                {
                    var w = Write(inFd, s + written, stdin.Length - written);
                    var errno = w < 0 ? Marshal.GetLastPInvokeError() : 0;
                    if (w > 0)
                    {
                        written += (int)w;
                    }

                    // EPIPE: the plugin exited without reading all of stdin; its exit code and output tell why.
                    if (written == stdin.Length || (w < 0 && errno != EINTR && errno != EAGAIN))
                    {
                        CloseOwned(inFd, fds);
                        feeding = false;
                    }
                }
            }

            for (var k = 1; k <= 2; k++)
            {
                if (pfd[k].Fd < 0 || (pfd[k].Revents & (POLLIN | POLLERR | POLLHUP)) == 0)
                {
                    continue;
                }

                var r = Read(pfd[k].Fd, buf, 16 * 1024);
                if (r > 0)
                {
                    (k == 1 ? outBuf : errBuf).Write(new ReadOnlySpan<byte>(buf, (int)r));
                }
                else if (r == 0 || Marshal.GetLastPInvokeError() != EINTR)
                {
                    CloseOwned(pfd[k].Fd, fds);
                    if (k == 1)
                    {
                        outFd = -1;
                    }
                    else
                    {
                        errFd = -1;
                    }

                    open--;
                }
            }
        }

        return (outBuf.ToArray(), errBuf.ToArray());
    }

    private static void CloseOwned(int fd, List<int> fds)
    {
        _ = Close(fd);
        _ = fds.Remove(fd);
    }

    // The exit code as a shell reports it: 128 + signal for a killed plugin.
    private static unsafe int Wait(int pid)
    {
        int status;
        while (WaitPid(pid, &status, 0) < 0)
        {
            if (Marshal.GetLastPInvokeError() != EINTR)
            {
                throw new IOException($"waitpid: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }
        }

        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    private static unsafe partial int Pipe2(int* fds, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint Read(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int sig);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static unsafe partial int WaitPid(int pid, int* status, int options);

    [LibraryImport("libc", EntryPoint = "posix_spawn")]
    private static unsafe partial int PosixSpawn(int* pid, nint path, byte* fileActions, byte* attr, nint* argv, nint* envp);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static unsafe partial int FileActionsInit(byte* fa);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static unsafe partial int FileActionsAddDup2(byte* fa, int fd, int newFd);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static unsafe partial int FileActionsDestroy(byte* fa);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    private static unsafe partial int AttrInit(byte* attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    private static unsafe partial int AttrDestroy(byte* attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    private static unsafe partial int AttrSetFlags(byte* attr, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    private static unsafe partial int AttrSetSigMask(byte* attr, byte* sigs);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    private static unsafe partial int AttrSetSigDefault(byte* attr, byte* sigs);

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    private static unsafe partial int SigEmptySet(byte* sigs);

    [LibraryImport("libc", EntryPoint = "sigaddset")]
    private static unsafe partial int SigAddSet(byte* sigs, int sig);
}
