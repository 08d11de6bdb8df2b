using System.Globalization;
using Loom.Core.Model;
using Loom.Core.Validation;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Loom.Core.Networks;

/// <summary>
/// Reads cluster files and network files (YAML) strictly: unknown keys, wrong types and every validation error are
/// refused together, each with its line, column and key, and nothing is returned unless the whole file is valid.
/// </summary>
public static class ClusterFileParser
{
    private static readonly Dictionary<string, Plumbing> Plumbings = new(StringComparer.Ordinal) { ["bridge"] = Plumbing.Bridge, ["routed"] = Plumbing.Routed };

    private static readonly Dictionary<string, RoutingMode> RoutingModes = new(StringComparer.Ordinal) { ["tunnel"] = RoutingMode.Tunnel, ["native"] = RoutingMode.Native };

    private static readonly Dictionary<string, HostRouting> HostRoutings = new(StringComparer.Ordinal) { ["legacy"] = HostRouting.Legacy, ["bpf"] = HostRouting.Bpf };

    private static readonly Dictionary<string, Masquerade> Masquerades = new(StringComparer.Ordinal)
    {
        ["iptables"] = Masquerade.Iptables, ["bpf"] = Masquerade.Bpf, ["none"] = Masquerade.None,
    };

    private static readonly Dictionary<string, TunnelProtocol> Protocols = new(StringComparer.Ordinal) { ["vxlan"] = TunnelProtocol.Vxlan };

    private static readonly Dictionary<string, ServiceProxyMode> Backends = new(StringComparer.Ordinal)
    {
        ["iptables"] = ServiceProxyMode.Iptables, ["nftables"] = ServiceProxyMode.Nftables, ["ebpf"] = ServiceProxyMode.Ebpf,
    };

    private static readonly Dictionary<string, PolicyEnforcementMode> PolicyModes = new(StringComparer.Ordinal)
    {
        ["default"] = PolicyEnforcementMode.Default, ["always"] = PolicyEnforcementMode.Always, ["never"] = PolicyEnforcementMode.Never,
    };

    /// <summary>A cluster file: <c>networks</c>, <c>defaultNetwork</c>, <c>serviceBackend</c>, <c>policyEnforcementMode</c>, <c>podCidrGraceSeconds</c>.</summary>
    public static ClusterFile Parse(string yaml)
    {
        var errors = new YamlErrors();
        var docs = Load(yaml);
        if (docs.Count != 1 || docs[0] is not YamlMappingNode root)
        {
            throw new ClusterFileException("a cluster file is one YAML mapping (networks:, defaultNetwork:, serviceBackend:, policyEnforcementMode:)");
        }

        var m = new YamlFields(root, "", errors);
        var networks = new List<Network>();
        var complete = true;
        if (m.Seq("networks") is { } seq)
        {
            for (var i = 0; i < seq.Count; i++)
            {
                var path = string.Create(CultureInfo.InvariantCulture, $"networks[{i}]");
                if (seq[i] is YamlMappingNode item && ReadNetwork(new YamlFields(item, path, errors)) is { } n)
                {
                    networks.Add(n);
                }
                else
                {
                    if (seq[i] is not YamlMappingNode)
                    {
                        errors.Add(new FieldError(path, FieldErrorType.Invalid, null, "must be a mapping (a network)"), seq[i].Start);
                    }

                    complete = false;
                }
            }
        }
        else
        {
            m.Required("networks", "a cluster has at least one network");
        }

        var defaultNetwork = m.Str("defaultNetwork");
        if (defaultNetwork is null && networks.Count == 1)
        {
            defaultNetwork = networks[0].Name;
        }

        var settings = new ClusterConfig
        {
            DefaultNetwork = defaultNetwork ?? "",
            ServiceBackend = m.Enum("serviceBackend", Backends) ?? ServiceProxyMode.Iptables,
            PolicyEnforcementMode = m.Enum("policyEnforcementMode", PolicyModes) ?? PolicyEnforcementMode.Default,
            PodCidrGraceSeconds = m.Int("podCidrGraceSeconds") ?? new ClusterConfig().PodCidrGraceSeconds,
        };
        m.Done();

        // With a network unreadable the indexes of the rest no longer match the file's, so set checks wait for a clean read.
        if (complete && errors.Count == 0)
        {
            foreach (var e in ClusterValidation.Validate(settings, networks))
            {
                errors.Add(e);
            }
        }

        errors.ThrowIfAny();
        var primary = networks.Single(n => n.Name == settings.DefaultNetwork);
        return new ClusterFile(networks, ClusterFile.WithDefaultNetwork(settings, primary));
    }

    /// <summary>A network file (<c>loom network apply -f</c>): one network per YAML document, each valid on its own.</summary>
    public static IReadOnlyList<Network> ParseNetworks(string yaml)
    {
        var docs = Load(yaml);
        if (docs.Count == 0)
        {
            throw new ClusterFileException("no network in the file");
        }

        var networks = new List<Network>();
        var rendered = new List<string>();
        foreach (var doc in docs)
        {
            // One error list per document: each has the same field paths, at its own positions.
            var errors = new YamlErrors();
            if (doc is not YamlMappingNode root)
            {
                errors.Add(new FieldError("", FieldErrorType.Invalid, null, "a network file holds one mapping (a network) per document"), doc.Start);
            }
            else if (ReadNetwork(new YamlFields(root, "", errors)) is { } n && errors.Count == 0)
            {
                foreach (var e in NetworkValidation.Validate(n))
                {
                    errors.Add(e);
                }

                if (networks.Any(o => o.Name == n.Name))
                {
                    errors.Add(FieldError.Duplicate("name", n.Name));
                }

                networks.Add(n);
            }

            rendered.AddRange(errors.Rendered());
        }

        return rendered.Count > 0 ? throw new ClusterFileException(rendered) : networks;
    }

    private static List<YamlNode> Load(string yaml)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ClusterFileException(string.Create(CultureInfo.InvariantCulture, $"line {e.Start.Line}, column {e.Start.Column}: {e.Message}"), e);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // YamlDotNet reports some malformed input (a duplicate key among them) with these instead of a YamlException.
            throw new ClusterFileException("YAML: " + e.Message, e);
        }

        return [.. stream.Documents.Select(d => d.RootNode).Where(r => r is not YamlScalarNode { Value: null or "" })];
    }

    private static Network? ReadNetwork(YamlFields m)
    {
        var name = m.Str("name");
        var podCidr = m.Cidr("podCIDR");
        var routing = m.Enum("routingMode", RoutingModes) ?? RoutingMode.Tunnel;
        TunnelConfig? tunnel = routing == RoutingMode.Tunnel ? new TunnelConfig() : null;
        if (m.Map("tunnel") is { } t)
        {
            // Read even for a native network, so the validator can say a tunnel there is forbidden.
            var d = new TunnelConfig();
            tunnel = new TunnelConfig
            {
                Protocol = t.Enum("protocol", Protocols) ?? d.Protocol,
                Port = t.Int("port") ?? d.Port,
                Vni = t.Int("vni") ?? d.Vni,
                Device = t.Str("device") ?? d.Device,
            };
            t.Done();
        }

        var network = new Network
        {
            Name = name ?? "",
            PodCidr = podCidr ?? default,
            NodeMaskSize = m.Int("nodeMaskSize") ?? 24,
            Plumbing = m.Enum("plumbing", Plumbings) ?? Plumbing.Bridge,
            RoutingMode = routing,
            Tunnel = tunnel,
            AutoDirectNodeRoutes = m.Bool("autoDirectNodeRoutes") ?? false,
            NativeRoutingCidr = m.Cidr("nativeRoutingCIDR"),
            HostRouting = m.Enum("hostRouting", HostRoutings) ?? HostRouting.Legacy,
            Masquerade = m.Enum("masquerade", Masquerades) ?? Masquerade.Iptables,
        };
        m.Done();
        return network;
    }
}
