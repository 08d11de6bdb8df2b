using System.Text.Json;
using Loom.Core.AgentApi;
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

    public static async Task AddAsync(string socket, CniEnvironment env, CniResult result, NetConf conf)
    {
        var request = new AgentRequest
        {
            Op = "endpoint-add",
            Endpoint = new EndpointRegistration
            {
                Namespace = env.Args.K8sPodNamespace ?? "default",
                Name = env.Args.K8sPodName ?? "",
                ContainerId = env.ContainerId!,
                Interface = env.IfName!,
                Ips = result.Ips.Select(i => i.Address.Address.ToString()).ToList(),
                Labels = Labels(conf),
                Ports = Ports(conf),
            },
        };
        AgentResponse response;
        try
        {
            response = await AgentClient.SendAsync(socket, request, Timeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            throw new CniException(CniErrorCodes.TryAgainLater, $"the loom agent at {socket} is not reachable", e.Message, e);
        }

        if (!response.Ok)
        {
            // The reason in the message too: "the store is unreachable ..." is what the runtime's log should show.
            throw new CniException(CniErrorCodes.TryAgainLater, $"the loom agent refused the endpoint: {response.Error}", response.Error);
        }
    }

    /// <summary>Tells the agent the attachment is gone; true once the agent confirms its Endpoint is removed.</summary>
    public static async Task<bool> DelAsync(string socket, CniEnvironment env)
    {
        try
        {
            var response = await AgentClient.SendAsync(socket, new AgentRequest
            {
                Op = "endpoint-del",
                Endpoint = new EndpointRegistration { ContainerId = env.ContainerId!, Interface = env.IfName! },
            }, Timeout).ConfigureAwait(false);
            if (!response.Ok)
            {
                await Console.Error.WriteLineAsync($"loom-cni: the agent did not remove the endpoint ({response.Error}); it reconciles endpoints itself").ConfigureAwait(false);
            }

            return response.Ok;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or System.Text.Json.JsonException)
        {
            await Console.Error.WriteLineAsync($"loom-cni: agent not told of DEL ({e.Message}); it reconciles endpoints itself").ConfigureAwait(false);
            return false;
        }
    }

    // {"args": {"cni": {"ports": [{"name": "serve-80-tcp", "containerPort": 80, "protocol": "TCP"}]}}}: the pod's container
    // ports, passed on as given (the agent validates them); an entry of the wrong shape fails ADD naming it.
    private static List<EndpointPortRegistration> Ports(NetConf conf)
    {
        var ports = new List<EndpointPortRegistration>();
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

            ports.Add(new EndpointPortRegistration
            {
                Name = p.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null,
                ContainerPort = number,
                Protocol = p.TryGetProperty("protocol", out var pr) && pr.ValueKind == JsonValueKind.String ? pr.GetString() : null,
            });
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
