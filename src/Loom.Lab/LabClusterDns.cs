using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>kubeadm's cluster DNS, with Loom's DNS server as the image.</summary>
internal static class LabClusterDns
{
    /// <summary>kubeadm's cluster DNS, with Loom's DNS server as the image: a Deployment in kube-system behind kube-dns at 10.96.0.10.</summary>
    internal const string ClusterDnsManifest = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: coredns
          namespace: kube-system
          labels:
            k8s-app: kube-dns
        spec:
          replicas: 1
          selector:
            matchLabels:
              k8s-app: kube-dns
          template:
            metadata:
              labels:
                k8s-app: kube-dns
            spec:
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
        var dns = state.Pods.FirstOrDefault(p => p.Owner == "coredns");
        step(dns is null
            ? $"cluster DNS Pending: {state.Pending.FirstOrDefault(p => p.Owner == "coredns")?.Reason}"
            : $"cluster DNS: pod kube-system/{dns.Name} on {dns.Node} ({dns.Ip}) behind service kube-dns 10.96.0.10:53 (UDP, TCP)");
    }
}
