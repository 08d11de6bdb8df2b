namespace Loom.Bench.Services;

/// <summary>Wall-clock samples of one kind of sync (ms), with how many were taken.</summary>
internal sealed class SyncSeries
{
    public List<double> Samples { get; set; } = [];

    public Stats Stats { get; set; } = Stats.Of([]);

    /// <summary>Syncs killed after the timeout (not in the samples).</summary>
    public int TimedOut { get; set; }

    public double TimeoutSeconds { get; set; }

    public void Add(double ms)
    {
        Samples.Add(Math.Round(ms, 3));
        Stats = Stats.Of(Samples);
    }
}

/// <summary>What the kernel holds in the node namespace after the N-service sync.</summary>
internal sealed class KernelSize
{
    /// <summary>iptables: lines of <c>iptables-save</c> (nat + filter); nftables: bytes of <c>nft -j list table</c>.</summary>
    public long Lines { get; set; }

    public long Bytes { get; set; }

    public int Chains { get; set; }

    public int Rules { get; set; }

    /// <summary>nftables: elements of the service-ips map (0 for iptables).</summary>
    public int Elements { get; set; }

    /// <summary>ebpf: max entries of lb4_svc and lb4_backends (fixed in bpf/lb4.c); 0 for the others.</summary>
    public int SvcMax { get; set; }

    public int BackendMax { get; set; }

    /// <summary>How long the listing took (ms), the tool the backend itself runs at the start of every sync.</summary>
    public double ListMs { get; set; }
}

/// <summary>The bench process's memory after the N-service sync (the process that ran the syncs).</summary>
internal sealed class Memory
{
    public double RssMb { get; set; }

    public double PeakRssMb { get; set; }

    /// <summary>Managed heap after a full compacting GC (the live backend instance keeps its applied state and last input).</summary>
    public double ManagedMb { get; set; }
}

internal sealed class NCell
{
    public int Services { get; set; }

    /// <summary>Flush (timed) then the first sync of a new instance into an empty kernel.</summary>
    public SyncSeries Initial { get; set; } = new();

    /// <summary><c>Flush()</c> of the N services (before each initial sync but the first of N=smallest).</summary>
    public SyncSeries Flush { get; set; } = new();

    /// <summary>A new backend instance's first sync with the same N already in the kernel (an agent restart: kube-proxy's full sync).</summary>
    public SyncSeries Full { get; set; } = new();

    /// <summary>The live instance, one service changed (the target's 4th endpoint replaced, then back).</summary>
    public SyncSeries Change { get; set; } = new();

    public KernelSize Kernel { get; set; } = new();

    public Memory Memory { get; set; } = new();

    public LoadCell? Service { get; set; }

    public LoadCell? Direct { get; set; }

    /// <summary>Why something of this N was not measured.</summary>
    public string? Note { get; set; }
}

/// <summary>One backend's whole run (one bench process): what <c>--part</c> writes and <c>--merge</c> reads.</summary>
internal sealed class BackendRun
{
    public string Backend { get; set; } = "";

    public string Tool { get; set; } = "";

    public string Date { get; set; } = "";

    public int Nproc { get; set; }

    public string Cpu { get; set; } = "";

    public string Kernel { get; set; } = "";

    public string Runtime { get; set; } = "";

    public string LoadAverageAtStart { get; set; } = "";

    public string LoadAverageAtEnd { get; set; } = "";

    public double TotalSeconds { get; set; }

    public double Seconds { get; set; }

    public int MaxConnections { get; set; }

    public int Clients { get; set; }

    public int Reps { get; set; }

    public int Slices { get; set; }

    public double SyncTimeoutSeconds { get; set; }

    public double SyncBudgetSeconds { get; set; }

    /// <summary>Direct connections before any rule exists in the node (no nat table, no conntrack).</summary>
    public LoadCell? Baseline { get; set; }

    public List<NCell> Cells { get; set; } = [];

    public List<string> Warnings { get; set; } = [];
}
