using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Loom.Linux.Bpf;

// libbpf 1.x (Debian 12: 1.1.2). In 1.x ("libbpf_strict"), int-returning APIs return -errno and
// also set errno; pointer-returning APIs return NULL and set errno.
internal static unsafe partial class LibBpf
{
    private const string Lib = "libbpf.so.1";

    internal const int BPF_TC_INGRESS = 1 << 0;
    internal const int BPF_TC_EGRESS = 1 << 1;
    internal const uint BPF_TC_F_REPLACE = 1 << 0;

    // struct bpf_tc_hook { size_t sz; int ifindex; enum bpf_tc_attach_point attach_point; __u32 parent; size_t :0; }
    // => 24 bytes on LP64; sz must be sizeof(struct bpf_tc_hook) or libbpf rejects it with EINVAL.
    [StructLayout(LayoutKind.Sequential)]
    internal struct TcHook
    {
        public nuint Sz;
        public int Ifindex;
        public int AttachPoint;
        public uint Parent;
        private readonly uint _pad;

        public static TcHook For(int ifindex, int attachPoint) =>
            new() { Sz = (nuint)sizeof(TcHook), Ifindex = ifindex, AttachPoint = attachPoint };
    }

    // struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags; __u32 prog_id; __u32 handle; __u32 priority; size_t :0; }
    // => 32 bytes.
    [StructLayout(LayoutKind.Sequential)]
    internal struct TcOpts
    {
        public nuint Sz;
        public int ProgFd;
        public uint Flags;
        public uint ProgId;
        public uint Handle;
        public uint Priority;
        private readonly uint _pad;

        public static TcOpts Create() => new() { Sz = (nuint)sizeof(TcOpts) };
    }

    // Leading part of struct bpf_map_info (uapi); the kernel fills only info_len bytes.
    [StructLayout(LayoutKind.Sequential)]
    internal struct MapInfo
    {
        public uint Type;
        public uint Id;
        public uint KeySize;
        public uint ValueSize;
        public uint MaxEntries;
        public uint MapFlags;
        public fixed byte Name[16];
    }

    // Leading part of struct bpf_prog_info.
    [StructLayout(LayoutKind.Sequential)]
    internal struct ProgInfo
    {
        public uint Type;
        public uint Id;
    }

    static LibBpf()
    {
        // Route libbpf's messages (including the verifier log on a failed load) into a per-thread buffer
        // that BpfException picks up, instead of libbpf's default of printing to stderr.
        libbpf_set_print(&Print);
    }

    [ThreadStatic]
    private static StringBuilder? _log;

    /// <summary>Starts capturing libbpf messages on this thread (forces the static constructor first).</summary>
    internal static void BeginLog() => (_log ??= new StringBuilder()).Clear();

    internal static string TakeLog()
    {
        var text = _log?.ToString() ?? "";
        _log?.Clear();
        return text;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Print(int level, byte* format, nint args)
    {
        // level: 0 warn, 1 info, 2 debug. Debug is very chatty (every relocation); keep warn and info.
        if (level > 1)
        {
            return 0;
        }

        const int size = 4096;
        var buf = stackalloc byte[size];
        // On x86-64 and arm64 a va_list argument is passed as a pointer, so it can be handed on as is.
        var n = vsnprintf(buf, size, format, args);
        if (n > 0)
        {
            var log = _log ??= new StringBuilder();
            if (log.Length < 256 * 1024)
            {
                log.Append(Encoding.UTF8.GetString(buf, Math.Min(n, size - 1)));
            }
        }

        return 0;
    }

    [LibraryImport("libc")]
    private static partial int vsnprintf(byte* buf, nuint size, byte* format, nint args);

    [LibraryImport(Lib)]
    private static partial nint libbpf_set_print(delegate* unmanaged[Cdecl]<int, byte*, nint, int> fn);

    [LibraryImport(Lib)]
    internal static partial int libbpf_strerror(int err, byte* buf, nuint size);

    [LibraryImport(Lib)]
    internal static partial int libbpf_num_possible_cpus();

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint bpf_object__open_file(string path, void* opts);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_object__load(nint obj);

    [LibraryImport(Lib)]
    internal static partial void bpf_object__close(nint obj);

    [LibraryImport(Lib)]
    internal static partial nint bpf_object__next_map(nint obj, nint map);

    [LibraryImport(Lib)]
    internal static partial nint bpf_object__next_program(nint obj, nint prog);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint bpf_object__find_map_by_name(nint obj, string name);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint bpf_object__find_program_by_name(nint obj, string name);

    [LibraryImport(Lib)]
    internal static partial byte* bpf_map__name(nint map);

    [LibraryImport(Lib)]
    internal static partial int bpf_map__fd(nint map);

    [LibraryImport(Lib)]
    internal static partial uint bpf_map__type(nint map);

    [LibraryImport(Lib)]
    internal static partial uint bpf_map__key_size(nint map);

    [LibraryImport(Lib)]
    internal static partial uint bpf_map__value_size(nint map);

    [LibraryImport(Lib)]
    internal static partial uint bpf_map__max_entries(nint map);

    [LibraryImport(Lib)]
    internal static partial uint bpf_map__map_flags(nint map);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_map__set_max_entries(nint map, uint maxEntries);

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool bpf_map__is_internal(nint map);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int bpf_map__set_pin_path(nint map, string? path);

    [LibraryImport(Lib)]
    internal static partial byte* bpf_program__name(nint prog);

    [LibraryImport(Lib)]
    internal static partial int bpf_program__fd(nint prog);

    [LibraryImport(Lib)]
    internal static partial uint bpf_program__type(nint prog);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int bpf_obj_pin(int fd, string path);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int bpf_obj_get(string path);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_obj_get_info_by_fd(int fd, void* info, uint* infoLen);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_map_update_elem(int fd, void* key, void* value, ulong flags);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_map_lookup_elem(int fd, void* key, void* value);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_map_delete_elem(int fd, void* key);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_map_get_next_key(int fd, void* key, void* nextKey);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_tc_hook_create(TcHook* hook);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_tc_hook_destroy(TcHook* hook);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_tc_attach(TcHook* hook, TcOpts* opts);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_tc_detach(TcHook* hook, TcOpts* opts);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_tc_query(TcHook* hook, TcOpts* opts);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_prog_attach(int progFd, int attachableFd, int type, uint flags);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_prog_query(int targetFd, int type, uint queryFlags, uint* attachFlags, uint* progIds, uint* progCnt);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_prog_detach2(int progFd, int attachableFd, int type);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int bpf_prog_get_fd_by_id(uint id);

    // struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx, const struct ring_buffer_opts *opts)
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial nint ring_buffer__new(int mapFd, delegate* unmanaged[Cdecl]<nint, byte*, nuint, int> sample, nint ctx, void* opts);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int ring_buffer__poll(nint rb, int timeoutMs);

    [LibraryImport(Lib)]
    internal static partial void ring_buffer__free(nint rb);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int statfs([MarshalAs(UnmanagedType.LPUTF8Str)] string path, void* buf);

    /// <summary>errno of a failed libbpf call: the negative return value, else errno.</summary>
    internal static int ErrnoOf(int rc) => rc < 0 ? -rc : Marshal.GetLastPInvokeError();

    internal static string Utf8(byte* s) => s is null ? "" : Marshal.PtrToStringUTF8((nint)s) ?? "";

    internal static string StrError(int errno)
    {
        var buf = stackalloc byte[256];
        return libbpf_strerror(errno, buf, 256) == 0 ? Utf8(buf) : Marshal.GetPInvokeErrorMessage(errno);
    }
}
