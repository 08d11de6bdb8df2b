using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>
/// kube-proxy replacement with eBPF (bpf/lb4.o): per-packet DNAT / reverse NAT by tc programs on the pods' host-side
/// veths, and socket-level LB by cgroup connect4 / sendmsg4 / recvmsg4 programs, both reading the same pinned maps.
/// <see cref="Sync"/> writes only the differences between the desired services and what the maps hold (so a restarted
/// backend adopts a previous run's maps), then keeps them in memory and writes only changed services' entries
/// (<see cref="LbServiceSync"/>). Files: .Sync (sync, attaching to veths), .Attach (tc and cgroup attachments), .Explain
/// (explain, dump), .Maps (map layouts). Not thread-safe: the agent calls it from its sync loop.
/// </summary>
public sealed partial class EbpfServiceBackend : IServiceBackend, IDisposable
{
    private static readonly string[] CgroupPrograms = [LbMaps.Connect4, LbMaps.Sendmsg4, LbMaps.Recvmsg4];

    private readonly EbpfServiceOptions _options;
    private BpfObject? _obj;

    public EbpfServiceBackend(EbpfServiceOptions? options = null)
    {
        _options = options ?? new EbpfServiceOptions();
        if (_options.Algorithm == LbAlgorithm.Maglev)
        {
            Maglev.ValidateTableSize(_options.MaglevTableSize);
        }

        _options.MapSizes.Validate();
    }

    public string Name => "ebpf";

    public EbpfServiceOptions Options => _options;

    /// <summary>The loaded lb4 object (loading it, with its maps reused from the pins, on first use).</summary>
    public BpfObject Loaded => EnsureLoaded();

    /// <summary>Path of lb4.o as resolved from the options.</summary>
    public string ObjectPath => ResolveObject(_options.ObjectDirectory);

    public void Flush()
    {
        if (_obj is null && !Directory.Exists(_options.PinDirectory))
        {
            return;
        }

        var obj = EnsureLoaded();
        foreach (var ifindex in AttachedInterfaces())
        {
            BpfTc.Detach(ifindex, TcDirection.Ingress, _options.TcPriority, _options.TcHandle);
            BpfTc.Detach(ifindex, TcDirection.Egress, _options.TcPriority, _options.TcHandle);
        }

        if (UnderlayInterface is { } underlay)
        {
            BpfTc.Detach(underlay, TcDirection.Ingress, _options.NodePortTcPriority, _options.NodePortTcHandle);
            BpfTc.Detach(underlay, TcDirection.Egress, _options.NodePortTcPriority, _options.NodePortTcHandle);
        }

        if (_options.CgroupPath is { } cg && Directory.Exists(cg))
        {
            foreach (var name in CgroupPrograms)
            {
                obj.Program(name).DetachCgroup(cg, AttachTypeOf(name));
                DetachPinned(cg, name);
            }
        }

        ClearAll(obj);
        obj.Dispose();
        _obj = null;
        _sync = null;
        _attached.Clear();
        _frontends = [];
        BpfFs.RemoveTree(_options.PinDirectory);
    }

    /// <summary>Closes this process's descriptors; maps, pins and attachments stay (a restart adopts them).</summary>
    public void Dispose()
    {
        _obj?.Dispose();
        _obj = null;
        _sync = null;
    }

    /// <summary>
    /// Where a BPF object of bpf/ is: in <paramref name="directory"/> if given, else <c>$LOOM_BPF_DIR</c>, else <c>bpf/</c>
    /// next to the executable, else the nearest <c>out/bpf</c> above the working directory.
    /// </summary>
    internal static string ResolveObject(string? directory, string file = LbMaps.ObjectFile)
    {
        if (directory is not null)
        {
            return Path.Combine(directory, file);
        }

        if (Environment.GetEnvironmentVariable("LOOM_BPF_DIR") is { Length: > 0 } env)
        {
            return Path.Combine(env, file);
        }

        var beside = Path.Combine(AppContext.BaseDirectory, "bpf", file);
        if (File.Exists(beside))
        {
            return beside;
        }

        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "out", "bpf", file);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return beside;
    }

    private BpfObject EnsureLoaded()
    {
        if (_obj is not null)
        {
            return _obj;
        }

        if (_options.PinDirectory.StartsWith(BpfFs.DefaultRoot + "/", StringComparison.Ordinal))
        {
            BpfFs.EnsureMounted();
        }

        var obj = BpfObject.Open(ObjectPath);
        try
        {
            Flows.FlowEventMaps.Share(obj, _options.EventsDirectory);
            _options.MapSizes.Apply(obj);
            obj.Load(_options.PinDirectory);
            if (_options.CgroupPath is { } cg)
            {
                foreach (var name in CgroupPrograms)
                {
                    AttachCgroup(obj.Program(name), cg, name);
                }
            }
        }
        catch
        {
            obj.Dispose();
            throw;
        }

        _obj = obj;
        return obj;
    }

    internal static LbServiceKey MasterKey(Frontend f) => new(f.Address, f.Port, ToSocketProtocol(f.Protocol), 0);

    internal static ProtocolType ToSocketProtocol(Protocol p) => p switch
    {
        Protocol.Tcp => ProtocolType.Tcp,
        Protocol.Udp => ProtocolType.Udp,
        _ => throw new ArgumentOutOfRangeException(nameof(p), p, null),
    };
}

internal static class LbServiceKeyExtensions
{
    public static ProtocolType ProtocolType(this LbServiceKey key) => (ProtocolType)key.Protocol;
}
