using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>kubeadm's cluster DNS, with Loom's DNS server as the image.</summary>
internal static class LabClusterDns
{
    /// <summary>
    /// kubeadm's cluster DNS, with Loom's DNS server as the image: a Deployment of two replicas in kube-system behind
    /// kube-dns at 10.96.0.10. As kubeadm's CoreDNS, the replicas prefer different nodes (a preferred, not required,
    /// anti-affinity, so a one-node lab runs both on its node), so draining one node never leaves the cluster without DNS.
    /// </summary>
    internal const string ClusterDnsManifest = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: coredns
          namespace: kube-system
          labels:
            k8s-app: kube-dns
        spec:
          replicas: 2
          selector:
            matchLabels:
              k8s-app: kube-dns
          template:
            metadata:
              labels:
                k8s-app: kube-dns
            spec:
              affinity:
                podAntiAffinity:
                  preferredDuringSchedulingIgnoredDuringExecution:
                  - weight: 100
                    podAffinityTerm:
                      labelSelector:
                        matchExpressions:
                        - key: k8s-app
                          operator: In
                          values: ["kube-dns"]
                      topologyKey: kubernetes.io/hostname
              tolerations:
              - key: node-role.kubernetes.io/control-plane
                effect: NoSchedule
              containers:
              - name: coredns
                image: loom/dns
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: kube-dns
          namespace: kube-system
          labels:
            k8s-app: kube-dns
        spec:
          clusterIP: 10.96.0.10
          selector:
            k8s-app: kube-dns
          ports:
          - name: dns
            protocol: UDP
            port: 53
            targetPort: 53
          - name: dns-tcp
            protocol: TCP
            port: 53
            targetPort: 53
        """;

    internal static async Task DeployClusterDnsAsync(LabState state, Action<string> step, CancellationToken cancellationToken)
    {
        var output = new StringWriter();
        await LabApi.ApplyAsync(state, ClusterDnsManifest, output, cancellationToken).ConfigureAwait(false);
        var running = state.Pods.Where(p => p.Namespace == "kube-system" && p.Owner == "coredns").OrderBy(p => p.Node, StringComparer.Ordinal).ToList();
        var pending = state.Pending.Where(p => p.Namespace == "kube-system" && p.Owner == "coredns").ToList();
        if (running.Count > 0)
        {
            step($"cluster DNS: {string.Join(", ", running.Select(p => $"pod kube-system/{p.Name} on {p.Node} ({p.Ip})"))} behind service kube-dns 10.96.0.10:53 (UDP, TCP)");
        }

        foreach (var p in pending)
        {
            step($"cluster DNS Pending: pod kube-system/{p.Name}: {p.Reason}");
        }
    }
}
