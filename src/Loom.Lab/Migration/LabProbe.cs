using System.Globalization;
using Loom.Linux;

namespace Loom.Lab.Migration;

/// <summary>
/// The probe processes of a lab run, one per node (<c>loom lab probe</c>, in the node's namespace and cgroup), each
/// appending to <c>probe/NODE.tsv</c> in the lab directory. A node's probe stops while the node "reboots" (a real
/// reboot stops it too) and starts again after; its file keeps every result.
/// </summary>
internal sealed class LabProbe(LabState state, ProbeTarget target, string runId) : IAsyncDisposable
{
    private readonly Dictionary<string, int> _pids = new(StringComparer.Ordinal);

    public string Dir { get; } = Path.Combine(state.LabDir, "probe", runId);

    public void Start(string node)
    {
        var n = state.Node(node);
        Directory.CreateDirectory(Dir);
        var args = new List<string>
        {
            "lab", "probe", "--http", target.Http.ToString(), "--name", target.DnsName,
            "--interval", ((int)target.Interval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture), "--out", ResultsFile(node),
            "--parent", Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        };
        if (target.Dns is { } dns)
        {
            args.AddRange(["--dns", dns.ToString()]);
        }

        _pids[node] = LabProcesses.StartDetached(n.Netns, Path.Combine(Dir, node + ".log"), state.LoomPath, args, LabCluster.NodeCgroup(state, node));
    }

    public async Task StopAsync(string node)
    {
        if (_pids.Remove(node, out var pid))
        {
            await LabProcesses.StopAsync(pid, TimeSpan.FromSeconds(3)).ConfigureAwait(false);
        }
    }

    /// <summary>Throws if a probe that should be running is gone: a node gone quiet would read as "0 failed".</summary>
    public void CheckRunning()
    {
        foreach (var (node, pid) in _pids)
        {
            if (!LabProcesses.IsAlive(pid))
            {
                var log = Path.Combine(Dir, node + ".log");
                throw new LabException($"the probe on {node} (pid {pid}) stopped; {log}:\n{Lab.LogTail(log)}");
            }
        }
    }

    /// <summary>Every result so far, per node.</summary>
    public IReadOnlyList<(string Node, ProbeResult Result)> Results() =>
        [.. state.Nodes.SelectMany(n => File.Exists(ResultsFile(n.Name))
            ? ReadLines(ResultsFile(n.Name)).Select(ProbeResult.Parse).OfType<ProbeResult>().Select(r => (n.Name, r))
            : [])];

    /// <summary>Waits until every running probe (or just <paramref name="node"/>'s) has had a request answered after <paramref name="since"/>; throws with the last failure otherwise.</summary>
    public async Task WaitAnsweredAsync(DateTimeOffset since, TimeSpan timeout, CancellationToken ct, string? node = null)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            var results = Results();
            var waiting = _pids.Keys.Where(n => node is null || n == node).Where(n => !results.Any(r => r.Node == n && r.Result.Ok && r.Result.Started >= since)).ToList();
            if (waiting.Count == 0)
            {
                return;
            }

            if (DateTimeOffset.UtcNow > deadline)
            {
                var first = waiting[0];
                var last = results.LastOrDefault(r => r.Node == first && !r.Result.Ok).Result?.Detail ?? "no result at all (see " + Path.Combine(Dir, first + ".log") + ")";
                throw new LabException($"the probe on {first} gets no answer: {last}");
            }

            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        var pids = _pids.Values.ToList();
        _pids.Clear();
        await Task.WhenAll(pids.Select(p => LabProcesses.StopAsync(p, TimeSpan.FromSeconds(3)))).ConfigureAwait(false);
    }

    private string ResultsFile(string node) => Path.Combine(Dir, node + ".tsv");

    // The probe appends while we read: open shared.
    private static List<string> ReadLines(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var r = new StreamReader(f);
        var lines = new List<string>();
        while (r.ReadLine() is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }
}
