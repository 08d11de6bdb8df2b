using System.Globalization;
using System.Text;

namespace Loom.Bench.LabScale;

/// <summary>
/// The manifests the lab bench applies: the scenario's webpod (a Deployment of 2 whoami replicas, one per worker,
/// behind Service webpod) followed by N-1 more Services, one port each; every 100th selects the webpod pods (so a
/// few have endpoints, as in a real cluster), the others a label no pod carries. And one idle client pod per node.
/// </summary>
internal static class ScaleManifest
{
    public const string WhoamiLabel = "webpod";
    public const int WithEndpointsEvery = 100;

    /// <summary>The scenario's webpod.yaml (Deployment + Service), then <paramref name="services"/>-1 Services scale-00001...</summary>
    public static string Services(int services)
    {
        var y = new StringBuilder(services * 200);
        y.Append("""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: webpod
            spec:
              replicas: 2
              selector:
                matchLabels:
                  app: webpod
              template:
                metadata:
                  labels:
                    app: webpod
                spec:
                  affinity:
                    podAntiAffinity:
                      requiredDuringSchedulingIgnoredDuringExecution:
                      - labelSelector:
                          matchExpressions:
                          - key: app
                            operator: In
                            values:
                            - webpod
                        topologyKey: "kubernetes.io/hostname"
                  containers:
                  - name: webpod
                    image: traefik/whoami
                    ports:
                    - containerPort: 80
            """).Append('\n');
        y.Append(Service("webpod", WhoamiLabel));
        for (var i = 1; i < services; i++)
        {
            var app = i % WithEndpointsEvery == 0 ? WhoamiLabel : string.Create(CultureInfo.InvariantCulture, $"none-{i:D5}");
            y.Append(Service(string.Create(CultureInfo.InvariantCulture, $"scale-{i:D5}"), app));
        }

        return y.ToString();
    }

    /// <summary>Services among the first <paramref name="services"/> that select the webpod pods.</summary>
    public static int WithEndpoints(int services) => 1 + ((services - 1) / WithEndpointsEvery);

    /// <summary>An idle pod pinned to each node (nodeName bypasses k8s-ctr's taint, as the scenario's curl-pod).</summary>
    public static string Clients(IEnumerable<string> nodes)
    {
        var y = new StringBuilder();
        foreach (var node in nodes)
        {
            y.Append(CultureInfo.InvariantCulture, $"""
                ---
                apiVersion: v1
                kind: Pod
                metadata:
                  name: {ClientPod(node)}
                  labels:
                    app: bench-client
                spec:
                  nodeName: {node}
                  containers:
                  - name: client
                    image: alpine/curl
                    command: ["sleep", "360000"]
                  terminationGracePeriodSeconds: 0
                """).Append('\n');
        }

        return y.ToString();
    }

    public static string ClientPod(string node) => "bench-client-" + node;

    private static string Service(string name, string app) => $"""
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
        spec:
          selector:
            app: {app}
          ports:
          - protocol: TCP
            port: 80
            targetPort: 80
          type: ClusterIP

        """;
}
