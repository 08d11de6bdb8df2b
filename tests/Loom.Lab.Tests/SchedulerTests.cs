using Loom.Core.Model;
using Loom.Core.Selection;

namespace Loom.Lab.Tests;

/// <summary>The lab's scheduler against the scenario's three nodes (k8s-ctr tainted like kubeadm's control plane).</summary>
public sealed class SchedulerTests
{
    private static readonly Taint ControlPlane = new("node-role.kubernetes.io/control-plane", null, TaintEffect.NoSchedule);

    private static List<SchedulerNode> Nodes(bool cordonW1 = false) =>
    [
        Node("k8s-ctr", [ControlPlane]),
        Node("k8s-w1", [], cordonW1),
        Node("k8s-w2", []),
    ];

    private static SchedulerNode Node(string name, Taint[] taints, bool cordoned = false) =>
        new(name, new Dictionary<string, string> { [Scheduler.HostnameLabel] = name, ["zone"] = name == "k8s-w2" ? "b" : "a" }, taints, cordoned);

    private static readonly LabAntiAffinityTerm NotWithWebpods =
        new(Scheduler.HostnameLabel, new LabelSelector { MatchExpressions = [new LabelSelectorRequirement("app", SelectorOperator.In, ["webpod"])] });

    private static LabPodSpec Webpod => new() { Labels = new() { ["app"] = "webpod" }, Image = "traefik/whoami", AntiAffinity = [NotWithWebpods] };

    private static SchedulerPod Running(string name, string node, LabPodSpec spec) => new("default", name, node, spec.Labels, spec.AntiAffinity);

    [Fact]
    public void Replicas_with_anti_affinity_spread_over_the_workers_and_a_third_stays_pending_with_kubectls_reason()
    {
        var first = Scheduler.Schedule("default", Webpod, Nodes(), []);
        Assert.Equal("k8s-w1", first.Node);
        var second = Scheduler.Schedule("default", Webpod, Nodes(), [Running("a", "k8s-w1", Webpod)]);
        Assert.Equal("k8s-w2", second.Node);
        var third = Scheduler.Schedule("default", Webpod, Nodes(), [Running("a", "k8s-w1", Webpod), Running("b", "k8s-w2", Webpod)]);
        Assert.False(third.Scheduled);
        Assert.Equal("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match pod anti-affinity rules.", third.Reason);
    }

    [Fact]
    public void Node_name_bypasses_taints_and_cordon_but_not_a_missing_node()
    {
        var curl = new LabPodSpec { Image = "alpine/curl", Command = ["sleep", "1d"], NodeName = "k8s-ctr" };
        Assert.Equal("k8s-ctr", Scheduler.Schedule("default", curl, Nodes(), []).Node);
        Assert.Equal("k8s-w1", Scheduler.Schedule("default", curl with { NodeName = "k8s-w1" }, Nodes(cordonW1: true), []).Node);
        Assert.Equal("node \"k8s-w9\" not found", Scheduler.Schedule("default", curl with { NodeName = "k8s-w9" }, Nodes(), []).Reason);
    }

    [Fact]
    public void Cordon_taints_tolerations_and_node_selector()
    {
        var plain = new LabPodSpec { Image = "traefik/whoami" };
        Assert.Equal("k8s-w2", Scheduler.Schedule("default", plain, Nodes(cordonW1: true), []).Node);
        var all = new[] { Node("k8s-ctr", [ControlPlane]), Node("k8s-w1", [], true), Node("k8s-w2", [], true) };
        Assert.Equal("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) were unschedulable.",
            Scheduler.Schedule("default", plain, all, []).Reason);

        var tolerant = plain with { Tolerations = [new LabToleration("node-role.kubernetes.io/control-plane", "Exists", null, "NoSchedule")] };
        Assert.Equal("k8s-ctr", Scheduler.Schedule("default", tolerant, all, []).Node);
        Assert.Equal("k8s-ctr", Scheduler.Schedule("default", plain with { Tolerations = [new LabToleration(null, "Exists", null, null)] }, all, []).Node);
        Assert.False(Scheduler.Schedule("default", plain with { Tolerations = [new LabToleration("node-role.kubernetes.io/control-plane", "Equal", "x", null)] }, all, []).Scheduled);

        var zoned = plain with { NodeSelector = new() { ["zone"] = "b" } };
        Assert.Equal("k8s-w2", Scheduler.Schedule("default", zoned, Nodes(), []).Node);
        Assert.Equal("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable.",
            Scheduler.Schedule("default", zoned with { NodeSelector = new() { ["zone"] = "a" } }, Nodes(cordonW1: true), []).Reason);
    }

    [Fact]
    public void Anti_affinity_is_per_namespace_symmetric_and_spreading_prefers_emptier_nodes()
    {
        // Same labels in another namespace do not count.
        Assert.Equal("k8s-w1", Scheduler.Schedule("default", Webpod, [.. Nodes().Take(2)], [new SchedulerPod("other", "x", "k8s-w1", Webpod.Labels, [])]).Node);
        // An existing pod's anti-affinity keeps matching newcomers away.
        var plainWeb = new LabPodSpec { Labels = new() { ["app"] = "webpod" }, Image = "traefik/whoami" };
        var r = Scheduler.Schedule("default", plainWeb, Nodes(), [Running("a", "k8s-w1", Webpod)]);
        Assert.Equal("k8s-w2", r.Node);
        Assert.Equal("0/3 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable.",
            Scheduler.Schedule("default", plainWeb, Nodes(cordonW1: true), [Running("a", "k8s-w2", Webpod)]).Reason);
        // A topology key wider than a host: zone a (ctr, w1) is taken, so only w2.
        var zoneAnti = Webpod with { AntiAffinity = [NotWithWebpods with { TopologyKey = "zone" }] };
        Assert.Equal("k8s-w2", Scheduler.Schedule("default", zoneAnti, Nodes(), [Running("a", "k8s-ctr", Webpod)]).Node);
        // Least loaded first.
        Assert.Equal("k8s-w2", Scheduler.Schedule("default", new LabPodSpec(), Nodes(), [Running("x", "k8s-w1", new LabPodSpec())]).Node);
        // A NotReady node is out.
        var notReady = new[] { Node("k8s-w1", []) with { Ready = false } };
        Assert.Equal("0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.", Scheduler.Schedule("default", new LabPodSpec(), notReady, []).Reason);
    }

    [Fact]
    public void Cluster_dns_replicas_prefer_different_nodes_and_share_one_when_no_other_fits()
    {
        var set = Manifests.Parse(Lab.ClusterDnsManifest);
        Assert.Empty(set.Errors);
        Assert.Empty(set.Warnings);
        var dns = Assert.Single(set.Objects.OfType<DeploymentManifest>());
        Assert.Equal(2, dns.Replicas);
        var term = Assert.Single(dns.Template.PreferredAntiAffinity);
        Assert.Equal(100, term.Weight);
        SchedulerPod Dns(string name, string node) => new("kube-system", name, node, dns.Template.Labels, [], dns.Template.PreferredAntiAffinity);

        // The control plane is tolerated; the second replica avoids the first one's node, even past a busier one.
        Assert.Equal("k8s-ctr", Scheduler.Schedule("kube-system", dns.Template, Nodes(), []).Node);
        var busy = new[] { new SchedulerPod("default", "a", "k8s-w1", new Dictionary<string, string>(), []), new SchedulerPod("default", "b", "k8s-w2", new Dictionary<string, string>(), []) };
        Assert.Equal("k8s-w1", Scheduler.Schedule("kube-system", dns.Template, Nodes(), [Dns("d1", "k8s-ctr"), .. busy]).Node);
        // Draining w1: its replica's replacement goes where no replica is (w2), not to the control plane's.
        Assert.Equal("k8s-w2", Scheduler.Schedule("kube-system", dns.Template, Nodes(cordonW1: true), [Dns("d1", "k8s-ctr"), Dns("d2", "k8s-w1")]).Node);
        // One node: preferred, not required, so both replicas run there.
        Assert.Equal("k8s-ctr", Scheduler.Schedule("kube-system", dns.Template, [Node("k8s-ctr", [ControlPlane])], [Dns("d1", "k8s-ctr")]).Node);
        // A weight out of range is refused as the API server does.
        var bad = Manifests.Parse(Lab.ClusterDnsManifest.Replace("weight: 100", "weight: 101", StringComparison.Ordinal));
        Assert.Contains(bad.Errors, e => e.Contains("preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 101: must be in the range 1-100", StringComparison.Ordinal));
    }
}
