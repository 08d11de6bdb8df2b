using System.Globalization;
using Loom.Core.Store;

namespace Loom.Lab.Connectivity;

/// <summary>
/// What the test deploys, through the lab's own apply (as <c>loom lab apply -f</c>), in a namespace of its own:
/// client (app=client) and client2 (app=client2) on one node, echo-same-node beside them and echo-other-node on
/// another, each echo serving HTTP on 8080 (whoami) and 8081 (agnhost), with a NodePort Service on 8080 (as Cilium's echo Services).
/// </summary>
public sealed record ConnectivityDeployment(string ClientNode, string OtherNode)
{
    public const string Namespace = "loom-connectivity-test";
    public const int EchoPort = 8080;

    /// <summary>The echo's second port: what client-egress-to-echo-port must not reach.</summary>
    public const int OtherPort = 8081;

    public static readonly string[] Pods = ["client", "client2", "echo-same-node", "echo-other-node"];

    /// <summary>The client on the first worker (k8s-ctr when there is none), the other echo on the next node.</summary>
    public static ConnectivityDeployment For(LabState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Nodes.Count < 2)
        {
            throw new LabException($"the connectivity test needs at least two nodes (pod-to-pod across nodes); this lab has {state.Nodes.Count}");
        }

        var client = state.Nodes[1].Name;
        var other = state.Nodes.Count > 2 ? state.Nodes[2].Name : state.Nodes[0].Name;
        return new ConnectivityDeployment(client, other);
    }

    public string Manifest() => string.Create(CultureInfo.InvariantCulture, $"""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: {Namespace}
          labels:
            app.kubernetes.io/name: loom-connectivity-test
        ---
        {Client("client", "client")}
        ---
        {Client("client2", "client2")}
        ---
        {Echo("echo-same-node", ClientNode)}
        ---
        {Echo("echo-other-node", OtherNode)}
        ---
        {Service("echo-same-node")}
        ---
        {Service("echo-other-node")}
        """);

    // nodeName places the pod as written (and passes a control plane's NoSchedule taint, as kubelet's admission does).
    private string Client(string name, string app) => $"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
          namespace: {Namespace}
          labels:
            app: {app}
            kind: client
        spec:
          nodeName: {ClientNode}
          containers:
          - name: client
            image: alpine/curl
            command: ["sleep", "infinity"]
        """;

    private static string Echo(string name, string node) => string.Create(CultureInfo.InvariantCulture, $"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
          namespace: {Namespace}
          labels:
            name: {name}
            kind: echo
        spec:
          nodeName: {node}
          containers:
          - name: echo
            image: traefik/whoami
            args: ["--port", "{EchoPort}"]
            ports:
            - containerPort: {EchoPort}
              name: http
          - name: other
            image: registry.k8s.io/e2e-test-images/agnhost:2.53
            command: ["/agnhost", "serve-hostname", "--port", "{OtherPort}"]
            ports:
            - containerPort: {OtherPort}
              name: other
        """);

    private static string Service(string name) => string.Create(CultureInfo.InvariantCulture, $"""
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
          namespace: {Namespace}
        spec:
          type: NodePort
          selector:
            name: {name}
          ports:
          - name: http
            port: {EchoPort}
            targetPort: {EchoPort}
        """);

    /// <summary>
    /// Removes what is left in the namespace (a killed run's), then applies the
    /// pods and Services and waits until every node balances the Services to the echos. A LabException when a pod
    /// could not be placed or started.
    /// </summary>
    public async Task DeployAsync(LabState state, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(log);
        if (await RemoveAsync(state, cancellationToken).ConfigureAwait(false) is { Count: > 0 } leftovers)
        {
            await log.WriteLineAsync($"ℹ️  removed what a previous run left: {string.Join(", ", leftovers)}").ConfigureAwait(false);
        }

        await LabApi.ApplyAsync(state, Manifest(), TextWriter.Null, cancellationToken).ConfigureAwait(false);
        state.Refresh();
        var pods = new List<LabPod>();
        foreach (var name in Pods)
        {
            if (state.Pod(Namespace, name) is { } p)
            {
                pods.Add(p);
                continue;
            }

            var why = state.Pending.FirstOrDefault(x => x.Namespace == Namespace && x.Name == name)?.Reason ?? "not created";
            throw new LabException($"pod {Namespace}/{name} is not running: {why}");
        }

        await LabEndpointReadiness.WaitAppliedAsync(state, [.. pods.Where(p => p.Name.StartsWith("echo-", StringComparison.Ordinal))], "the echo Services", cancellationToken)
            .ConfigureAwait(false);
        foreach (var p in pods)
        {
            await log.WriteLineAsync($"✅ pod {Namespace}/{p.Name} on {p.Node}: {p.Address}").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Deletes everything in the test's namespace: pods (running and Pending), Services, NetworkPolicies and the
    /// Namespace object. Runs to the end even if one removal fails (the first error is thrown after); returns what it removed.
    /// </summary>
    public static async Task<List<string>> RemoveAsync(LabState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(state);
        var removed = new List<string>();
        var errors = new List<Exception>();
        state.Refresh();
        foreach (var pod in state.Pods.Where(p => p.Namespace == Namespace).ToList())
        {
            try
            {
                LabPods.DeletePod(state, pod.Name, Namespace);
                removed.Add("pod/" + pod.Name);
            }
            catch (LabException e)
            {
                errors.Add(e);
            }
        }

        state.Change(c =>
        {
            removed.AddRange(c.Pending.Where(p => p.Namespace == Namespace).Select(p => "pod/" + p.Name));
            c.Pending.RemoveAll(p => p.Namespace == Namespace);
            c.Services.RemoveAll(s => s.Namespace == Namespace);
        });
        var store = await LabStore.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            var (services, _) = await store.ListValidAsync(Kinds.Service, (_, _) => { }, cancellationToken).ConfigureAwait(false);
            foreach (var s in services.Where(s => s.Value.Namespace == Namespace))
            {
                if (await store.DeleteAsync(Kinds.Service, s.Key, cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    removed.Add("service/" + s.Value.Name);
                }
            }

            var (policies, _) = await store.ListValidAsync(Kinds.NetworkPolicy, (_, _) => { }, cancellationToken).ConfigureAwait(false);
            foreach (var p in policies.Where(p => p.Value.Namespace == Namespace))
            {
                if (await store.DeleteAsync(Kinds.NetworkPolicy, p.Key, cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    removed.Add("networkpolicy/" + p.Value.Name);
                }
            }

            if (await store.DeleteAsync(Kinds.Namespace, Namespace, cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                removed.Add("namespace/" + Namespace);
            }
        }

        return errors.Count > 0 ? throw new LabException($"cleanup of {Namespace}: {string.Join("; ", errors.Select(e => e.Message))}", errors[0]) : removed;
    }
}
