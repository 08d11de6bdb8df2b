using System.Buffers.Binary;
using System.Net;
using System.Text;
using System.Text.Json;
using Loom.Agent;
using Loom.Core.AgentApi;
using Loom.Core.Cni;
using Loom.Core.Networks;
using Loom.Core.Store;
using Loom.Lab;
using Loom.Linux;
using Loom.Linux.Interop;

namespace Loom.Fuzz;

/// <summary>One fuzz target: parses <paramref name="data"/>; throws only for a crash (an error the parser does not document).</summary>
public delegate void FuzzTarget(ReadOnlySpan<byte> data);

/// <summary>
/// The parsers that read input from outside the process. Each target catches the parser's documented error for bad
/// input (CniException, AgentConfigException, JsonException, the manifest loader's error list, LinuxException for a
/// malformed netlink reply); anything else escaping (IndexOutOfRange, ArgumentOutOfRange, NullReference, Overflow,
/// InvalidCast...) is a crash, and so is a hang.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Targets by name; the name is also the seed corpus directory (tests/Fuzz/corpus/NAME).</summary>
    public static IReadOnlyDictionary<string, FuzzTarget> All { get; } = new Dictionary<string, FuzzTarget>(StringComparer.Ordinal)
    {
        ["netconf"] = NetConf,
        ["cni-env"] = CniEnv,
        ["manifest"] = Manifest,
        ["agent-config"] = AgentConfigJson,
        ["cluster-config"] = ClusterConfigJson,
        ["cluster-file"] = ClusterFileYaml,
        ["agent-request"] = AgentRequestLine,
        ["netlink-dump"] = NetlinkDump,
    };

    /// <summary>A cluster file (<c>loom lab up --config</c>) and, the same bytes, a network file (<c>loom network apply -f</c>).</summary>
    public static void ClusterFileYaml(ReadOnlySpan<byte> data)
    {
        var text = Encoding.UTF8.GetString(data);
        try
        {
            _ = ClusterFileParser.Parse(text);
        }
        catch (ClusterFileException)
        {
        }

        try
        {
            _ = ClusterFileParser.ParseNetworks(text);
        }
        catch (ClusterFileException)
        {
        }
    }

    /// <summary>The CNI network configuration on a plugin's stdin.</summary>
    public static void NetConf(ReadOnlySpan<byte> data)
    {
        try
        {
            _ = CniVersions.TryPeekConfigVersion(data); // what the plugin reads first, for its error's version
            _ = NetConfParser.Parse(data);
        }
        catch (CniException)
        {
        }
    }

    /// <summary>CNI_* variables, one NAME=VALUE per line (CNI_ARGS included).</summary>
    public static void CniEnv(ReadOnlySpan<byte> data)
    {
        var vars = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in Encoding.UTF8.GetString(data).Split('\n'))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                vars[line[..eq]] = line[(eq + 1)..];
            }
        }

        try
        {
            _ = CniEnvironment.Parse(vars.GetValueOrDefault, ["K8S_POD_UID"]);
        }
        catch (CniException)
        {
        }
    }

    /// <summary>Kubernetes YAML as <c>loom lab apply</c> reads it: every problem belongs in the result's error list.</summary>
    public static void Manifest(ReadOnlySpan<byte> data) => _ = Manifests.Parse(Encoding.UTF8.GetString(data));

    /// <summary>The agent's configuration file (<c>loom agent --config</c>).</summary>
    public static void AgentConfigJson(ReadOnlySpan<byte> data)
    {
        try
        {
            _ = AgentConfig.Parse(data, "fuzz");
        }
        catch (AgentConfigException)
        {
        }
    }

    /// <summary>The cluster configuration document as the agents read it from the store.</summary>
    public static void ClusterConfigJson(ReadOnlySpan<byte> data)
    {
        try
        {
            _ = JsonSerializer.Deserialize(data, Kinds.ClusterConfig.TypeInfo);
        }
        catch (JsonException)
        {
        }
    }

    /// <summary>
    /// One request line on the agent's socket. What the decoder lets through must hold what the handlers assume:
    /// every IP parses, the container id is there.
    /// </summary>
    public static void AgentRequestLine(ReadOnlySpan<byte> data)
    {
        AgentRequest? request;
        try
        {
            request = AgentRequest.Decode(Encoding.UTF8.GetString(data));
        }
        catch (JsonException)
        {
            return;
        }

        if (request?.Endpoint is { } ep)
        {
            _ = ep.Ips.Select(IPAddress.Parse).ToList();
            _ = ep.ContainerId[..Math.Min(12, ep.ContainerId.Length)] + ep.Namespace.Length + ep.Name.Length + ep.Interface.Length;
        }
    }

    /// <summary>
    /// One datagram of a dump reply from NETLINK_ROUTE: split into messages (those answering the first message's
    /// sequence number), each taken as the dump loop takes it, and the data messages parsed by type.
    /// </summary>
    public static void NetlinkDump(ReadOnlySpan<byte> data)
    {
        var seq = data.Length >= 12 ? BinaryPrimitives.ReadUInt32LittleEndian(data[8..]) : 0;
        foreach (var m in NetlinkSocket.Split(data, seq))
        {
            try
            {
                var result = new List<NlMessage>();
                _ = NetlinkSocket.CollectDump(m, result, Rtm.GETLINK, "fuzz");
                foreach (var r in result)
                {
                    _ = r.Type switch
                    {
                        Rtm.NEWLINK => RtNetlink.ParseLink(r.Payload),
                        Rtm.NEWROUTE => RtNetlink.ParseRoute(r.Payload),
                        Rtm.NEWADDR => RtNetlink.ParseAddr(r.Payload),
                        Rtm.NEWNEIGH => RtNetlink.ParseNeigh(r.Payload),
                        _ => (object?)null,
                    };
                }
            }
            catch (LinuxException)
            {
            }
            catch (NetlinkException)
            {
            }
        }
    }
}
