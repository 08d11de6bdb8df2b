using System.Globalization;
using Loom.Agent;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Linux;
using Loom.Store;

namespace Loom.Lab;

/// <summary>The nodes' agents: their configuration, start and restart, and the wait until each node is Ready.</summary>
internal static class LabAgents
{
    /// <summary>The node agent's <c>--config</c> file: an <see cref="AgentConfig"/> serialised as the agent reads it.</summary>
    internal static string AgentConfigJson(LabState state, LabNode node)
    {
        var dir = state.NodeDir(node.Name);
        var store = new StoreConfig { Type = state.Store, Endpoints = state.StoreEndpoints };
        if (state.StorePath is { } path)
        {
            store.Path = path;
        }

        if (state.Store == "etcd")
        {
            var tls = LabEtcdPki.Client(state, node.Name);
            store.Tls = new StoreTlsConfig { Ca = tls.CaFile, Cert = tls.CertFile, Key = tls.KeyFile };
        }

        var config = new AgentConfig
        {
            Node = node.Name,
            Iface = Lab.NodeInterface,
            Store = store,
            CniConfDir = Path.Combine(dir, "net.d"),
            StateDir = Path.Combine(dir, "run"),
            IpamDataDir = Path.Combine(dir, "ipam"),
            MetricsAddress = node.Ip + ":9962",
            BpfPinDir = Lab.BpfPinDir(state, node.Name),
            Cgroup = LabCluster.NodeCgroup(state, node.Name),
        };
        return config.ToJson() + "\n";
    }

    /// <summary>The agent's unix socket (a path reaches it from any namespace).</summary>
    internal static string SocketPath(LabState state, string node) => Path.Combine(state.NodeDir(node), "run", "agent.sock");

    /// <summary>One request to a node's agent: its answer, or why there is none (not running, not listening, or a reply cut short).</summary>
    internal static Task<(AgentResponse? Response, string? Error)> AskAsync(LabState state, string node, string op, TimeSpan timeout, CancellationToken ct) =>
        AskAsync(state, node, new AgentRequest { Op = op }, timeout, ct);

    /// <summary>As <see cref="AskAsync(LabState, string, string, TimeSpan, CancellationToken)"/>, with the request's other fields (a flows query).</summary>
    internal static async Task<(AgentResponse? Response, string? Error)> AskAsync(LabState state, string node, AgentRequest request, TimeSpan timeout, CancellationToken ct)
    {
        var socket = SocketPath(state, node);
        try
        {
            var r = await AgentClient.SendAsync(socket, request, timeout, ct).ConfigureAwait(false);
            return r.Ok ? (r, null) : (null, $"the agent of {node}: {r.Error}");
        }
        catch (Exception e) when ((e is IOException or System.Net.Sockets.SocketException or System.Text.Json.JsonException or OperationCanceledException)
                                  && !ct.IsCancellationRequested)
        {
            return (null, $"the agent of {node} does not answer at {socket}: {e.Message}");
        }
    }

    /// <summary>
    /// Starts a node's agent again (after it died or was killed), as systemd would restart it; the new agent
    /// adopts what the kernel has. Returns the new pid, also recorded in the lab state.
    /// </summary>
    internal static int RestartAgent(LabState state, string node)
    {
        ArgumentNullException.ThrowIfNull(state);
        var n = state.Node(node);
        if (n.AgentPid is { } old)
        {
            // A caller that has just killed it may see the exit still under way (a many-threaded process): give it 5 s.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (LabProcesses.IsAlive(old))
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new LabException($"the agent of {node} is still running (pid {old})");
                }

                Thread.Sleep(50);
            }
        }

        var pid = StartAgent(state, n);
        RecordAgent(state, node, pid);
        return pid;
    }

    /// <summary>Records a node's agent (pid and start time, so a reused pid is never taken for it) in the lab state.</summary>
    internal static void RecordAgent(LabState state, string node, int pid)
    {
        var started = LabProcesses.StartTime(pid);
        state.Change(c =>
        {
            var n = c.Node(node);
            n.AgentPid = pid;
            n.AgentStartTime = started;
        });
    }

    internal static int StartAgent(LabState state, LabNode node)
    {
        var dir = state.NodeDir(node.Name);
        var config = Path.Combine(dir, "agent.json");
        File.WriteAllText(config, AgentConfigJson(state, node));
        return LabProcesses.StartDetached(node.Netns, Path.Combine(dir, "agent.log"), state.LoomPath, ["agent", "--node", node.Name, "--config", config]);
    }

    internal static async Task<string> WaitPodCidrAsync(LabState state, LabNode node, DateTime deadline, CancellationToken cancellationToken)
    {
        var log = Path.Combine(state.NodeDir(node.Name), "agent.log");
        while (true)
        {
            if (node.AgentPid is { } pid && !LabProcesses.IsAlive(pid))
            {
                throw new LabException($"the agent on {node.Name} (pid {pid}) exited; {log}:\n{Lab.LogTail(log)}\n(run `loom lab down` to clean up)");
            }

            try
            {
                if ((await LabStore.ReadNodesAsync(state, cancellationToken).ConfigureAwait(false)).TryGetValue(node.Name, out var n) && n.PodCidrs.Count > 0)
                {
                    return string.Join(",", n.PodCidrs);
                }
            }
            catch (Exception e) when (LabStore.Unreachable(e))
            {
                // the store is busy or not reachable yet: try again
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new LabException($"the agent on {node.Name} claimed no pod CIDR in time; {log}:\n{Lab.LogTail(log)}\n(run `loom lab down` to clean up)");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    internal static async Task WaitReadyAsync(LabState state, DateTime deadline, TimeSpan timeout, Action<string> step, CancellationToken cancellationToken)
    {
        var pending = new HashSet<string>(state.Nodes.Select(n => n.Name), StringComparer.Ordinal);
        while (pending.Count > 0)
        {
            foreach (var node in state.Nodes.Where(n => pending.Contains(n.Name)))
            {
                if (node.AgentPid is { } pid && !LabProcesses.IsAlive(pid))
                {
                    var log = Path.Combine(state.NodeDir(node.Name), "agent.log");
                    throw new LabException($"the agent on {node.Name} (pid {pid}) exited before the node was Ready; {log}:\n{Lab.LogTail(log)}\n(run `loom lab down` to clean up)");
                }
            }

            IReadOnlyDictionary<string, Node> nodes;
            try
            {
                nodes = await LabStore.ReadNodesAsync(state, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (LabStore.Unreachable(e))
            {
                nodes = new Dictionary<string, Node>();
            }

            foreach (var name in pending.ToList())
            {
                // Ready, and a CNI config the runtime would pick (whichever network's it is).
                if (nodes.TryGetValue(name, out var n) && n.Ready && LabCniConfig.Find(state.CniConfDir(name)) is { } conf)
                {
                    pending.Remove(name);
                    step($"node {name} Ready: pod CIDR {string.Join(",", n.PodCidrs)}, VTEP {n.VtepMac}, {conf}");
                }
            }

            if (pending.Count == 0)
            {
                break;
            }

            if (DateTime.UtcNow > deadline)
            {
                var first = pending.Order(StringComparer.Ordinal).First();
                var log = Path.Combine(state.NodeDir(first), "agent.log");
                throw new LabException(string.Create(CultureInfo.InvariantCulture,
                    $"nodes not Ready after {timeout.TotalSeconds:F0} s: {string.Join(", ", pending)}; {log}:\n{Lab.LogTail(log)}\n(run `loom lab down` to clean up)"));
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }
    }
}
