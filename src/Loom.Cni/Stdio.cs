using System.Runtime.InteropServices;
using System.Text;

namespace Loom.Cni;

/// <summary>
/// stdin and stdout by read(2)/write(2) on descriptors 0 and 1, not Console: Console.Out sets up terminal and signal
/// handling (a thread, handlers, encoding probes) that a process printing one line does not need, and a FileStream on
/// a descriptor it does not own would write at its own offset, not the descriptor's (a redirect to a file).
/// </summary>
internal static partial class Stdio
{
    private const int EINTR = 4;

    public static byte[] ReadStdin()
    {
        // Uninitialised and grown by doubling, not a MemoryStream over a zeroed 64 KB buffer: a config is a few KB.
        var buf = GC.AllocateUninitializedArray<byte>(16 * 1024);
        var len = 0;
        while (true)
        {
            if (len == buf.Length)
            {
                Array.Resize(ref buf, buf.Length * 2);
            }

            var n = Read(0, buf.AsSpan(len), buf.Length - len);
            if (n == 0)
            {
                return buf[..len];
            }

            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR)
                {
                    continue;
                }

                throw new IOException($"read stdin: errno {Marshal.GetLastPInvokeError()}");
            }

            len += (int)n;
        }
    }

    /// <summary>Writes all of <paramref name="text"/>; a runtime that closed its end (EPIPE) is ignored, as Console does.</summary>
    public static void WriteStdout(string text)
    {
        ReadOnlySpan<byte> rest = Encoding.UTF8.GetBytes(text);
        while (!rest.IsEmpty)
        {
            var n = Write(1, rest, rest.Length);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR)
                {
                    continue;
                }

                return;
            }

            rest = rest[(int)n..];
        }
    }

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, Span<byte> buf, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, ReadOnlySpan<byte> buf, nint count);
}
