using System.Text.Json;
using Loom.Core.Cni;

namespace Loom.Cni;

/// <summary>
/// Tells the node agent about an attachment (<c>"agentSocket"</c> in the config), as Cilium's plugin does: the
/// agent's view of endpoints is what Services and policy are later programmed from. ADD fails (and is rolled
/// back) when the agent cannot be told; DEL tells it best-effort, since DEL must succeed without an agent.
/// </summary>
internal static class AgentRegistration
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public static string? SocketOf(NetConf conf) =>
        conf.Root.TryGetProperty("agentSocket", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;

    public static Task AddAsync(string socket, CniEnvironment env, CniResult result, NetConf conf)
    {
        var labels = Labels(conf);
        var ports = Ports(conf);
        AgentWire.Reply response;
        try
        {
            response = AgentWire.Send(socket, w =>
            {
                w.WriteStartObject();
                w.WriteString("op", "endpoint-add");
                w.WriteStartObject("endpoint");
                w.WriteString("namespace", env.Args.K8sPodNamespace ?? "default");
                w.WriteString("name", env.Args.K8sPodName ?? "");
                w.WriteString("containerId", env.ContainerId!);
                w.WriteString("interface", env.IfName!);
                w.WriteStartArray("ips");
                foreach (var ip in result.Ips)
                {
                    w.WriteStringValue(ip.Address.Address.ToString());
                }

                w.WriteEndArray();
                w.WriteStartObject("labels");
                foreach (var (k, v) in labels)
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
                w.WriteStartArray("ports");
                foreach (var p in ports)
                {
                    w.WriteStartObject();
                    if (p.Name is not null)
                    {
                        w.WriteString("name", p.Name);
                    }

                    w.WriteNumber("containerPort", p.ContainerPort);
                    if (p.Protocol is not null)
                    {
                        w.WriteString("protocol", p.Protocol);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }, Timeout);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or JsonException)
        {
            throw new CniException(CniErrorCodes.TryAgainLater, $"the loom agent at {socket} is not reachable", e.Message, e);
        }

        if (!response.Ok)
        {
            // The reason in the message too: "the store is unreachable ..." is what the runtime's log should show.
            throw new CniException(CniErrorCodes.TryAgainLater, $"the loom agent refused the endpoint: {response.Error}", response.Error);
        }

        return Task.CompletedTask;
    }

    /// <summary>Tells the agent the attachment is gone; true once the agent confirms its Endpoint is removed.</summary>
    public static async Task<bool> DelAsync(string socket, CniEnvironment env)
    {
        try
        {
            var response = AgentWire.Send(socket, w =>
            {
                w.WriteStartObject();
                w.WriteString("op", "endpoint-del");
                w.WriteStartObject("endpoint");
                w.WriteString("containerId", env.ContainerId!);
                w.WriteString("interface", env.IfName!);
                w.WriteEndObject();
                w.WriteEndObject();
            }, Timeout);
            if (!response.Ok)
            {
                await Console.Error.WriteLineAsync($"loom-cni: the agent did not remove the endpoint ({response.Error}); it reconciles endpoints itself").ConfigureAwait(false);
            }

            return response.Ok;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or JsonException)
        {
            await Console.Error.WriteLineAsync($"loom-cni: agent not told of DEL ({e.Message}); it reconciles endpoints itself").ConfigureAwait(false);
            return false;
        }
    }

    // {"args": {"cni": {"ports": [{"name": "serve-80-tcp", "containerPort": 80, "protocol": "TCP"}]}}}: the pod's container
    // ports, passed on as given (the agent validates them); an entry of the wrong shape fails ADD naming it.
    private static List<(string? Name, int ContainerPort, string? Protocol)> Ports(NetConf conf)
    {
        var ports = new List<(string? Name, int ContainerPort, string? Protocol)>();
        if (!(conf.Root.TryGetProperty("args", out var args) && args.ValueKind == JsonValueKind.Object
              && args.TryGetProperty("cni", out var cni) && cni.ValueKind == JsonValueKind.Object
              && cni.TryGetProperty("ports", out var list)))
        {
            return ports;
        }

        if (list.ValueKind != JsonValueKind.Array)
        {
            throw new CniException(CniErrorCodes.InvalidNetworkConfig, "args.cni.ports must be a list");
        }

        var i = 0;
        foreach (var p in list.EnumerateArray())
        {
            var where = $"args.cni.ports[{i++}]";
            if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("containerPort", out var port) || !port.TryGetInt32(out var number))
            {
                throw new CniException(CniErrorCodes.InvalidNetworkConfig, $"{where}: must be an object with an integer containerPort");
            }

            ports.Add((
                p.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null,
                number,
                p.TryGetProperty("protocol", out var pr) && pr.ValueKind == JsonValueKind.String ? pr.GetString() : null));
        }

        return ports;
    }

    // The CNI "args" convention: {"args": {"cni": {"labels": [{"key": "app", "value": "webpod"}]}}}.
    private static Dictionary<string, string> Labels(NetConf conf)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (conf.Root.TryGetProperty("args", out var args) && args.ValueKind == JsonValueKind.Object
            && args.TryGetProperty("cni", out var cni) && cni.ValueKind == JsonValueKind.Object
            && cni.TryGetProperty("labels", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var l in list.EnumerateArray())
            {
                if (l.ValueKind == JsonValueKind.Object && l.TryGetProperty("key", out var k) && l.TryGetProperty("value", out var v)
                    && k.ValueKind == JsonValueKind.String && v.ValueKind == JsonValueKind.String)
                {
                    labels[k.GetString()!] = v.GetString()!;
                }
            }
        }

        return labels;
    }
}
