namespace Loom.Linux.Bpf;

/// <summary>enum bpf_map_type (uapi), the types Loom uses.</summary>
public enum BpfMapType : uint
{
    Unspec = 0,
    Hash = 1,
    Array = 2,
    ProgArray = 3,
    PerfEventArray = 4,
    PerCpuHash = 5,
    PerCpuArray = 6,
    LruHash = 9,
    LruPerCpuHash = 10,
    LpmTrie = 11,
    RingBuf = 27,
}

/// <summary>Flags of bpf_map_update_elem.</summary>
public enum BpfUpdate : ulong
{
    /// <summary>BPF_ANY: create or replace.</summary>
    Any = 0,

    /// <summary>BPF_NOEXIST: create only; EEXIST if present.</summary>
    NoExist = 1,

    /// <summary>BPF_EXIST: replace only; ENOENT if absent.</summary>
    Exist = 2,
}

/// <summary>Which side of a clsact qdisc a tc program runs on.</summary>
public enum TcDirection
{
    Ingress = 1,
    Egress = 2,
}

/// <summary>enum bpf_attach_type (uapi): the cgroup hooks.</summary>
public enum BpfCgroupAttachType
{
    InetIngress = 0,
    InetEgress = 1,
    InetSockCreate = 2,
    SockOps = 3,
    Inet4Bind = 8,
    Inet6Bind = 9,
    Inet4Connect = 10,
    Inet6Connect = 11,
    Inet4PostBind = 12,
    Inet6PostBind = 13,
    Udp4Sendmsg = 14,
    Udp6Sendmsg = 15,
    Udp4Recvmsg = 19,
    Udp6Recvmsg = 20,
    Inet4GetPeerName = 29,
    Inet6GetPeerName = 30,
    Inet4GetSockName = 31,
    Inet6GetSockName = 32,
    InetSockRelease = 34,
}

/// <summary>Attach flags of BPF_PROG_ATTACH (BPF_F_ALLOW_OVERRIDE / BPF_F_ALLOW_MULTI).</summary>
[Flags]
public enum BpfCgroupAttachMode : uint
{
    /// <summary>Exclusive: the only program on this hook of this cgroup, descendants may not attach.</summary>
    None = 0,
    AllowOverride = 1,

    /// <summary>Several programs on the same hook, all run (what cooperating agents want).</summary>
    AllowMulti = 2,
}
