using Loom.Core.Policy;

namespace Loom.Core.Tests.Policy;

public sealed class SecurityLabelsTests
{
    [Fact]
    public void A_pods_set_is_ciliums_form_and_reads_back()
    {
        var set = SecurityLabels.Of("web", new Dictionary<string, string> { ["app"] = "web", ["pod-template-hash"] = "5d8f", ["controller-revision-hash"] = "x", ["job-name"] = "j" },
            new Dictionary<string, string> { ["team"] = "a" });
        Assert.Equal(new Dictionary<string, string>
        {
            ["k8s:app"] = "web",
            ["k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name"] = "web",
            ["k8s:io.cilium.k8s.namespace.labels.team"] = "a",
            ["k8s:io.kubernetes.pod.namespace"] = "web",
        }, set.Labels);
        Assert.Equal("web", set.Namespace);
        Assert.Equal(new Dictionary<string, string> { ["app"] = "web" }, set.PodLabels);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "a", ["kubernetes.io/metadata.name"] = "web" }, set.NamespaceLabels);
        Assert.Equal("k8s:app=web;k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=web;k8s:io.cilium.k8s.namespace.labels.team=a;k8s:io.kubernetes.pod.namespace=web",
            set.Canonical);
    }

    [Fact]
    public void Equal_sets_are_equal_whatever_the_order_and_round_trip_through_their_labels()
    {
        var a = SecurityLabels.Of("x", new Dictionary<string, string> { ["b"] = "1", ["a"] = "2" }, new Dictionary<string, string>());
        var b = SecurityLabels.Of("x", new Dictionary<string, string> { ["a"] = "2", ["b"] = "1", ["pod-template-hash"] = "h" }, new Dictionary<string, string>());
        Assert.Equal(a, b);
        Assert.Equal(a.Hash(), b.Hash());
        Assert.Equal(64, a.Hash().Length);
        Assert.Equal(a, SecurityLabels.FromLabels(a.Labels));
        Assert.NotEqual(a, SecurityLabels.Of("y", new Dictionary<string, string> { ["b"] = "1", ["a"] = "2" }, new Dictionary<string, string>()));
        Assert.Throws<ArgumentException>(() => SecurityLabels.FromLabels(new Dictionary<string, string> { ["app"] = "x" }));
    }

    [Fact]
    public void A_pod_label_cannot_pose_as_its_namespace()
    {
        var set = SecurityLabels.Of("x", new Dictionary<string, string> { ["io.kubernetes.pod.namespace"] = "kube-system", ["io.cilium.k8s.namespace.labels.team"] = "a" },
            new Dictionary<string, string>());
        Assert.Equal("x", set.Namespace);
        Assert.Empty(set.PodLabels);
        Assert.DoesNotContain("team", set.NamespaceLabels.Keys);
    }

    [Fact]
    public void The_cluster_dns_pods_have_the_reserved_identity()
    {
        Assert.Equal(ReservedIdentity.KubeDns, SecurityLabels.IdentityFor(SecurityLabels.Of("kube-system", new Dictionary<string, string> { ["k8s-app"] = "kube-dns" }, new Dictionary<string, string>())));
        Assert.Null(SecurityLabels.IdentityFor(SecurityLabels.Of("default", new Dictionary<string, string> { ["k8s-app"] = "kube-dns" }, new Dictionary<string, string>())));
        Assert.Null(SecurityLabels.IdentityFor(SecurityLabels.Of("kube-system", new Dictionary<string, string> { ["k8s-app"] = "metrics" }, new Dictionary<string, string>())));
    }
}
