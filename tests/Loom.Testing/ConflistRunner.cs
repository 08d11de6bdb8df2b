using System.Text.Json;
using System.Text.Json.Nodes;
using Loom.Linux;

namespace Loom.Testing;

/// <summary>One plugin execution inside a chain, with the exact config it was given on stdin.</summary>
public sealed record ChainStep(string Type, string Command, string Config, CniRun Run);

/// <summary>The outcome of running a whole list: every step, and the list's final result (ADD only).</summary>
public sealed record ChainRun(IReadOnlyList<ChainStep> Steps, string? Result)
{
    /// <summary>True when every plugin that ran exited 0 (a failing plugin stops the chain).</summary>
    public bool Ok => Steps.All(s => s.Run.Ok);

    public ChainStep? Failed => Steps.FirstOrDefault(s => !s.Run.Ok);

    public override string ToString() =>
        string.Join("\n---\n", Steps.Select(s => $"{s.Command} {s.Type}\nconfig: {s.Config}\n{s.Run}"));
}

/// <summary>
/// Executes a network configuration list (<c>*.conflist</c>) the way libcni does (libcni/api.go):
/// <list type="bullet">
/// <item>ADD runs the plugins in order; each gets the list's <c>name</c> and <c>cniVersion</c>, the previous plugin's
/// result as <c>prevResult</c> (none for the first), and a <c>runtimeConfig</c> holding only the runtime values whose
/// key the plugin declares <c>true</c> in its <c>capabilities</c>. The last result is cached per (container, ifname).</item>
/// <item>CHECK runs the plugins in order, each with the cached final ADD result as <c>prevResult</c>.</item>
/// <item>DEL runs the plugins in reverse order, each with the cached final ADD result as <c>prevResult</c>
/// (omitted when nothing is cached), and drops the cache entry when the whole list succeeded.</item>
/// </list>
/// Every plugin runs through <see cref="CniRunner.Exec"/>, i.e. as a fresh process spawned inside the node namespace,
/// found on CNI_PATH (default: out/bin, then /usr/lib/cni).
/// </summary>
public sealed class ConflistRunner
{
    private readonly NetNsHandle _node;
    private readonly JsonObject _list;
    private readonly string[] _path;
    private readonly Dictionary<(string, string), string> _cache = [];

    public ConflistRunner(NetNsHandle node, string conflist, string? cniPath = null)
    {
        _node = node;
        _list = JsonNode.Parse(conflist)?.AsObject() ?? throw new ArgumentException("conflist is not a JSON object", nameof(conflist));
        CniPath = cniPath ?? $"{CniRunner.BinDir}:{CniRunner.ReferenceDir}";
        _path = CniPath.Split(':', StringSplitOptions.RemoveEmptyEntries);
        if (Plugins.Count == 0)
        {
            throw new ArgumentException("conflist has no plugins", nameof(conflist));
        }
    }

    public string CniPath { get; }

    public string Name => (string?)_list["name"] ?? throw new InvalidOperationException("conflist has no name");

    public string CniVersion => (string?)_list["cniVersion"] ?? throw new InvalidOperationException("conflist has no cniVersion");

    private JsonArray Plugins => _list["plugins"]?.AsArray() ?? [];

    /// <summary>The cached final ADD result of an attachment (what a runtime keeps in /var/lib/cni/results).</summary>
    public string? CachedResult(string containerId, string ifName = "eth0") =>
        _cache.TryGetValue((containerId, ifName), out var r) ? r : null;

    public ChainRun Add(string containerId, string netns, string ifName = "eth0", JsonObject? runtimeConfig = null, string? cniArgs = null)
    {
        var steps = new List<ChainStep>();
        string? prev = null;
        foreach (var plugin in Plugins)
        {
            var step = Exec("ADD", plugin!.AsObject(), prev, runtimeConfig, containerId, netns, ifName, cniArgs);
            steps.Add(step);
            if (!step.Run.Ok)
            {
                return new ChainRun(steps, null);
            }

            prev = step.Run.Stdout;
        }

        _cache[(containerId, ifName)] = prev!;
        return new ChainRun(steps, prev);
    }

    public ChainRun Check(string containerId, string netns, string ifName = "eth0", JsonObject? runtimeConfig = null, string? cniArgs = null)
    {
        var cached = CachedResult(containerId, ifName)
            ?? throw new InvalidOperationException($"no cached ADD result for {containerId}/{ifName}: libcni refuses CHECK then");
        var steps = new List<ChainStep>();
        foreach (var plugin in Plugins)
        {
            var step = Exec("CHECK", plugin!.AsObject(), cached, runtimeConfig, containerId, netns, ifName, cniArgs);
            steps.Add(step);
            if (!step.Run.Ok)
            {
                break;
            }
        }

        return new ChainRun(steps, null);
    }

    /// <summary>CHECK of the single plugin at <paramref name="index"/> (e.g. to go on past a plugin whose CHECK is known broken).</summary>
    public ChainStep CheckOne(int index, string containerId, string netns, string ifName = "eth0", JsonObject? runtimeConfig = null, string? cniArgs = null)
    {
        var cached = CachedResult(containerId, ifName)
            ?? throw new InvalidOperationException($"no cached ADD result for {containerId}/{ifName}: libcni refuses CHECK then");
        return Exec("CHECK", Plugins[index]!.AsObject(), cached, runtimeConfig, containerId, netns, ifName, cniArgs);
    }

    public ChainRun Del(string containerId, string? netns, string ifName = "eth0", JsonObject? runtimeConfig = null, string? cniArgs = null)
    {
        var cached = CachedResult(containerId, ifName);
        var steps = new List<ChainStep>();
        foreach (var plugin in Plugins.Reverse())
        {
            var step = Exec("DEL", plugin!.AsObject(), cached, runtimeConfig, containerId, netns, ifName, cniArgs);
            steps.Add(step);
            if (!step.Run.Ok)
            {
                return new ChainRun(steps, null);
            }
        }

        _cache.Remove((containerId, ifName));
        return new ChainRun(steps, null);
    }

    /// <summary>The stdin config of one plugin, built as libcni's buildOneConfig does.</summary>
    public string PluginConfig(JsonObject plugin, string? prevResult, JsonObject? runtimeConfig)
    {
        var conf = plugin.DeepClone().AsObject();
        conf["name"] = Name;
        conf["cniVersion"] = CniVersion;
        if (prevResult is not null)
        {
            conf["prevResult"] = JsonNode.Parse(prevResult);
        }

        var rc = new JsonObject();
        if (plugin["capabilities"] is JsonObject caps && runtimeConfig is not null)
        {
            foreach (var (key, enabled) in caps)
            {
                if (enabled?.GetValueKind() == JsonValueKind.True && runtimeConfig[key] is { } value)
                {
                    rc[key] = value.DeepClone();
                }
            }
        }

        if (rc.Count > 0)
        {
            conf["runtimeConfig"] = rc;
        }

        return conf.ToJsonString();
    }

    private ChainStep Exec(string command, JsonObject plugin, string? prev, JsonObject? runtimeConfig, string containerId, string? netns, string ifName, string? cniArgs)
    {
        var type = (string?)plugin["type"] ?? throw new InvalidOperationException("a plugin in the conflist has no type");
        var config = PluginConfig(plugin, prev, runtimeConfig);
        var run = CniRunner.Exec(_node, FindPlugin(type), command, config, containerId, netns, ifName, cniArgs, CniPath);
        return new ChainStep(type, command, config, run);
    }

    private string FindPlugin(string type) =>
        _path.Select(d => Path.Combine(d, type)).FirstOrDefault(File.Exists)
        ?? throw new FileNotFoundException($"plugin {type} is not on CNI_PATH {CniPath} (out/bin needs `make build`; /usr/lib/cni needs `make deps`)");
}
