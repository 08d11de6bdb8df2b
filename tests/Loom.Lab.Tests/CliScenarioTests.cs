using System.Diagnostics;
using Loom.Testing;

namespace Loom.Lab.Tests;

/// <summary>The scenario as a user types it: out/bin/loom lab apply/get/exec/logs/drain/delete, on a per-test lab.</summary>
[Collection(SequentialLab.Name)]
public sealed class CliScenarioTests
{
    [Fact]
    public async Task Apply_get_exec_logs_drain_and_delete_through_the_cli()
    {
        var o = TestLab.Options();
        string[] lab = ["lab", "--lab-dir", o.LabDir, "--prefix", o.Prefix];
        var webpod = ManifestTests.ExamplePath("webpod.yaml");
        try
        {
            var up = await Loom([.. lab, "up"]);
            Assert.True(up.Code == 0, up.ToString());
            Assert.Contains("behind service kube-dns 10.96.0.10:53 (UDP, TCP)", up.Out, StringComparison.Ordinal);

            // An invalid manifest on stdin: exit 1, the field named, nothing applied.
            var bad = await Loom([.. lab, "apply", "-f", "-"], File.ReadAllText(webpod).Replace("    port: 80\n", "    port: 0\n", StringComparison.Ordinal));
            Assert.Equal(1, bad.Code);
            Assert.Contains("Service/webpod: spec.ports[0].port: Invalid value: 0", bad.Err, StringComparison.Ordinal);
            Assert.Contains("No resources found.", (await Loom([.. lab, "get", "svc"])).Out, StringComparison.Ordinal);

            var apply = await Loom([.. lab, "apply", "-f", webpod]);
            Assert.True(apply.Code == 0, apply.ToString());
            Assert.Contains("deployment.apps/webpod created", apply.Out, StringComparison.Ordinal);
            var curl = await Loom([.. lab, "apply", "-f", ManifestTests.ExamplePath("curl-pod.yaml")]);
            Assert.True(curl.Code == 0, curl.ToString());
            Assert.Contains("pod/curl-pod created", curl.Out, StringComparison.Ordinal);

            var pods = await Loom([.. lab, "get", "pods", "-o", "wide"]);
            Assert.Matches(@"(?m)^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$", pods.Out);
            Assert.Matches(@"webpod-\w+-\w{5}\s+1/1\s+Running\s+0\s+\S+\s+10\.244\.1\.\d+\s+k8s-w1", pods.Out);
            Assert.Matches(@"webpod-\w+-\w{5}\s+1/1\s+Running\s+0\s+\S+\s+10\.244\.2\.\d+\s+k8s-w2", pods.Out);
            Assert.Matches(@"(?m)^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$", (await Loom([.. lab, "get", "svc"])).Out);
            Assert.Matches(@"kube-dns\s+10\.244\.0\.\d+:53,10\.244\.0\.\d+:53,10\.244\.1\.\d+:53 \+ 1 more\.\.\.", (await Loom([.. lab, "get", "endpoints", "-n", "kube-system"])).Out);
            Assert.Matches(@"k8s-ctr\s+Ready\s+control-plane\s+\S+\s+\S+\s+192\.168\.10\.100", (await Loom([.. lab, "get", "nodes", "-o", "wide"])).Out);
            Assert.Contains("\"kind\": \"List\"", (await Loom([.. lab, "get", "svc", "-A", "-o", "json"])).Out, StringComparison.Ordinal);

            var body = await Loom([.. lab, "exec", "curl-pod", "--", "curl", "-s", "-m", "5", "webpod"]);
            Assert.True(body.Code == 0, body.ToString());
            Assert.Matches(@"^Hostname: webpod-\w+-\w{5}\n", body.Out);
            var name = body.Out.Split('\n')[0]["Hostname: ".Length..];
            Assert.Contains("GET / HTTP/1.1", (await Loom([.. lab, "logs", name])).Out, StringComparison.Ordinal);

            var drain = await Loom([.. lab, "drain", "k8s-ctr"]);
            Assert.Equal(1, drain.Code);
            Assert.Contains("cannot delete Pods that declare no controller (use --force to override): default/curl-pod", drain.Err, StringComparison.Ordinal);
            Assert.Matches(@"k8s-ctr\s+Ready,SchedulingDisabled", (await Loom([.. lab, "get", "nodes"])).Out);
            Assert.Equal(0, (await Loom([.. lab, "uncordon", "k8s-ctr"])).Code);

            var delete = await Loom([.. lab, "delete", "-f", webpod]);
            Assert.Contains("service/webpod deleted", delete.Out, StringComparison.Ordinal);
            Assert.DoesNotContain("webpod", (await Loom([.. lab, "get", "pods"])).Out, StringComparison.Ordinal);

            var down = await Loom([.. lab, "down"]);
            Assert.Equal(0, down.Code);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }

        Assert.Empty(TestLab.Namespaces(o.Prefix));
        Assert.Empty(TestLab.ProcessesMentioning(o.LabDir));
    }

    [Fact]
    public async Task The_scenario_on_the_ebpf_backend_balances_at_the_socket_with_no_kube_proxy_rule()
    {
        var o = TestLab.Options();
        string[] lab = ["lab", "--lab-dir", o.LabDir, "--prefix", o.Prefix];
        try
        {
            var up = await Loom([.. lab, "up", "--service-backend", "ebpf"]);
            Assert.True(up.Code == 0, up.ToString());
            Assert.Equal(0, (await Loom([.. lab, "apply", "-f", ManifestTests.ExamplePath("webpod.yaml")])).Code);
            Assert.Equal(0, (await Loom([.. lab, "apply", "-f", ManifestTests.ExamplePath("curl-pod.yaml")])).Code);

            // curl-pod's processes run in k8s-ctr's cgroup, where the agent attached the socket load balancer.
            var cgroup = Path.Combine(File.Exists("/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup", o.Prefix + "k8s-ctr");
            var programs = Shell.Run("bpftool", ["cgroup", "show", cgroup]).Stdout;
            Assert.Contains("lb4_connect4", programs, StringComparison.Ordinal);
            Assert.Contains("lb4_sendmsg4", programs, StringComparison.Ordinal);

            var hostnames = new HashSet<string>();
            for (var i = 0; i < 30 && hostnames.Count < 2; i++)
            {
                var curl = await Loom([.. lab, "exec", "curl-pod", "--", "curl", "-s", "--max-time", "5", "webpod"]);
                Assert.True(curl.Code == 0, curl.ToString());
                hostnames.Add(curl.Out.Split('\n').First(l => l.StartsWith("Hostname:", StringComparison.Ordinal)));
            }

            Assert.Equal(2, hostnames.Count);
            var nat = await Loom([.. lab, "node", "exec", "k8s-ctr", "--", "iptables-save", "-t", "nat"]);
            Assert.DoesNotContain("KUBE-SVC", nat.Out, StringComparison.Ordinal);
            var status = await Loom(["status", "--socket", Path.Combine(o.LabDir, "nodes", "k8s-ctr", "run", "agent.sock")]);
            Assert.Contains("KubeProxyReplacement: True", status.Out, StringComparison.Ordinal);
            Assert.Contains("socket LB: enabled", status.Out, StringComparison.Ordinal);
        }
        finally
        {
            await Loom([.. lab, "down"]);
        }

        Assert.False(Directory.Exists(Path.Combine("/sys/fs/cgroup/unified", o.Prefix + "k8s-ctr")), "the node's cgroup outlived the lab");
        Assert.Empty(Directory.GetDirectories("/sys/fs/bpf", o.Prefix + "*"));
    }

    internal sealed record Run(int Code, string Out, string Err)
    {
        public override string ToString() => $"exit {Code}\nstdout:\n{Out}\nstderr:\n{Err}";
    }

    internal static async Task<Run> Loom(string[] args, string? stdin = null)
    {
        var psi = new ProcessStartInfo(Path.Combine(CniRunner.BinDir, "loom"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
        }

        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await p.WaitForExitAsync(cts.Token);
        return new Run(p.ExitCode, await stdout, await stderr);
    }
}
