using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Validation;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Loom.Lab;

/// <summary>One object of a manifest file.</summary>
public abstract record LabManifest(string Kind, string Namespace, string Name)
{
    /// <summary>kubectl's name for it: <c>deployment.apps/webpod</c>, <c>service/webpod</c>, <c>pod/curl-pod</c>.</summary>
    public string Display => Kind switch
    {
        "Deployment" => "deployment.apps/" + Name,
        "NetworkPolicy" => "networkpolicy.networking.k8s.io/" + Name,
        _ => Kind.ToLowerInvariant() + "/" + Name,
    };
}

public sealed record PodManifest(string Namespace, string Name, LabPodSpec Spec) : LabManifest("Pod", Namespace, Name);

public sealed record DeploymentManifest(string Namespace, string Name, int Replicas, LabelSelector Selector, LabPodSpec Template)
    : LabManifest("Deployment", Namespace, Name);

/// <summary>A Service as written: node ports and the health-check port are 0 where the file leaves them to the allocator.</summary>
public sealed record ServiceManifest(string Namespace, string Name, IPAddress? ClusterIp, IReadOnlyList<ServicePort> Ports,
    IReadOnlyDictionary<string, string> Selector, SessionAffinity SessionAffinity, int SessionAffinityTimeoutSeconds)
    : LabManifest("Service", Namespace, Name)
{
    public ServiceType Type { get; init; } = ServiceType.ClusterIP;

    public IReadOnlyList<IPAddress> ExternalIps { get; init; } = [];

    public TrafficPolicy ExternalTrafficPolicy { get; init; } = TrafficPolicy.Cluster;

    public TrafficPolicy InternalTrafficPolicy { get; init; } = TrafficPolicy.Cluster;

    public int HealthCheckNodePort { get; init; }
}

/// <summary>A Namespace (cluster-scoped: <see cref="LabManifest.Namespace"/> is empty) and its labels.</summary>
public sealed record NamespaceManifest(string Name, IReadOnlyDictionary<string, string> Labels) : LabManifest("Namespace", "", Name);

public sealed record NetworkPolicyManifest(string Namespace, string Name, NetworkPolicy Policy) : LabManifest("NetworkPolicy", Namespace, Name);

/// <summary>What parsing found: the objects, warnings (fields Loom does not honour) and errors (invalid objects).</summary>
public sealed record ManifestSet(IReadOnlyList<LabManifest> Objects, IReadOnlyList<string> Warnings, IReadOnlyList<string> Errors);

/// <summary>
/// Multi-document Kubernetes YAML (Pod, Deployment, Service) read through YamlDotNet's representation model, field by
/// field: every field Loom does not honour is a warning naming its path, every invalid one an error naming it.
/// </summary>
public static partial class Manifests
{
    public static ManifestSet Parse(string yaml)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var objects = new List<LabManifest>();
        var warnings = new List<string>();
        var errors = new List<string>();
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            errors.Add($"YAML: line {e.Start.Line}, column {e.Start.Column}: {e.Message}");
            return new ManifestSet(objects, warnings, errors);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // YamlDotNet fails on some malformed input with these instead of a YamlException ("a:\n   : b").
            errors.Add($"YAML: {e.Message}");
            return new ManifestSet(objects, warnings, errors);
        }

        for (var i = 0; i < stream.Documents.Count; i++)
        {
            var root = stream.Documents[i].RootNode;
            if (root is YamlScalarNode { Value: null or "" } || (root is YamlScalarNode s && string.IsNullOrWhiteSpace(s.Value)))
            {
                continue;
            }

            var doc = string.Create(CultureInfo.InvariantCulture, $"document {i + 1}");
            if (root is not YamlMappingNode map)
            {
                errors.Add($"{doc}: not a mapping (a Kubernetes object)");
                continue;
            }

            var r = new Reader(doc, warnings, errors);
            var o = r.Object(map);
            if (o is not null)
            {
                objects.Add(o);
            }
        }

        // Two objects of one kind with one name in one file: kubectl would apply the second over the first.
        foreach (var dup in objects.GroupBy(o => (o.Kind, o.Namespace, o.Name)).Where(g => g.Count() > 1))
        {
            errors.Add($"{dup.Key.Kind}/{dup.Key.Name}: defined {dup.Count()} times in namespace {dup.Key.Namespace}");
        }

        return new ManifestSet(objects, warnings, errors);
    }

    /// <summary>Reads one document, recording warnings and errors with the object and field path.</summary>
    private sealed partial class Reader(string doc, List<string> warnings, List<string> errors)
    {
        private string _where = doc;

        public LabManifest? Object(YamlMappingNode root)
        {
            var m = new Fields(this, root, "");
            var apiVersion = m.Str("apiVersion", required: true);
            var kind = m.Str("kind", required: true);
            var meta = m.Map("metadata", required: true);
            var name = meta?.Str("name", required: true);
            if (kind is not null && name is not null)
            {
                _where = $"{Plain(kind)}/{Plain(name)}";
            }

            var ns = meta?.Str("namespace") ?? "default";
            Dictionary<string, string> labels = meta?.StringMap("labels") ?? new(StringComparer.Ordinal);
            meta?.Accept("annotations", "uid", "resourceVersion", "creationTimestamp", "generation");
            meta?.Done();
            // As the API server: Service names become DNS names (DNS-1035 labels), Pod and Deployment names are subdomains.
            var metaErrors = new List<FieldError>();
            if (name is not null)
            {
                if (kind == "Service")
                {
                    ServiceValidation.Name(metaErrors, name);
                }
                else if (kind == "Namespace")
                {
                    ObjectValidation.Namespace(metaErrors, name, "metadata.name");
                }
                else
                {
                    ObjectValidation.SubdomainName(metaErrors, name);
                }
            }

            ObjectValidation.Namespace(metaErrors, ns);
            ObjectValidation.Labels(metaErrors, labels, "metadata.labels");
            Errors(metaErrors);

            LabManifest? result = null;
            switch (kind)
            {
                case null:
                    break;
                case "Pod":
                    ApiVersion(apiVersion, "v1");
                    var spec = m.Map("spec", required: true);
                    if (spec is not null && PodSpec(spec, labels) is { } ps && name is not null)
                    {
                        result = new PodManifest(ns, name, ps);
                    }

                    break;
                case "Deployment":
                    ApiVersion(apiVersion, "apps/v1");
                    result = Deployment(m.Map("spec", required: true), ns, name);
                    break;
                case "Service":
                    ApiVersion(apiVersion, "v1");
                    result = Service(m.Map("spec", required: true), ns, name);
                    break;
                case "Namespace":
                    ApiVersion(apiVersion, "v1");
                    m.Map("spec")?.Ignore();
                    result = name is null ? null : new NamespaceManifest(name, labels);
                    break;
                case "NetworkPolicy":
                    ApiVersion(apiVersion, "networking.k8s.io/v1");
                    result = NetworkPolicy(m.Map("spec"), ns, name);
                    break;
                default:
                    Error("kind", $"Unsupported value: {FieldError.Quote(kind)}: the lab runs Pod, Deployment, Service, Namespace and NetworkPolicy");
                    break;
            }

            m.Accept("status");
            m.Done();
            return result;
        }

        private void ApiVersion(string? got, string want)
        {
            if (got is not null && got != want)
            {
                Error("apiVersion", $"Unsupported value: {FieldError.Quote(got)}: {_where.Split('/')[0]} is {want}");
            }
        }

        private DeploymentManifest? Deployment(Fields? spec, string ns, string? name)
        {
            if (spec is null)
            {
                return null;
            }

            var replicas = spec.Int("replicas") ?? 1;
            var errs = new List<FieldError>();
            ObjectValidation.Replicas(errs, replicas);
            Errors(errs);

            var selectorMap = spec.Map("selector", required: true);
            var selector = selectorMap is null ? null : Selector(selectorMap);
            spec.Accept("revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds");
            var strategy = spec.Map("strategy");
            strategy?.Ignore();
            var template = spec.Map("template", required: true);
            LabPodSpec? podSpec = null;
            if (template is not null)
            {
                var tmeta = template.Map("metadata", required: true);
                var labels = tmeta?.StringMap("labels") ?? new(StringComparer.Ordinal);
                tmeta?.Accept("annotations", "name", "creationTimestamp");
                tmeta?.Done();
                var labelErrors = new List<FieldError>();
                ObjectValidation.Labels(labelErrors, labels, "spec.template.metadata.labels");
                Errors(labelErrors);
                var ts = template.Map("spec", required: true);
                podSpec = ts is null ? null : PodSpec(ts, labels);
                template.Done();
                if (selector is not null && labels.Count > 0 && !selector.Matches(labels))
                {
                    Error("spec.template.metadata.labels", $"Invalid value: {{{string.Join(", ", labels.Select(kv => $"{FieldError.Quote(kv.Key)}:{FieldError.Quote(kv.Value)}"))}}}: `selector` does not match template `labels`");
                }
                else if (labels.Count == 0)
                {
                    Error("spec.template.metadata.labels", "Required value: the selector must match the template's labels");
                }
            }

            if (selector is { IsEmpty: true })
            {
                Error("spec.selector", "Invalid value: empty selector is invalid for deployment");
            }

            spec.Done();
            return name is null || selector is null || podSpec is null ? null : new DeploymentManifest(ns, name, replicas, selector, podSpec);
        }

        private ServiceManifest? Service(Fields? spec, string ns, string? name)
        {
            if (spec is null)
            {
                return null;
            }

            var typeText = spec.Str("type") ?? "ClusterIP";
            var type = ServiceType.ClusterIP;
            switch (typeText)
            {
                case "" or "ClusterIP":
                    break;
                case "NodePort":
                    type = ServiceType.NodePort;
                    break;
                case "LoadBalancer":
                    type = ServiceType.LoadBalancer;
                    break;
                case "ExternalName":
                    Error("spec.type", $"Unsupported value: \"ExternalName\": ExternalName Services are not supported by Loom; {ServiceValidation.SupportedTypes}");
                    break;
                default:
                    Error("spec.type", $"Unsupported value: {FieldError.Quote(typeText)}: {ServiceValidation.SupportedTypes}");
                    break;
            }

            IPAddress? clusterIp = null;
            if (spec.Str("clusterIP") is { } ipText && ipText.Length > 0)
            {
                if (ipText == "None")
                {
                    Error("spec.clusterIP", "Unsupported value: \"None\": headless Services are not supported");
                }
                // Dotted quads only: IPAddress.TryParse also takes "10.96.5" and "174391301", which the API server refuses.
                else if (!IPAddress.TryParse(ipText, out clusterIp) || clusterIp.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
                         || clusterIp.ToString() != ipText
                         || !Core.Services.ClusterIpAllocator.DefaultServiceCidr.Contains(clusterIp))
                {
                    Error("spec.clusterIP", $"Invalid value: {FieldError.Quote(ipText)}: must be an IPv4 address in the service CIDR {Core.Services.ClusterIpAllocator.DefaultServiceCidr}");
                    clusterIp = null;
                }
            }

            if (spec.Seq("clusterIPs") is { } ips)
            {
                _ = ips;
            }

            var ports = new List<ServicePort>();
            var errs = new List<FieldError>();
            var seq = spec.Seq("ports", required: true);
            if (seq is not null)
            {
                var complete = true;
                var read = new List<(ServicePort Port, int Index)>();
                for (var i = 0; i < seq.Count; i++)
                {
                    var path = string.Create(CultureInfo.InvariantCulture, $"spec.ports[{i}]");
                    if (seq[i] is not YamlMappingNode pm)
                    {
                        Error(path, "must be a mapping");
                        complete = false;
                        continue;
                    }

                    var p = new Fields(this, pm, path);
                    var portName = p.Str("name");
                    var proto = ServiceValidation.Protocol(errs, p.Str("protocol"), path + ".protocol");
                    var port = p.Int("port", required: true);
                    var nodePort = p.Int("nodePort") ?? 0;
                    int? target = null;
                    if (p.Scalar("targetPort") is { } t)
                    {
                        if (int.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var tp))
                        {
                            // 0 would read as "same as port" in the model; the API server refuses it.
                            if (tp == 0)
                            {
                                ServiceValidation.PortNumber(errs, tp, path + ".targetPort");
                            }

                            target = tp;
                        }
                        else if (NameValidation.IsValidPortName(t) is { Count: > 0 } bad)
                        {
                            errs.AddRange(bad.Select(m => FieldError.Invalid(path + ".targetPort", t, m)));
                        }
                        else
                        {
                            errs.Add(FieldError.NotSupported(path + ".targetPort", t, "named target ports are not supported; give the number"));
                        }
                    }

                    p.Accept("appProtocol");
                    p.Done();
                    if (port is { } pp)
                    {
                        var sp = new ServicePort(portName, proto ?? Protocol.Tcp, pp, target is null or 0 ? pp : target.Value, nodePort);
                        ports.Add(sp);
                        read.Add((sp, i));
                    }
                    else
                    {
                        complete = false;
                    }
                }

                // Names, numbers, target numbers and uniqueness, as the store's validator checks them; when a port could not
                // be read the indexes no longer match, so each port read is checked on its own.
                if (complete)
                {
                    ServiceValidation.Ports(errs, ports);
                    ServiceValidation.NodePorts(errs, type, ports);
                }
                else
                {
                    foreach (var (sp, i) in read)
                    {
                        var path = string.Create(CultureInfo.InvariantCulture, $"spec.ports[{i}]");
                        ServiceValidation.PortName(errs, sp.Name, path + ".name", required: seq.Count > 1);
                        ServiceValidation.PortNumber(errs, sp.Port, path + ".port");
                        ServiceValidation.PortNumber(errs, sp.TargetPort, path + ".targetPort");
                        if (sp.NodePort != 0 && type == ServiceType.ClusterIP)
                        {
                            errs.Add(FieldError.Forbidden(path + ".nodePort", ServiceValidation.NodePortOnClusterIp));
                        }
                        else if (sp.NodePort != 0)
                        {
                            ServiceValidation.PortNumber(errs, sp.NodePort, path + ".nodePort");
                        }
                    }
                }
            }

            var externalIps = ExternalIps(spec, errs);
            var externalPolicy = Policy(spec, "externalTrafficPolicy", errs);
            if (externalPolicy is not null && !ServiceValidation.IsExternallyAccessible(type, externalIps.Count))
            {
                errs.Add(FieldError.Invalid("spec.externalTrafficPolicy", externalPolicy.ToString(), ServiceValidation.ExternalPolicyOnlyExternal));
            }

            var internalPolicy = Policy(spec, "internalTrafficPolicy", errs);
            var healthCheck = spec.Int("healthCheckNodePort") ?? 0;
            ServiceValidation.HealthCheckNodePort(errs, type, externalPolicy ?? TrafficPolicy.Cluster, healthCheck);

            var selector = spec.StringMap("selector") ?? new(StringComparer.Ordinal);
            ObjectValidation.Labels(errs, selector, "spec.selector");
            var affinityText = spec.Str("sessionAffinity") ?? "None";
            var affinity = SessionAffinity.None;
            if (affinityText == "ClientIP")
            {
                affinity = SessionAffinity.ClientIP;
            }
            else if (affinityText != "None")
            {
                errs.Add(FieldError.NotSupported("spec.sessionAffinity", affinityText, "supported values: \"ClientIP\", \"None\""));
            }

            var timeout = 10800;
            if (spec.Map("sessionAffinityConfig") is { } sac)
            {
                if (affinityText == "None")
                {
                    errs.Add(FieldError.Invalid("spec.sessionAffinityConfig", "clientIP", "must not be set when sessionAffinity is None"));
                }

                if (sac.Map("clientIP") is { } cip)
                {
                    timeout = cip.Int("timeoutSeconds") ?? timeout;
                    cip.Done();
                }

                sac.Done();
            }

            ServiceValidation.Affinity(errs, affinity, timeout);
            Errors(errs);
            spec.Accept("ipFamilies", "ipFamilyPolicy");
            spec.Done();
            return name is null ? null : new ServiceManifest(ns, name, clusterIp, ports, selector, affinity, timeout)
            {
                Type = type,
                ExternalIps = externalIps,
                ExternalTrafficPolicy = externalPolicy ?? TrafficPolicy.Cluster,
                InternalTrafficPolicy = internalPolicy ?? TrafficPolicy.Cluster,
                HealthCheckNodePort = healthCheck,
            };
        }

        // spec.externalIPs: dotted quads (or IPv6, which the validator refuses by name), checked as the API server does.
        private static List<IPAddress> ExternalIps(Fields spec, List<FieldError> errs)
        {
            var texts = spec.StringList("externalIPs");
            var ips = new List<IPAddress>();
            for (var i = 0; i < texts.Count; i++)
            {
                var t = texts[i];
                // IPAddress.TryParse also takes "10.5" and "174391301", which the API server refuses.
                if (IPAddress.TryParse(t, out var ip) && (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || ip.ToString() == t))
                {
                    ips.Add(ip);
                }
                else
                {
                    errs.Add(FieldError.Invalid(string.Create(CultureInfo.InvariantCulture, $"spec.externalIPs[{i}]"), t, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
                }
            }

            if (ips.Count == texts.Count)
            {
                ServiceValidation.ExternalIps(errs, ips);
            }

            return ips;
        }

        // "Cluster" or "Local"; null when the field is absent.
        private static TrafficPolicy? Policy(Fields spec, string key, List<FieldError> errs)
        {
            switch (spec.Str(key))
            {
                case null or "":
                    return null;
                case "Cluster":
                    return TrafficPolicy.Cluster;
                case "Local":
                    return TrafficPolicy.Local;
                case { } other:
                    errs.Add(FieldError.NotSupported("spec." + key, other, ServiceValidation.SupportedPolicies));
                    return null;
            }
        }

        private LabPodSpec? PodSpec(Fields spec, Dictionary<string, string> labels)
        {
            var p = spec.Path;
            var containers = spec.Seq("containers", required: true);
            var parsed = new List<LabContainer>();
            if (containers is not null)
            {
                if (containers.Count == 0)
                {
                    Error(p + "containers", "Required value");
                }

                for (var i = 0; i < containers.Count; i++)
                {
                    var cp = string.Create(CultureInfo.InvariantCulture, $"{p}containers[{i}]");
                    if (containers[i] is not YamlMappingNode cm)
                    {
                        Error(cp, "must be a mapping");
                        continue;
                    }

                    if (Container(new Fields(this, cm, cp), parsed) is { } c)
                    {
                        parsed.Add(c);
                    }
                }

                ContainerPortNames(parsed, p);
            }

            var nodeName = spec.Str("nodeName");
            var nodeSelector = spec.StringMap("nodeSelector") ?? new(StringComparer.Ordinal);
            var errs = new List<FieldError>();
            if (nodeName is { Length: > 0 })
            {
                ObjectValidation.SubdomainName(errs, nodeName, p + "nodeName");
            }

            ObjectValidation.Labels(errs, nodeSelector, p + "nodeSelector");
            var tolerations = new List<LabToleration>();
            if (spec.Seq("tolerations") is { } ts)
            {
                for (var i = 0; i < ts.Count; i++)
                {
                    var tp = string.Create(CultureInfo.InvariantCulture, $"{p}tolerations[{i}]");
                    if (ts[i] is not YamlMappingNode tm)
                    {
                        Error(tp, "must be a mapping");
                        continue;
                    }

                    var t = new Fields(this, tm, tp);
                    var key = t.Str("key");
                    var op = t.Str("operator") ?? "Equal";
                    var value = t.Str("value");
                    var effect = t.Str("effect");
                    t.Accept("tolerationSeconds");
                    t.Done();
                    if (op is not ("Equal" or "Exists"))
                    {
                        Error(tp + ".operator", $"Unsupported value: {FieldError.Quote(op)}: supported values: \"Equal\", \"Exists\"");
                    }

                    if (effect is not (null or "" or "NoSchedule" or "PreferNoSchedule" or "NoExecute"))
                    {
                        Error(tp + ".effect", $"Unsupported value: {FieldError.Quote(effect)}");
                    }

                    if (key is { Length: > 0 })
                    {
                        ObjectValidation.LabelKey(errs, key, tp + ".key");
                    }

                    tolerations.Add(new LabToleration(key, op, value, effect));
                }
            }

            var anti = new List<LabAntiAffinityTerm>();
            var preferred = new List<LabWeightedAntiAffinityTerm>();
            if (spec.Map("affinity") is { } affinity)
            {
                if (affinity.Map("podAntiAffinity") is { } paa)
                {
                    if (paa.Seq("requiredDuringSchedulingIgnoredDuringExecution") is { } req)
                    {
                        for (var i = 0; i < req.Count; i++)
                        {
                            var tp = string.Create(CultureInfo.InvariantCulture, $"{paa.Path}requiredDuringSchedulingIgnoredDuringExecution[{i}]");
                            if (req[i] is not YamlMappingNode rm)
                            {
                                Error(tp, "must be a mapping");
                            }
                            else if (AntiAffinityTerm(new Fields(this, rm, tp), errs) is { } term)
                            {
                                anti.Add(term);
                            }
                        }
                    }

                    // kubeadm's CoreDNS spreads its replicas this way: a wish the scheduler scores, never a filter.
                    if (paa.Seq("preferredDuringSchedulingIgnoredDuringExecution") is { } pref)
                    {
                        for (var i = 0; i < pref.Count; i++)
                        {
                            var wp = string.Create(CultureInfo.InvariantCulture, $"{paa.Path}preferredDuringSchedulingIgnoredDuringExecution[{i}]");
                            if (pref[i] is not YamlMappingNode wm)
                            {
                                Error(wp, "must be a mapping");
                                continue;
                            }

                            var w = new Fields(this, wm, wp);
                            var weight = w.Int("weight", required: true);
                            if (weight is < 1 or > 100)
                            {
                                errs.Add(FieldError.Invalid(wp + ".weight", weight.Value, "must be in the range 1-100"));
                            }

                            var term = w.Map("podAffinityTerm", required: true) is { } tm ? AntiAffinityTerm(tm, errs) : null;
                            w.Done();
                            if (weight is >= 1 and <= 100 && term is not null)
                            {
                                preferred.Add(new LabWeightedAntiAffinityTerm(weight.Value, term));
                            }
                        }
                    }

                    paa.Done();
                }

                affinity.Done();
            }

            spec.Accept("restartPolicy", "terminationGracePeriodSeconds", "dnsPolicy", "schedulerName", "securityContext");
            spec.Done();
            Errors(errs);
            return new LabPodSpec
            {
                Labels = labels,
                Containers = parsed,
                Image = parsed.FirstOrDefault()?.Image ?? "",
                Command = parsed.FirstOrDefault()?.Command ?? [],
                Args = parsed.FirstOrDefault()?.Args ?? [],
                NodeName = nodeName,
                NodeSelector = nodeSelector,
                Tolerations = tolerations,
                AntiAffinity = anti,
                PreferredAntiAffinity = preferred,
            };
        }

        // One pod (anti-)affinity term: topologyKey and labelSelector, both required.
        private LabAntiAffinityTerm? AntiAffinityTerm(Fields t, List<FieldError> errs)
        {
            var topologyKey = t.Str("topologyKey", required: true);
            if (topologyKey is not null)
            {
                ObjectValidation.LabelKey(errs, topologyKey, t.Path + "topologyKey");
            }

            var sel = t.Map("labelSelector", required: true);
            var selector = sel is null ? null : Selector(sel);
            t.Done();
            return topologyKey is not null && selector is not null ? new LabAntiAffinityTerm(topologyKey, selector) : null;
        }

        // Reads the YAML shape (warning on fields the lab ignores); LabelSelector.Create checks it as the API server does.
        private LabelSelector? Selector(Fields m)
        {
            var before = errors.Count;
            var matchLabels = m.StringMap("matchLabels");
            var expressions = new List<(string, string, IReadOnlyList<string>)>();
            if (m.Seq("matchExpressions") is { } seq)
            {
                for (var i = 0; i < seq.Count; i++)
                {
                    var ep = string.Create(CultureInfo.InvariantCulture, $"{m.Path}matchExpressions[{i}]");
                    if (seq[i] is not YamlMappingNode em)
                    {
                        Error(ep, "must be a mapping");
                        continue;
                    }

                    var e = new Fields(this, em, ep);
                    var key = e.Str("key", required: true);
                    var op = e.Str("operator", required: true);
                    var values = e.StringList("values");
                    e.Done();
                    if (key is not null && op is not null)
                    {
                        expressions.Add((key, op, values));
                    }
                }
            }

            m.Done();
            if (errors.Count != before)
            {
                return null;
            }

            var errs = new List<FieldError>();
            var selector = LabelSelector.Create(matchLabels, expressions, m.Path.TrimEnd('.'), errs);
            Errors(errs);
            return selector;
        }

        /// <summary>How many errors were recorded so far (a part read cleanly when it is unchanged).</summary>
        public int ErrorCount => errors.Count;

        public void Errors(IEnumerable<FieldError> fieldErrors)
        {
            foreach (var e in fieldErrors)
            {
                Error(e.Field, e.Message);
            }
        }

        // A name shown in every message of its object: quoted and escaped if it holds anything that could break a line.
        private static string Plain(string s) => s.Any(char.IsControl) ? FieldError.Quote(s) : s;

        public void Warn(string path, string text) => warnings.Add($"{_where}: {path}: {text}");

        public void Error(string path, string text) => errors.Add($"{_where}: {path}: {text}");
    }

    /// <summary>A mapping being read: tracks which keys were used, so the rest can be reported as not honoured.</summary>
    private sealed class Fields(Reader reader, YamlMappingNode node, string path)
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        public YamlMappingNode Node => node;

        /// <summary>The path prefix of this mapping's fields, with a trailing dot (empty at the root).</summary>
        public string Path { get; } = path.Length == 0 ? "" : path + ".";

        private YamlNode? Get(string key, bool required)
        {
            _used.Add(key);
            foreach (var (k, v) in node.Children)
            {
                if (k is YamlScalarNode s && s.Value == key)
                {
                    if (v is YamlScalarNode { Value: null or "~" or "null" } && v.Tag.IsEmpty && ((YamlScalarNode)v).Style == ScalarStyle.Plain)
                    {
                        break;
                    }

                    return v;
                }
            }

            if (required)
            {
                reader.Error(Path + key, "Required value");
            }

            return null;
        }

        /// <summary>The node under <paramref name="key"/> as written (null when absent or null), for int-or-string fields.</summary>
        public YamlNode? Raw(string key) => Get(key, required: false);

        public string? Scalar(string key, bool required = false)
        {
            var v = Get(key, required);
            if (v is null)
            {
                return null;
            }

            if (v is not YamlScalarNode s)
            {
                reader.Error(Path + key, "must be a scalar");
                return null;
            }

            return s.Value;
        }

        public string? Str(string key, bool required = false)
        {
            var s = Scalar(key, required);
            if (required && s is "")
            {
                reader.Error(Path + key, "Required value");
                return null;
            }

            return s;
        }

        public int? Int(string key, bool required = false)
        {
            var s = Scalar(key, required);
            if (s is null)
            {
                return null;
            }

            if (!int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i))
            {
                reader.Error(Path + key, $"Invalid value: {FieldError.Quote(s)}: must be an integer");
                return null;
            }

            return i;
        }

        public Fields? Map(string key, bool required = false)
        {
            var v = Get(key, required);
            if (v is null)
            {
                return null;
            }

            if (v is not YamlMappingNode m)
            {
                reader.Error(Path + key, "must be a mapping");
                return null;
            }

            return new Fields(reader, m, Path + key);
        }

        public IList<YamlNode>? Seq(string key, bool required = false)
        {
            var v = Get(key, required);
            if (v is null)
            {
                return null;
            }

            if (v is not YamlSequenceNode s)
            {
                reader.Error(Path + key, "must be a list");
                return null;
            }

            return s.Children;
        }

        public Dictionary<string, string>? StringMap(string key)
        {
            var m = Map(key);
            if (m is null)
            {
                return null;
            }

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in m.Node.Children)
            {
                var name = (k as YamlScalarNode)?.Value ?? "";
                if (v is YamlScalarNode s)
                {
                    result[name] = s.Value ?? "";
                }
                else
                {
                    reader.Error(m.Path + name, "must be a string");
                }
            }

            return result;
        }

        public List<string> StringList(string key)
        {
            var s = Seq(key);
            if (s is null)
            {
                return [];
            }

            var list = new List<string>();
            for (var i = 0; i < s.Count; i++)
            {
                if (s[i] is YamlScalarNode v)
                {
                    list.Add(v.Value ?? "");
                }
                else
                {
                    reader.Error(string.Create(CultureInfo.InvariantCulture, $"{Path}{key}[{i}]"), "must be a string");
                }
            }

            return list;
        }

        /// <summary>Fields that are fine to leave unhonoured without a warning (informational or defaults).</summary>
        public void Accept(params string[] keys)
        {
            foreach (var k in keys)
            {
                _used.Add(k);
            }
        }

        /// <summary>The whole mapping is not honoured: one warning for it.</summary>
        public void Ignore()
        {
            foreach (var (k, _) in node.Children)
            {
                _used.Add((k as YamlScalarNode)?.Value ?? "");
            }

            reader.Warn(Path.TrimEnd('.'), "not honoured by the lab; ignored");
        }

        /// <summary>Warns about every field that was not read.</summary>
        public void Done()
        {
            foreach (var (k, _) in node.Children)
            {
                var name = (k as YamlScalarNode)?.Value ?? "?";
                if (!_used.Contains(name))
                {
                    reader.Warn(Path + name, "not honoured by the lab; ignored");
                }
            }
        }
    }
}
