using System.Diagnostics;
using System.Text.Json.Nodes;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>
/// Runs a CNI network configuration list the way a container runtime does: each plugin in order as a fresh process
/// (CNI_* environment, its config on stdin with name, cniVersion and the previous plugin's result injected), started
/// from a thread inside the node's namespace; DEL in reverse order.
/// </summary>
public sealed class CniChain
{
    private readonly JsonObject _list;

    public CniChain(string confListJson)
    {
        var parsed = JsonNode.Parse(confListJson) as JsonObject ?? throw new LabException("CNI config list is not a JSON object");
        // A single plugin's config (.conf, .json) runs as a list of one, as libcni's ConfListFromConf makes it.
        _list = parsed["plugins"] is null && parsed["type"] is not null
            ? new JsonObject { ["name"] = parsed["name"]?.DeepClone(), ["cniVersion"] = parsed["cniVersion"]?.DeepClone(), ["plugins"] = new JsonArray(parsed) }
            : parsed;
        if (_list["plugins"] is not JsonArray { Count: > 0 })
        {
            throw new LabException("CNI config list has no plugins");
        }
    }

    public string Name => _list["name"]?.GetValue<string>() ?? "";

    /// <summary>The list as it runs (a single plugin's config wrapped in one); kept with a pod so DEL runs what ADD ran.</summary>
    public string Json => _list.ToJsonString();

    public string CniVersion => _list["cniVersion"]?.GetValue<string>() ?? "1.0.0";

    public required string NodeNetns { get; init; }

    public required string CniPath { get; init; }

    public static CniChain Load(string file, string nodeNetns, string cniPath) =>
        new(File.ReadAllText(file)) { NodeNetns = nodeNetns, CniPath = cniPath };

    /// <summary>ADD through every plugin; returns the final result (JSON). On failure, DELs what was added.</summary>
    public string Add(string containerId, string podNetns, string ifName, string cniArgs, JsonObject? args = null)
    {
        JsonNode? prev = null;
        var plugins = Plugins();
        for (var i = 0; i < plugins.Count; i++)
        {
            try
            {
                prev = JsonNode.Parse(Exec(plugins[i], "ADD", containerId, podNetns, ifName, cniArgs, prev, args));
            }
            catch (LabException)
            {
                try
                {
                    Del(containerId, podNetns, ifName, cniArgs, null);
                }
                catch (LabException)
                {
                    // best effort: the ADD error is the one to report
                }

                throw;
            }
        }

        return prev?.ToJsonString() ?? "{}";
    }

    public void Del(string containerId, string podNetns, string ifName, string cniArgs, string? cachedResult)
    {
        var prev = cachedResult is null ? null : JsonNode.Parse(cachedResult);
        var plugins = Plugins();
        List<string> errors = [];
        for (var i = plugins.Count - 1; i >= 0; i--)
        {
            try
            {
                Exec(plugins[i], "DEL", containerId, podNetns, ifName, cniArgs, prev);
            }
            catch (LabException e)
            {
                errors.Add(e.Message);
            }
        }

        if (errors.Count > 0)
        {
            throw new LabException(string.Join("; ", errors));
        }
    }

    /// <summary>The first IPv4 address (CIDR notation) of a CNI result.</summary>
    public static string? FirstIp(string resultJson) =>
        (JsonNode.Parse(resultJson)?["ips"] as JsonArray)?.Select(ip => ip?["address"]?.GetValue<string>()).FirstOrDefault(a => a is not null && !a.Contains(':', StringComparison.Ordinal));

    private List<JsonObject> Plugins() => [.. ((JsonArray)_list["plugins"]!).OfType<JsonObject>()];

    /// <summary>The CNI "args" convention for labels: <c>{"cni": {"labels": [{"key": K, "value": V}, ...]}}</c>; null without labels.</summary>
    public static JsonObject? LabelArgs(IReadOnlyDictionary<string, string> labels) => PodArgs(labels, []);

    /// <summary>
    /// A pod's CNI "args": its labels as <see cref="LabelArgs"/> and its containers' ports as
    /// <c>"ports": [{"name": N, "containerPort": P, "protocol": "TCP"}, ...]</c> (what a NetworkPolicy's named port
    /// resolves to); null when it has neither.
    /// </summary>
    public static JsonObject? PodArgs(IReadOnlyDictionary<string, string> labels, IReadOnlyList<Core.Model.ContainerPort> ports)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(ports);
        if (labels.Count == 0 && ports.Count == 0)
        {
            return null;
        }

        var cni = new JsonObject();
        if (labels.Count > 0)
        {
            var list = new JsonArray();
            foreach (var (k, v) in labels.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                list.Add((JsonNode)new JsonObject { ["key"] = k, ["value"] = v });
            }

            cni["labels"] = list;
        }

        if (ports.Count > 0)
        {
            var list = new JsonArray();
            foreach (var p in ports)
            {
                var o = new JsonObject();
                if (p.Name is not null)
                {
                    o["name"] = p.Name;
                }

                o["containerPort"] = p.Port;
                o["protocol"] = p.Protocol == Core.Model.Protocol.Udp ? "UDP" : "TCP";
                list.Add((JsonNode)o);
            }

            cni["ports"] = list;
        }

        return new JsonObject { ["cni"] = cni };
    }

    private string Exec(JsonObject plugin, string command, string containerId, string podNetns, string ifName, string cniArgs, JsonNode? prev,
        JsonObject? args = null)
    {
        var type = plugin["type"]?.GetValue<string>() ?? throw new LabException("CNI plugin without \"type\"");
        var exe = CniPath.Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, type)).FirstOrDefault(File.Exists)
                  ?? throw new LabException($"CNI plugin '{type}' not found in {CniPath}");
        var conf = (JsonObject)plugin.DeepClone();
        conf["name"] = Name;
        conf["cniVersion"] = CniVersion;
        if (prev is not null)
        {
            conf["prevResult"] = prev.DeepClone();
        }

        if (args is not null)
        {
            conf["args"] = args.DeepClone();
        }

        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["CNI_COMMAND"] = command;
        psi.Environment["CNI_CONTAINERID"] = containerId;
        psi.Environment["CNI_NETNS"] = podNetns;
        psi.Environment["CNI_IFNAME"] = ifName;
        psi.Environment["CNI_ARGS"] = cniArgs;
        psi.Environment["CNI_PATH"] = CniPath;

        using var ns = NetNs.Open(NodeNetns);
        using var p = NetNs.Run(ns, () => Process.Start(psi) ?? throw new LabException($"cannot start {exe}"));
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(conf.ToJsonString());
        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new LabException($"{type} {command} did not finish in 60 s");
        }

        var output = stdout.GetAwaiter().GetResult();
        if (p.ExitCode != 0)
        {
            throw new LabException($"{type} {command} failed (exit {p.ExitCode}): {output.Trim()} {stderr.GetAwaiter().GetResult().Trim()}".Trim());
        }

        return output;
    }
}
