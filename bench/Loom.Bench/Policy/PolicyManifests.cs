using System.Globalization;
using System.Text;

namespace Loom.Bench.Policy;

/// <summary>
/// What the bench applies to its lab: the namespace <c>bench</c> (label ns=bench) with idle pods (agnhost pause; the
/// bench serves their port 80 itself, in-process), the 100 NetworkPolicies over the ghost identities, and the deny-all /
/// allow pair of the enforcement-time test.
/// </summary>
internal static class PolicyManifests
{
    public const string Namespace = "bench";
    public const int Port = 80;

    /// <summary>The ghost endpoints' app label: ghost-0 .. ghost-(N-1), one identity each.</summary>
    public static string Ghost(int i) => string.Create(CultureInfo.InvariantCulture, $"ghost-{i}");

    public static string Setup(IReadOnlyList<(string Name, string App, string Node)> pods)
    {
        var sb = new StringBuilder($"""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: {Namespace}
              labels:
                ns: {Namespace}
            ---

            """);
        foreach (var (name, app, node) in pods)
        {
            sb.Append(CultureInfo.InvariantCulture, $"""
                apiVersion: v1
                kind: Pod
                metadata:
                  name: {name}
                  namespace: {Namespace}
                  labels:
                    app: {app}
                spec:
                  nodeName: {node}
                  tolerations:
                  - operator: Exists
                  containers:
                  - name: idle
                    image: registry.k8s.io/e2e-test-images/agnhost:2.53
                    command: ["/agnhost", "pause"]
                ---

                """);
        }

        return sb.ToString();
    }

    /// <summary>
    /// <paramref name="count"/> policies selecting app=server, each allowing TCP <see cref="Port"/> from its own
    /// <paramref name="ghosts"/>/<paramref name="count"/> ghosts by matchExpressions In; the last by name also allows
    /// app=client, so the client's verdict comes from the last policy.
    /// </summary>
    public static string GhostPolicies(int count, int ghosts)
    {
        var per = ghosts / count;
        var sb = new StringBuilder();
        for (var p = 0; p < count; p++)
        {
            var values = Enumerable.Range(p * per, per).Select(Ghost).ToList();
            if (p == count - 1)
            {
                values.Add("client");
            }

            sb.Append(CultureInfo.InvariantCulture, $"""
                apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata:
                  name: ghosts-{p:000}
                  namespace: {Namespace}
                spec:
                  podSelector:
                    matchLabels: {"{"}app: server{"}"}
                  policyTypes: [Ingress]
                  ingress:
                  - from:
                    - podSelector:
                        matchExpressions: [{"{"}key: app, operator: In, values: [{string.Join(", ", values)}]{"}"}]
                    ports:
                    - port: {Port}
                      protocol: TCP
                ---

                """);
        }

        return sb.ToString();
    }

    /// <summary>
    /// Deny-all ingress on the target and deny-all egress on the probers: a prober's connection then needs both its own
    /// node's agent (egress, on the prober's veth) and the target node's (ingress) to have the allow.
    /// </summary>
    public static string DenyTarget() => $$"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: target-deny
          namespace: {{Namespace}}
        spec:
          podSelector:
            matchLabels: {app: target}
          policyTypes: [Ingress]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: probers-deny-egress
          namespace: {{Namespace}}
        spec:
          podSelector:
            matchLabels: {app: prober}
          policyTypes: [Egress]

        """;

    /// <summary>The allow, applied at once: the target's ingress from the probers, and the probers' egress to the target.</summary>
    public static string AllowProbers() => $$"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: target-allow-probers
          namespace: {{Namespace}}
        spec:
          podSelector:
            matchLabels: {app: target}
          ingress:
          - from:
            - podSelector:
                matchLabels: {app: prober}
            ports:
            - port: {{Port}}
              protocol: TCP
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: probers-allow-target
          namespace: {{Namespace}}
        spec:
          podSelector:
            matchLabels: {app: prober}
          policyTypes: [Egress]
          egress:
          - to:
            - podSelector:
                matchLabels: {app: target}
            ports:
            - port: {{Port}}
              protocol: TCP

        """;
}
