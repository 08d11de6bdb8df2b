using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Validation;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Loom.Lab;

/// <summary>The parts of a manifest the NetworkPolicy e2e model needs: a pod's containers with their ports, and NetworkPolicy.</summary>
public static partial class Manifests
{
    private sealed partial class Reader
    {
        // One container: name, image, command/args, ports; what it runs must be an image the lab can run.
        private LabContainer? Container(Fields c, List<LabContainer> before)
        {
            var cp = c.Path.TrimEnd('.');
            var name = c.Str("name", required: true);
            var image = c.Str("image", required: true) ?? "";
            var command = c.StringList("command");
            var args = c.StringList("args");
            var errs = new List<FieldError>();
            var ports = new List<ContainerPort>();
            if (c.Seq("ports") is { } seq)
            {
                for (var j = 0; j < seq.Count; j++)
                {
                    var pp = string.Create(CultureInfo.InvariantCulture, $"{c.Path}ports[{j}]");
                    if (seq[j] is not YamlMappingNode pm)
                    {
                        Error(pp, "must be a mapping");
                        continue;
                    }

                    var f = new Fields(this, pm, pp);
                    var portName = f.Str("name");
                    var number = f.Int("containerPort", required: true);
                    var protocol = ServiceValidation.Protocol(errs, f.Str("protocol"), pp + ".protocol");
                    f.Done();
                    if (portName is { Length: > 0 })
                    {
                        errs.AddRange(NameValidation.IsValidPortName(portName).Select(m => FieldError.Invalid(pp + ".name", portName, m)));
                    }

                    if (number is { } n)
                    {
                        errs.AddRange(NameValidation.IsValidPortNum(n).Select(m => FieldError.Invalid(pp + ".containerPort", n, m)));
                        if (protocol is { } pr)
                        {
                            ports.Add(new ContainerPort(portName is { Length: > 0 } ? portName : null, n, pr));
                        }
                    }
                }
            }

            c.Accept("imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy", "securityContext");
            c.Done();
            if (name is not null)
            {
                errs.AddRange(NameValidation.IsDns1123Label(name).Select(m => FieldError.Invalid(cp + ".name", name, m)));
                if (before.Any(x => x.Name == name))
                {
                    errs.Add(FieldError.Duplicate(cp + ".name", name));
                }
            }

            Errors(errs);
            var kind = image.Length > 0 ? LabImages.Classify(image, command, args) : LabImages.Kind.Unknown;
            if (image.Length > 0 && kind == LabImages.Kind.Unknown)
            {
                Error(cp + ".image", $"Unsupported value: {FieldError.Quote(image)}: the lab runs {LabImages.Whoami} (a built-in whoami server), {LabImages.Dns} "
                    + $"(the cluster DNS), {LabImages.Agnhost} serve-hostname or pause, and any image whose command is sleep (an idle pod using the machine's tools)");
            }
            else if (kind == LabImages.Kind.Agnhost && LabImages.AgnhostArgs(command, args) is ["serve-hostname", ..] agn)
            {
                try
                {
                    _ = Workloads.Agnhost.ParseServeHostname([.. agn.Skip(1)]);
                }
                catch (ArgumentException e)
                {
                    Error(cp + (args.Count > 0 ? ".args" : ".command"), "Invalid value: agnhost serve-hostname: " + e.Message);
                }
            }

            return name is null ? null : new LabContainer { Name = name, Image = image, Command = command, Args = args, Ports = ports };
        }

        // As the API server: a port name is unique across the pod's containers (a NetworkPolicy's named port resolves by it).
        private void ContainerPortNames(List<LabContainer> containers, string specPath)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < containers.Count; i++)
            {
                for (var j = 0; j < containers[i].Ports.Count; j++)
                {
                    if (containers[i].Ports[j].Name is { } n && !seen.Add(n))
                    {
                        Error(string.Create(CultureInfo.InvariantCulture, $"{specPath}containers[{i}].ports[{j}].name"), $"Duplicate value: {FieldError.Quote(n)}");
                    }
                }
            }
        }

        // networking.k8s.io/v1 NetworkPolicy: every field of the model, read by path; a wrong shape is an error naming it.
        private NetworkPolicyManifest? NetworkPolicy(Fields? spec, string ns, string? name)
        {
            var before = ErrorCount;
            var policy = new NetworkPolicy { Namespace = ns, Name = name ?? "" };
            if (spec is not null)
            {
                if (spec.Map("podSelector") is { } ps)
                {
                    policy.PodSelector = Selector(ps) ?? new();
                }

                if (spec.Seq("policyTypes") is { } types)
                {
                    var list = new List<PolicyType>();
                    for (var i = 0; i < types.Count; i++)
                    {
                        var tp = string.Create(CultureInfo.InvariantCulture, $"spec.policyTypes[{i}]");
                        switch ((types[i] as YamlScalarNode)?.Value)
                        {
                            case "Ingress":
                                list.Add(PolicyType.Ingress);
                                break;
                            case "Egress":
                                list.Add(PolicyType.Egress);
                                break;
                            case { } other:
                                Error(tp, $"Unsupported value: {FieldError.Quote(other)}: supported values: \"Egress\", \"Ingress\"");
                                break;
                            default:
                                Error(tp, "must be a string");
                                break;
                        }
                    }

                    policy.PolicyTypes = list;
                }

                policy.Ingress = Rules(spec, "ingress", "from", (peers, ports) => new NetworkPolicyIngressRule { From = peers, Ports = ports });
                policy.Egress = Rules(spec, "egress", "to", (peers, ports) => new NetworkPolicyEgressRule { To = peers, Ports = ports });
                spec.Done();
            }

            if (ErrorCount == before)
            {
                Errors(ValidatePolicy(policy));
            }

            return name is null || ErrorCount != before ? null : new NetworkPolicyManifest(ns, name, policy);
        }

        // As the API server: selectors, peers, ipBlock excepts, ports and endPort, protocols.
        private static IReadOnlyList<FieldError> ValidatePolicy(NetworkPolicy policy) => Loom.Core.Validation.PolicyValidation.Validate(policy);

        private List<T> Rules<T>(Fields spec, string key, string peersKey, Func<List<NetworkPolicyPeer>, List<NetworkPolicyPort>, T> make)
        {
            var rules = new List<T>();
            if (spec.Seq(key) is not { } seq)
            {
                return rules;
            }

            for (var i = 0; i < seq.Count; i++)
            {
                var rp = string.Create(CultureInfo.InvariantCulture, $"spec.{key}[{i}]");
                if (seq[i] is not YamlMappingNode rm)
                {
                    Error(rp, "must be a mapping");
                    continue;
                }

                var r = new Fields(this, rm, rp);
                var peers = Peers(r, peersKey);
                var ports = Ports(r);
                r.Done();
                rules.Add(make(peers, ports));
            }

            return rules;
        }

        private List<NetworkPolicyPeer> Peers(Fields rule, string key)
        {
            var peers = new List<NetworkPolicyPeer>();
            if (rule.Seq(key) is not { } seq)
            {
                return peers;
            }

            for (var i = 0; i < seq.Count; i++)
            {
                var pp = string.Create(CultureInfo.InvariantCulture, $"{rule.Path}{key}[{i}]");
                if (seq[i] is not YamlMappingNode pm)
                {
                    Error(pp, "must be a mapping");
                    continue;
                }

                var f = new Fields(this, pm, pp);
                var peer = new NetworkPolicyPeer
                {
                    PodSelector = f.Map("podSelector") is { } ps ? Selector(ps) : null,
                    NamespaceSelector = f.Map("namespaceSelector") is { } ns ? Selector(ns) : null,
                    IPBlock = f.Map("ipBlock") is { } ib ? IPBlock(ib) : null,
                };
                f.Done();
                peers.Add(peer);
            }

            return peers;
        }

        private IPBlock? IPBlock(Fields b)
        {
            var cidr = b.Str("cidr", required: true);
            var except = b.StringList("except");
            b.Done();
            if (cidr is not null && !IPNetwork.TryParse(cidr, out _))
            {
                Error(b.Path + "cidr", $"Invalid value: {FieldError.Quote(cidr)}: must be a valid CIDR (e.g. 10.0.0.0/8)");
            }

            for (var i = 0; i < except.Count; i++)
            {
                if (!IPNetwork.TryParse(except[i], out _))
                {
                    Error(string.Create(CultureInfo.InvariantCulture, $"{b.Path}except[{i}]"), $"Invalid value: {FieldError.Quote(except[i])}: must be a valid CIDR");
                }
            }

            return cidr is null ? null : new IPBlock { Cidr = cidr, Except = except };
        }

        private List<NetworkPolicyPort> Ports(Fields rule)
        {
            var ports = new List<NetworkPolicyPort>();
            if (rule.Seq("ports") is not { } seq)
            {
                return ports;
            }

            for (var i = 0; i < seq.Count; i++)
            {
                var pp = string.Create(CultureInfo.InvariantCulture, $"{rule.Path}ports[{i}]");
                if (seq[i] is not YamlMappingNode pm)
                {
                    Error(pp, "must be a mapping");
                    continue;
                }

                var f = new Fields(this, pm, pp);
                var errs = new List<FieldError>();
                var protocol = ServiceValidation.Protocol(errs, f.Str("protocol"), pp + ".protocol");
                var port = IntOrString(f.Raw("port"), pp + ".port", errs);
                var endPort = f.Int("endPort");
                f.Done();
                Errors(errs);
                ports.Add(new NetworkPolicyPort { Protocol = protocol ?? Protocol.Tcp, Port = port, EndPort = endPort });
            }

            return ports;
        }

        // Kubernetes' IntOrString: a plain number is a port number (1-65535), anything quoted or not numeric a port name.
        private static string? IntOrString(YamlNode? node, string path, List<FieldError> errs)
        {
            switch (node)
            {
                case null:
                    return null;
                case YamlScalarNode { Style: ScalarStyle.Plain, Value: { } v } when long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n):
                    errs.AddRange(NameValidation.IsValidPortNum(n).Select(m => FieldError.Invalid(path, n, m)));
                    return n.ToString(CultureInfo.InvariantCulture);
                case YamlScalarNode { Value: { } text }:
                    errs.AddRange(NameValidation.IsValidPortName(text).Select(m => FieldError.Invalid(path, text, m)));
                    return text;
                default:
                    errs.Add(new FieldError(path, FieldErrorType.Invalid, null, "must be an integer or a string"));
                    return null;
            }
        }
    }
}
