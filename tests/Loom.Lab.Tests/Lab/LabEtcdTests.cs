using Loom.Core.Store;
using Loom.Testing;
namespace Loom.Lab.Tests;

/// <summary>
/// The lab on etcd as a user types it: out/bin/loom lab up --store etcd, then status, apply, get, exec (a curl through
/// the Service and the cluster DNS), topology, the connectivity test, delete; everything the CLI reads or writes goes to
/// etcd inside k8s-ctr (no SQLite file exists). With etcd stopped the commands fail in one line naming it.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class LabEtcdTests
{
    private static Task<CliScenarioTests.Run> Loom(string[] args) => CliScenarioTests.Loom(args);

    private static async Task SignalAsync(int pid, string signal)
    {
        using var kill = System.Diagnostics.Process.Start("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }

    [Fact]
    public async Task Apply_get_exec_connectivity_and_delete_work_on_an_etcd_lab()
    {
        var o = TestLab.Options();
        string[] lab = ["lab", "--lab-dir", o.LabDir, "--prefix", o.Prefix];
        var webpod = ManifestTests.ExamplePath("webpod.yaml");
        try
        {
            var up = await Loom([.. lab, "up", "--store", "etcd"]);
            Assert.True(up.Code == 0, up.ToString());
            // The cluster DNS is applied through the store, as on SQLite.
            Assert.Contains("behind service kube-dns 10.96.0.10:53 (UDP, TCP)", up.Out, StringComparison.Ordinal);
            var state = Lab.Load(o.LabDir)!;
            Assert.Equal("etcd", state.Store);
            Assert.Empty(Directory.GetFiles(o.LabDir, "*.db"));

            // Readiness as the store reports it: every node Ready with a pod CIDR.
            var status = await Loom([.. lab, "status"]);
            Assert.True(status.Code == 0 && status.Err.Length == 0, status.ToString());
            Assert.Contains("store etcd https://192.168.10.100:2379", status.Out, StringComparison.Ordinal);
            foreach (var n in state.Nodes)
            {
                Assert.Matches($@"(?m)^{n.Name}\s+\S+\s+{n.Ip.Replace(".", "\\.", StringComparison.Ordinal)}\s+\d+ alive\s+yes\s+10\.244\.\d+\.0/24", status.Out);
            }

            var apply = await Loom([.. lab, "apply", "-f", webpod]);
            Assert.True(apply.Code == 0, apply.ToString());
            Assert.Contains("deployment.apps/webpod created", apply.Out, StringComparison.Ordinal);
            Assert.Contains("service/webpod created", apply.Out, StringComparison.Ordinal);
            var curl = await Loom([.. lab, "apply", "-f", ManifestTests.ExamplePath("curl-pod.yaml")]);
            Assert.True(curl.Code == 0, curl.ToString());

            // The control plane's labels and taint were written to etcd at up: the Deployment's pods went to the workers.
            Assert.Matches(@"k8s-ctr\s+Ready\s+control-plane\s+\S+\s+\S+\s+192\.168\.10\.100", (await Loom([.. lab, "get", "nodes", "-o", "wide"])).Out);
            var pods = await Loom([.. lab, "get", "pods", "-o", "wide"]);
            Assert.Matches(@"webpod-\w+-\w{5}\s+1/1\s+Running\s+0\s+\S+\s+10\.244\.1\.\d+\s+k8s-w1", pods.Out);
            Assert.Matches(@"webpod-\w+-\w{5}\s+1/1\s+Running\s+0\s+\S+\s+10\.244\.2\.\d+\s+k8s-w2", pods.Out);
            Assert.Matches(@"webpod\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+80/TCP", (await Loom([.. lab, "get", "svc"])).Out);
            Assert.Matches(@"webpod\s+10\.244\.1\.\d+:80,10\.244\.2\.\d+:80\s", (await Loom([.. lab, "get", "endpoints"])).Out);

            // What get showed is etcd's: the Service as the store (etcd, through the lab's certificate) holds it.
            var store = await Lab.OpenStoreAsync(state);
            await using (store)
            {
                Assert.Contains((await store.ListAsync(Kinds.Service)).Items, s => s.Value.Name == "webpod");
            }

            // Real packets: the client pod resolves webpod through the cluster DNS and reaches a replica via the ClusterIP.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < 10 && seen.Count < 2; i++)
            {
                var body = await Loom([.. lab, "exec", "curl-pod", "--", "curl", "-s", "-m", "5", "webpod"]);
                Assert.True(body.Code == 0, body.ToString());
                Assert.Matches(@"^Hostname: webpod-\w+-\w{5}\n", body.Out);
                seen.Add(body.Out.Split('\n')[0]);
            }

            Assert.Equal(2, seen.Count);
            var svg = Path.Combine(o.LabDir, "topology.svg");
            Assert.Equal(0, (await Loom([.. lab, "topology", "--svg", svg])).Code);
            Assert.Contains(">svc default/webpod<", File.ReadAllText(svg), StringComparison.Ordinal);

            var conn = await Loom([.. lab, "connectivity", "test", "--test", "pod-to-pod", "--test", "pod-to-service", "--test", "pod-to-cluster-dns"]);
            Assert.True(conn.Code == 0, conn.ToString());
            Assert.Contains("✅ All ", conn.Out, StringComparison.Ordinal);

            var delete = await Loom([.. lab, "delete", "-f", webpod]);
            Assert.True(delete.Code == 0, delete.ToString());
            Assert.Contains("service/webpod deleted", delete.Out, StringComparison.Ordinal);
            Assert.DoesNotContain("webpod", (await Loom([.. lab, "get", "pods"])).Out, StringComparison.Ordinal);
            Assert.DoesNotContain("webpod", (await Loom([.. lab, "get", "svc"])).Out, StringComparison.Ordinal);

            // etcd frozen (SIGSTOP): status still prints the lab within its 5 s wait and says the store does not answer.
            state.Refresh();
            Assert.True(LabProcesses.IsAlive(state.EtcdPid!.Value));
            await SignalAsync(state.EtcdPid.Value, "STOP");
            try
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                status = await Loom([.. lab, "status"]);
                Assert.True(status.Code == 0 && clock.Elapsed < TimeSpan.FromSeconds(20), status.ToString());
                Assert.Contains("store unreadable: no answer in 5 s", status.Err, StringComparison.Ordinal);
                Assert.Matches(@"(?m)^k8s-w1\s+\S+\s+192\.168\.10\.101\s+\d+ alive\s+no\s", status.Out);
            }
            finally
            {
                await SignalAsync(state.EtcdPid.Value, "CONT");
            }

            // etcd stopped: status says the store is unreadable; get fails in one line naming etcd and the socket error.
            System.Diagnostics.Process.GetProcessById(state.EtcdPid.Value).Kill();
            await System.Diagnostics.Process.GetProcessById(state.EtcdPid.Value).WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            status = await Loom([.. lab, "status"]);
            Assert.True(status.Code == 0, status.ToString());
            Assert.Contains("store unreadable:", status.Err, StringComparison.Ordinal);
            var get = await Loom([.. lab, "get", "pods"]);
            Assert.True(get.Code == 1, get.ToString());
            Assert.StartsWith("loom lab: the lab's etcd did not answer: Unavailable: ", get.Err, StringComparison.Ordinal);
            Assert.Contains("Connection refused", get.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", get.Err, StringComparison.Ordinal);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }

        Assert.Empty(TestLab.Namespaces(o.Prefix));
        Assert.Empty(TestLab.ProcessesMentioning(o.LabDir));
    }
}
