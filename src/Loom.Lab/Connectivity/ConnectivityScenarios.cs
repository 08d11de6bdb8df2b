using System.Globalization;
using System.Net;

namespace Loom.Lab.Connectivity;

/// <summary>What the scenarios are built from: the running pods, the nodes, what the cluster offers.</summary>
internal sealed record ConnectivityContext(
    LabState State, LabPod Client, LabPod Client2, LabPod EchoSame, LabPod EchoOther,
    IReadOnlyDictionary<string, IPAddress> ServiceIps, string? PolicySkipReason, bool ClusterDns, IPEndPoint? ExternalTarget)
{
    /// <summary>Why no-unexpected-drops cannot be judged (flow events off, or it was not selected); null: each action's flows are checked.</summary>
    public string? FlowsUnavailable { get; init; }

    public ConnectivityFlows? Flows { get; init; }

    /// <summary>The echo Services' node ports by Service name (Cilium's echo Services are NodePort Services).</summary>
    public IReadOnlyDictionary<string, int> NodePorts { get; init; } = new Dictionary<string, int>();
}

/// <summary>
/// One test: its actions, the NetworkPolicy it applies first (removed after, and every pod reachable again before the
/// next test), or why it is skipped.
/// </summary>
internal sealed record ConnectivityScenario(string Name, string Group, Func<ConnectivityContext, string?> SkipReason,
    Func<ConnectivityContext, IReadOnlyList<ConnectivityAction>> Actions, string? Policy = null);

/// <summary>Cilium's connectivity test scenarios, as the lab can run them.</summary>
internal static class ConnectivityScenarios
{
    public const string NoPolicies = "no-policies";
    public const string Policies = "policies";
    public const string NoUnexpectedDrops = "no-unexpected-drops";

    public static IReadOnlyList<ConnectivityScenario> All(bool world) =>
    [
        new("pod-to-pod-same-node", NoPolicies, _ => null, c => [Curl(c.Client, c.EchoSame), Curl(c.Client2, c.EchoSame)]),
        new("pod-to-pod-other-node", NoPolicies, _ => null, c => [Curl(c.Client, c.EchoOther), Curl(c.Client2, c.EchoOther)]),
        new("pod-to-service-same-node", NoPolicies, _ => null, c => [CurlService(c, c.Client, c.EchoSame), CurlService(c, c.Client2, c.EchoSame)]),
        new("pod-to-service-other-node", NoPolicies, _ => null, c => [CurlService(c, c.Client, c.EchoOther), CurlService(c, c.Client2, c.EchoOther)]),
        new("pod-to-host", NoPolicies, _ => null, c => [.. c.State.Nodes.Select(n => Ping(c.Client, $"node {n.Name}", n.Ip))]),
        new("host-to-pod", NoPolicies, _ => null, c =>
            [.. c.State.Nodes.SelectMany(n => new[] { c.EchoSame, c.EchoOther }.Select(e => FromNode(n, e)))]),
        new("pod-to-cluster-dns", NoPolicies, c => c.ClusterDns ? null : "the lab has no cluster DNS (Service kube-system/kube-dns; `loom lab up` without --no-dns)",
            c => [Resolve(c, c.Client, "echo-same-node", c.EchoSame), Resolve(c, c.Client2, $"echo-other-node.{ConnectivityDeployment.Namespace}.svc.{Lab.ClusterDomain}", c.EchoOther)]),
        // Cilium's pod-to-local-nodeport / pod-to-remote-nodeport, and outside-to-nodeport from the lab's underlay router.
        new("nodeport", "nodeport", c => c.NodePorts.Count == 2 ? null : "the echo Services have no node port",
            c =>
            [
                .. c.State.Nodes.Select(n => CurlNodePort(c, c.Client, n, c.EchoSame)),
                .. c.State.Nodes.Select(n => CurlNodePort(c, null, n, c.EchoOther)),
            ]),
        new("all-ingress-deny", Policies, c => c.PolicySkipReason,
            c => [Curl(c.Client, c.EchoSame, expect: false), Curl(c.Client, c.EchoOther, expect: false), Curl(c.Client2, c.EchoOther, expect: false)],
            Policy("all-ingress-deny", "podSelector: {}", "policyTypes: [Ingress]")),
        new("all-egress-deny", Policies, c => c.PolicySkipReason,
            c => [Curl(c.Client, c.EchoSame, expect: false), Curl(c.Client2, c.EchoOther, expect: false)],
            Policy("all-egress-deny", "podSelector: {}", "policyTypes: [Egress]")),
        new("echo-ingress-from-client2", Policies, c => c.PolicySkipReason,
            c => [Curl(c.Client2, c.EchoSame), Curl(c.Client2, c.EchoOther), Curl(c.Client, c.EchoSame, expect: false), Curl(c.Client, c.EchoOther, expect: false)],
            Policy("echo-ingress-from-client2", "podSelector: {matchLabels: {kind: echo}}", """
                ingress:
                - from:
                  - podSelector: {matchLabels: {app: client2}}
                """)),
        new("client-egress-to-echo-port", Policies, c => c.PolicySkipReason,
            c =>
            [
                Curl(c.Client, c.EchoSame), Curl(c.Client, c.EchoOther), CurlService(c, c.Client, c.EchoOther),
                Curl(c.Client, c.EchoSame, ConnectivityDeployment.OtherPort, expect: false), Curl(c.Client, c.EchoOther, ConnectivityDeployment.OtherPort, expect: false),
            ],
            Policy("client-egress-to-echo-port", "podSelector: {matchLabels: {app: client}}", string.Create(CultureInfo.InvariantCulture, $"""
                policyTypes: [Egress]
                egress:
                - to:
                  - podSelector: {"{matchLabels: {kind: echo}}"}
                  ports:
                  - port: {ConnectivityDeployment.EchoPort}
                    protocol: TCP
                """))),
        .. world ? new ConnectivityScenario[]
        {
            new("pod-to-world", "world", _ => null, c => c.ExternalTarget is { } t
                ? [Ping(c.Client, "external target", t.Address.ToString()), .. t.Port == 0 ? Array.Empty<ConnectivityAction>() : [Connect(c.Client, t)]]
                : []),
        } : [],
        // Judged from the flows each action above produced (see ConnectivityFlows); it has no actions of its own.
        new(NoUnexpectedDrops, "flows", c => c.FlowsUnavailable, _ => []),
    ];

    /// <summary>After a policy test: the pods reach each other again (the policy is gone from every node).</summary>
    public static IReadOnlyList<ConnectivityAction> Restored(ConnectivityContext c) =>
        [.. new[] { Curl(c.Client, c.EchoSame), Curl(c.Client, c.EchoOther) }.Select(a => a with { Name = "after the policy is removed: " + a.Name })];

    private static string Key(LabPod p) => p.Namespace + "/" + p.Name;

    private static string Where(LabPod p) => "pod " + Key(p);

    private static ConnectivityAction Curl(LabPod from, LabPod to, int port = ConnectivityDeployment.EchoPort, bool expect = true) =>
        new(string.Create(CultureInfo.InvariantCulture, $"{from.Name} -> {to.Name} ({to.Address}:{port})"), Where(from),
            CurlCommand(string.Create(CultureInfo.InvariantCulture, $"http://{to.Address}:{port}/")), expect, [Key(from), Key(to)]);

    private static ConnectivityAction CurlService(ConnectivityContext c, LabPod from, LabPod echo)
    {
        var ip = c.ServiceIps[echo.Name];
        return new(string.Create(CultureInfo.InvariantCulture, $"{from.Name} -> service {echo.Name} ({ip}:{ConnectivityDeployment.EchoPort})"), Where(from),
            CurlCommand(string.Create(CultureInfo.InvariantCulture, $"http://{ip}:{ConnectivityDeployment.EchoPort}/")), true, [Key(from), Key(echo)]);
    }

    /// <summary>A node's underlay address on the echo's node port, from a pod or (null) from outside the nodes.</summary>
    private static ConnectivityAction CurlNodePort(ConnectivityContext c, LabPod? from, LabNode node, LabPod echo)
    {
        var port = c.NodePorts[echo.Name];
        var who = from is null ? "outside (" + Lab.UnderlayRouter + ")" : from.Name;
        return new(string.Create(CultureInfo.InvariantCulture, $"{who} -> node {node.Name} nodeport {echo.Name} ({node.Ip}:{port})"), from is null ? Outside : Where(from),
            CurlCommand(string.Create(CultureInfo.InvariantCulture, $"http://{node.Ip}:{port}/")), true, from is null ? [Key(echo)] : [Key(from), Key(echo)]);
    }

    /// <summary>An action's place for a client on the lab's underlay, outside every node.</summary>
    public const string Outside = "underlay";

    private static ConnectivityAction FromNode(LabNode node, LabPod to) =>
        new(string.Create(CultureInfo.InvariantCulture, $"node {node.Name} -> {to.Name} ({to.Address}:{ConnectivityDeployment.EchoPort})"), "node " + node.Name,
            CurlCommand(string.Create(CultureInfo.InvariantCulture, $"http://{to.Address}:{ConnectivityDeployment.EchoPort}/")), true, [Key(to)]);

    private static ConnectivityAction Ping(LabPod from, string what, string ip) =>
        new($"{from.Name} -> {what} ({ip}) ping", Where(from), ["ping", "-c", "1", "-W", "2", ip], true, [Key(from)]);

    private static ConnectivityAction Connect(LabPod from, IPEndPoint target) =>
        new($"{from.Name} -> external target ({target}) tcp", Where(from), ["agnhost", "connect", target.ToString(), "--timeout=2s"], true, [Key(from)]);

    // nslookup exits 0 on an answer; the answer must be the Service's ClusterIP.
    private static ConnectivityAction Resolve(ConnectivityContext c, LabPod from, string name, LabPod echo) =>
        new($"{from.Name} resolves {name} through the cluster DNS", Where(from), ["nslookup", "-timeout=2", name], true, [Key(from)])
        {
            ExpectedOutput = c.ServiceIps[echo.Name].ToString(),
        };

    private static List<string> CurlCommand(string url) =>
    [
        "curl", "-w", "%{local_ip}:%{local_port} -> %{remote_ip}:%{remote_port} = %{response_code}", "--silent", "--fail", "--show-error",
        "--output", "/dev/null", "--connect-timeout", "2", "--max-time", "5", url,
    ];

    private static string Policy(string name, string podSelector, string spec) => $"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: {name}
          namespace: {ConnectivityDeployment.Namespace}
        spec:
          {podSelector}
        {string.Join("\n", spec.Split('\n').Select(l => l.Length == 0 ? l : "  " + l))}
        """;
}
